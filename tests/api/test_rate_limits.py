"""Rate limits per tenant and per caller: 429 with Retry-After beyond, the
limits on every answer, shared through Redis, never on health or metrics."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import AuthFor, put_settings

# A route that answers without the read model: a ticket nobody has (404).
LIST = "/api/v1/tickets/5f0c3c1e-6d1c-4f59-9a55-0d9d2b6b2a01"
SEEN = 404
REDIS = "redis://127.0.0.1:6379/15"


def limited_app(settings: Settings, ticketing: Ticketing, **limits: str) -> FastAPI:
    return create_app(settings.model_copy(update=limits), ticketing=ticketing)


@pytest.fixture
def strict(settings: Settings, ticketing: Ticketing) -> Iterator[TestClient]:
    """Three requests a minute per caller, five per tenant, in this process."""
    app = limited_app(
        settings, ticketing, rate_limit_subject="3/minute", rate_limit_tenant="5/minute"
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_caller_past_its_limit_gets_429_with_retry_after(
    strict: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    answers = [strict.get(LIST, headers=agent) for _ in range(4)]

    assert [a.status_code for a in answers] == [SEEN, SEEN, SEEN, 429]
    first = answers[0].headers
    assert first["RateLimit-Policy"] == '"tenant";q=5;w=60, "subject";q=3;w=60'
    assert first["RateLimit"].startswith('"tenant";r=4;t=')
    assert ', "subject";r=2;t=' in first["RateLimit"]
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert "subject limit of 3 requests per 60 s" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert '"subject";r=0' in refused.headers["RateLimit"]


def test_the_tenant_limit_holds_across_its_callers(
    strict: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    statuses = [
        strict.get(LIST, headers=auth_for(tenant, f"agent-{n}", "agent")).status_code
        for n in range(6)
    ]

    assert statuses == [SEEN] * 5 + [429]
    # Another tenant is not held up by this one's burst.
    other = auth_for(f"{tenant}-b", "agent-1", "agent")
    assert strict.get(LIST, headers=other).status_code == SEEN


def test_health_readiness_and_metrics_are_never_limited(
    strict: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    for _ in range(3):
        strict.get(LIST, headers=agent)

    for path in ("/health", "/ready", "/metrics"):
        answers = [strict.get(path, headers=agent) for _ in range(5)]
        assert {a.status_code for a in answers} <= {200, 503}, path
        assert all("RateLimit" not in a.headers for a in answers)


def test_a_request_without_a_valid_token_is_answered_401_and_not_counted(
    strict: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    stranger = {"Authorization": "Bearer nope"}
    for _ in range(5):
        assert strict.get(LIST, headers=stranger).status_code == 401

    agent = auth_for(tenant, "agent-1", "agent")
    assert strict.get(LIST, headers=agent).status_code == SEEN


def test_a_tenant_sets_its_own_limits(
    client: TestClient,
    settings: Settings,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
) -> None:
    put_settings(client, auth_for, tenant, {"rate_limits": {"subject": "2/minute"}})
    app = limited_app(settings, ticketing, rate_limit_subject="50/minute")
    agent = auth_for(tenant, "agent-1", "agent")

    with TestClient(app, raise_server_exceptions=False) as limited:
        statuses = [limited.get(LIST, headers=agent).status_code for _ in range(3)]

    assert statuses == [SEEN, SEEN, 429]


def test_a_limit_that_is_not_a_rate_is_refused_and_changes_nothing(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    admin = auth_for(tenant, "admin-1", "admin")
    answer = client.put(
        "/api/v1/settings", json={"rate_limits": {"tenant": "lots"}}, headers=admin
    )

    assert answer.status_code == 422
    assert "rate_limits" in answer.text
    assert client.get("/api/v1/settings", headers=admin).json()["version"] == 0


def test_processes_sharing_redis_share_the_limit(
    settings: Settings, ticketing: Ticketing, auth_for: AuthFor
) -> None:
    tenant = f"shared-{secrets.token_hex(4)}"
    agent = auth_for(tenant, "agent-1", "agent")
    limits = {"rate_limit_subject": "4/minute", "rate_limit_storage": REDIS}
    first, second = (limited_app(settings, ticketing, **limits) for _ in range(2))

    with (
        TestClient(first, raise_server_exceptions=False) as one,
        TestClient(second, raise_server_exceptions=False) as two,
    ):
        statuses = [
            (one if n % 2 else two).get(LIST, headers=agent).status_code
            for n in range(5)
        ]

    assert statuses == [SEEN] * 4 + [429]


def test_without_its_store_the_api_serves_unlimited_and_says_so(
    settings: Settings, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    app = limited_app(
        settings,
        ticketing,
        rate_limit_subject="1/minute",
        rate_limit_storage="redis://127.0.0.1:1/0",
    )
    agent = auth_for(tenant, "agent-1", "agent")

    with (
        structlog.testing.capture_logs() as logs,
        TestClient(app, raise_server_exceptions=False) as limited,
    ):
        statuses = [limited.get(LIST, headers=agent).status_code for _ in range(3)]

    assert statuses == [SEEN] * 3
    warnings = [e for e in logs if "rate limit store" in e["event"]]
    assert len(warnings) == 1
