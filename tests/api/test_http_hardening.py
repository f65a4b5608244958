"""Response headers, the docs switch and CORS, over HTTP (docs/security.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import free_port
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import AuthFor
from tests.notifications.servers import wait_until

TICKETS = "/api/v1/tickets/"
FRONT_END = "https://desk.example.com"
MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings, ticketing: Ticketing) -> Iterator[MakeClient]:
    """``make_client(**settings)`` → a client of an app built with them."""
    opened: list[TestClient] = []

    def make(app: FastAPI | None = None, **overrides: object) -> TestClient:
        configured = settings.model_copy(update=overrides)
        client = TestClient(
            app or create_app(configured, ticketing=ticketing),
            raise_server_exceptions=False,
        )
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def created_ticket(client: TestClient, auth_for: AuthFor, tenant: str) -> str:
    response = client.post(
        TICKETS,
        json={"title": "Call me", "customer_id": "cust-1"},
        headers=auth_for(tenant, "agent-1", "agent"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestHeaders:
    def test_every_answer_is_nosniff(
        self, client: TestClient, auth_for: AuthFor, tenant: str
    ) -> None:
        ticket = created_ticket(client, auth_for, tenant)
        answers = [
            client.get("/health"),
            client.get("/docs"),
            client.get("/openapi.json"),
            client.get("/nowhere"),
            client.get(TICKETS),  # 401: no token
            client.get(f"{TICKETS}{ticket}", headers=auth_for(tenant, "agent-1")),
        ]
        assert [answer.status_code for answer in answers] == [
            200,
            200,
            200,
            404,
            401,
            200,
        ]
        for answer in answers:
            assert answer.headers["x-content-type-options"] == "nosniff"

    def test_api_answers_are_never_stored(
        self, client: TestClient, auth_for: AuthFor, tenant: str
    ) -> None:
        ticket = created_ticket(client, auth_for, tenant)
        agent = auth_for(tenant, "agent-1")
        for answer in [
            client.get(f"{TICKETS}{ticket}", headers=agent),
            client.get(f"{TICKETS}{ticket}/history", headers=agent),
            client.get(f"{TICKETS}00000000-0000-0000-0000-000000000000", headers=agent),
            client.get(TICKETS),
        ]:
            assert answer.headers["cache-control"] == "no-store", answer.url
        # Nothing personal outside the API: caches may keep those.
        assert "cache-control" not in client.get("/health").headers

    def test_a_crash_answer_carries_the_headers_too(
        self, make_client: MakeClient, settings: Settings, ticketing: Ticketing
    ) -> None:
        app = create_app(settings, ticketing=ticketing)

        @app.get("/api/v1/boom")
        def boom() -> None:
            raise RuntimeError("a bug")

        response = make_client(app).get("/api/v1/boom")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"

    def test_hsts_is_off_by_default(self, client: TestClient) -> None:
        assert "strict-transport-security" not in client.get("/health").headers

    def test_hsts_when_the_deployment_is_behind_tls(
        self, make_client: MakeClient
    ) -> None:
        behind_tls = make_client(hsts=True, hsts_max_age_seconds=600)
        assert behind_tls.get("/health").headers["strict-transport-security"] == (
            "max-age=600"
        )
        whole_domain = make_client(hsts=True, hsts_include_subdomains=True)
        assert whole_domain.get(TICKETS).headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains"
        )


class TestDocsSwitch:
    PATHS = ("/docs", "/redoc", "/openapi.json")

    def test_docs_are_served_by_default(self, client: TestClient) -> None:
        for path in self.PATHS:
            assert client.get(path).status_code == 200, path

    def test_docs_can_be_turned_off(
        self, make_client: MakeClient, auth_for: AuthFor, tenant: str
    ) -> None:
        production = make_client(api_docs=False)
        for path in (*self.PATHS, "/docs/oauth2-redirect"):
            response = production.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"
        # The API itself is unaffected.
        created_ticket(production, auth_for, tenant)


def preflight(client: TestClient, origin: str, method: str = "PATCH") -> httpx.Response:
    return client.options(
        TICKETS,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,if-match",
        },
    )


class TestCors:
    def test_off_by_default(self, client: TestClient, auth_for: AuthFor) -> None:
        assert "access-control-allow-origin" not in preflight(client, FRONT_END).headers
        answer = client.get(
            TICKETS, headers={"Origin": FRONT_END, **auth_for("t", "agent-1")}
        )
        assert "access-control-allow-origin" not in answer.headers

    def test_a_configured_front_end_may_call_the_api(
        self, make_client: MakeClient, auth_for: AuthFor, tenant: str
    ) -> None:
        cors = make_client(cors_allow_origins=(FRONT_END,))
        allowed = preflight(cors, FRONT_END)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == FRONT_END
        assert "PATCH" in allowed.headers["access-control-allow-methods"]
        allowed_headers = allowed.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "if-match"} <= {
            name.strip() for name in allowed_headers.split(",")
        }
        assert allowed.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in allowed.headers

        ticket = created_ticket(cors, auth_for, tenant)
        answer = cors.get(
            f"{TICKETS}{ticket}",
            headers={"Origin": FRONT_END, **auth_for(tenant, "agent-1")},
        )
        assert answer.headers["access-control-allow-origin"] == FRONT_END
        exposed = answer.headers["access-control-expose-headers"]
        assert "ETag" in exposed and "X-Request-ID" in exposed

    def test_other_origins_are_not_allowed(self, make_client: MakeClient) -> None:
        cors = make_client(cors_allow_origins=(FRONT_END,))
        refused = preflight(cors, "https://evil.example")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        simple = cors.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers

    def test_methods_headers_and_credentials_are_configurable(
        self, make_client: MakeClient
    ) -> None:
        cors = make_client(
            cors_allow_origins=(FRONT_END,),
            cors_allow_methods=("GET",),
            cors_allow_headers=("Authorization",),
            cors_allow_credentials=True,
        )
        assert preflight(cors, FRONT_END, method="DELETE").status_code == 400
        allowed = cors.options(
            TICKETS,
            headers={
                "Origin": FRONT_END,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-credentials"] == "true"


@pytest.fixture
def served_api(
    isolated_database_url: str, jwt_secret: str, tmp_path: Path
) -> Iterator[str]:
    """``ticketing api`` as a child process, configured by its environment."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": isolated_database_url,
        "TICKETING_JWT_SECRET": jwt_secret,
        "TICKETING_DATA_DIR": str(tmp_path),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "TICKETING_API_DOCS": "false",
        "TICKETING_HSTS": "true",
        "TICKETING_HSTS_MAX_AGE_SECONDS": "86400",
        "TICKETING_CORS_ALLOW_ORIGINS": f"{FRONT_END}, https://admin.example.com",
    }
    log = tmp_path / "api.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ticketing")), "api"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"ticketing api exited:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=60, what="ticketing api to answer")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_the_served_api_is_hardened_as_configured(served_api: str) -> None:
    health = httpx.get(f"{served_api}/health")
    assert "server" not in health.headers  # no "server: uvicorn"
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["strict-transport-security"] == "max-age=86400"
    assert httpx.get(f"{served_api}/openapi.json").status_code == 404
    unauthorized = httpx.get(f"{served_api}{TICKETS}")
    assert unauthorized.status_code == 401
    assert unauthorized.headers["cache-control"] == "no-store"
    assert "server" not in unauthorized.headers
    admin = httpx.options(
        f"{served_api}{TICKETS}",
        headers={
            "Origin": "https://admin.example.com",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert admin.headers["access-control-allow-origin"] == "https://admin.example.com"
