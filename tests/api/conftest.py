"""The HTTP ring: the real app over the real database, driven by clients."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.auth import issue_token
from service.bootstrap import Ticketing, initialize_ticketing
from service.settings import Settings

Headers = dict[str, str]
AuthFor = Callable[..., Headers]


@pytest.fixture(scope="session")
def settings(database_url: str, jwt_secret: str) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret=jwt_secret,
        attachment_max_bytes=64 * 1024,
        request_max_bytes=256 * 1024,
    )


@pytest.fixture(scope="session")
def ticketing(settings: Settings) -> Iterator[Ticketing]:
    core = initialize_ticketing(settings)
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
    from service.workers import start_projection_worker

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
