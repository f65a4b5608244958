"""The request log line's level: an error for a failed request, not for a
readiness probe saying "not yet"."""

from __future__ import annotations

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from dotmac.ticketing.service.logging import RequestContextMiddleware


def _unavailable(request: Request) -> PlainTextResponse:
    return PlainTextResponse("not ready", status_code=503)


def _levels(path: str) -> list[str]:
    app = Starlette(
        routes=[Route("/ready", _unavailable), Route("/api/v1/x", _unavailable)]
    )
    app.add_middleware(RequestContextMiddleware)
    with structlog.testing.capture_logs() as logs, TestClient(app) as client:
        assert client.get(path).status_code == 503
    return [entry["log_level"] for entry in logs if entry["event"] == "request"]


def test_a_503_of_the_readiness_probe_is_a_warning() -> None:
    assert _levels("/ready") == ["warning"]


def test_a_503_of_any_other_request_is_an_error() -> None:
    assert _levels("/api/v1/x") == ["error"]
