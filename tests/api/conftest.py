"""The HTTP ring: the real app over the real database, driven by clients."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.settings import Settings

Headers = dict[str, str]
AuthFor = Callable[..., Headers]


class ManualClock:
    """The service's clock in these tests: real time until a test sets it.

    SLA due times, warnings and escalation thresholds are instants; a test
    sets the clock to the instant it needs and moves it on, instead of
    sleeping. The ``clock`` fixture hands it out and puts it back to real
    time afterwards, so the other tests never notice it.
    """

    def __init__(self) -> None:
        self._now: datetime | None = None

    def __call__(self) -> datetime:
        return self._now if self._now is not None else datetime.now(UTC)

    def set(self, moment: datetime) -> datetime:
        """Stop the clock at ``moment`` (timezone-aware, any zone)."""
        if moment.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware moment")
        self._now = moment.astimezone(UTC)
        return self._now

    def advance(self, **delta: float) -> datetime:
        """Move the stopped clock on, e.g. ``advance(hours=1)``."""
        return self.set(self() + timedelta(**delta))

    def reset(self) -> None:
        self._now = None


@pytest.fixture(scope="session")
def settings(database_url: str, jwt_secret: str) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret=jwt_secret,
        attachment_max_bytes=64 * 1024,
        request_max_bytes=256 * 1024,
    )


@pytest.fixture(scope="session")
def service_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clock(service_clock: ManualClock) -> Iterator[ManualClock]:
    """The clock of ``ticketing``, to set and move; real time again after."""
    yield service_clock
    service_clock.reset()


@pytest.fixture(scope="session")
def ticketing(settings: Settings, service_clock: ManualClock) -> Iterator[Ticketing]:
    core = initialize_ticketing(settings, clock=service_clock)
    yield core
    core.close()


@pytest.fixture(scope="session")
def app(settings: Settings, ticketing: Ticketing) -> FastAPI:
    return create_app(settings, ticketing=ticketing)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test: tests never see each other's tickets."""
    return f"tenant-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def auth_for(jwt_secret: str) -> AuthFor:
    """``auth_for(tenant, sub, *roles)`` → an Authorization header."""

    def make(tenant_id: str, sub: str, *roles: str) -> Headers:
        token = issue_token(
            jwt_secret, tenant_id=tenant_id, sub=sub, roles=list(roles) or ["agent"]
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, for concurrent clients."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def projections(settings: Settings, ticketing: Ticketing) -> Iterator[None]:
    """The projection worker on a thread, with its first build swapped in."""
    from dotmac.ticketing.entry.processes import start_projection_worker

    worker = start_projection_worker(settings)
    deadline = time.monotonic() + 30
    while True:
        try:
            ticketing.read_model.active(refresh=True)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield
    worker.stop()


def put_settings(
    client: TestClient, auth_for: AuthFor, tenant_id: str, document: dict[str, Any]
) -> int:
    """Store a tenant's settings document as its admin; returns the version."""
    response = client.put(
        "/api/v1/settings",
        json=document,
        headers=auth_for(tenant_id, "admin-1", "admin"),
    )
    assert response.status_code == 200, response.text
    return int(response.json()["version"])
