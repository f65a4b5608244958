"""An application swaps the service's auth for its own through one override.

``app.dependency_overrides[deps.current_user]`` replaces the bearer JWT for
every route: the tickets, the caller's notifications and the admin-only
configuration follow the ``Principal`` the application's dependency gives.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Header, Query
from fastapi.testclient import TestClient

from dotmac.ticketing.service.api import deps
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import Principal, Role
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import AuthFor

API = "/api/v1"


def header_user(
    x_user: str = Header(), x_tenant: str = Header(), x_role: str = Header()
) -> Principal:
    """An application's own auth: here, headers its gateway has checked."""
    return Principal(sub=x_user, tenant_id=x_tenant, roles=frozenset({Role(x_role)}))


def api_key_user(api_key: str = Query(min_length=1)) -> Principal:
    """Auth by a query parameter: the routes must not refuse it as unknown."""
    tenant, _, sub = api_key.partition(":")
    return Principal(sub=sub, tenant_id=tenant, roles=frozenset({Role.AGENT}))


@pytest.fixture
def own_app(settings: Settings, ticketing: Ticketing) -> Iterator[FastAPI]:
    """An app of the test's own over the shared core: overrides stay here."""
    app = create_app(settings, ticketing=ticketing)
    yield app
    app.dependency_overrides.clear()


def test_one_override_swaps_the_auth_of_every_route(
    own_app: FastAPI, tenant: str, auth_for: AuthFor
) -> None:
    own_app.dependency_overrides[deps.current_user] = header_user
    agent = {"X-User": "agent-1", "X-Tenant": tenant, "X-Role": "agent"}
    admin = {**agent, "X-User": "admin-1", "X-Role": "admin"}

    with TestClient(own_app) as client:
        created = client.post(
            f"{API}/tickets/",
            json={"title": "Behind the gateway", "customer_id": "c-1"},
            headers=agent,
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        assigned = client.post(
            f"{API}/tickets/{tid}/assign",
            json={"assignee_id": "agent-1"},
            headers={**agent, "If-Match": created.headers["ETag"]},
        )
        assert assigned.status_code == 200, assigned.text
        history = client.get(f"{API}/tickets/{tid}/history", headers=agent).json()
        by = {e["event"]: e["actor"]["id"] for e in history}
        assert by["TicketCreated"] == by["TicketAssigned"] == "agent-1", by
        # Another tenant's caller does not see it.
        other = client.get(f"{API}/tickets/{tid}", headers={**agent, "X-Tenant": "x"})
        assert other.status_code == 404
        # The admin check and the caller's own notifications follow too.
        assert client.get(f"{API}/settings", headers=admin).status_code == 200
        refused = client.get(f"{API}/settings", headers=agent)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.get(f"{API}/notifications", headers=agent).status_code == 200
        # The token no longer counts: the application's headers are required.
        token = auth_for(tenant, "agent-1", "agent")
        missing = client.get(f"{API}/tickets/{tid}", headers=token)
        assert missing.status_code == 422
        assert {tuple(e["loc"]) for e in missing.json()["errors"]} >= {
            ("header", "x-user")
        }


def test_the_services_own_app_still_takes_the_token(
    own_app: FastAPI, tenant: str, auth_for: AuthFor
) -> None:
    with TestClient(own_app) as client:
        assert client.get(f"{API}/notifications").status_code == 401
        answer = client.get(f"{API}/notifications", headers=auth_for(tenant, "a-1"))
        assert answer.status_code == 200


def test_an_overriding_dependencys_query_parameter_is_not_refused(
    own_app: FastAPI, tenant: str
) -> None:
    own_app.dependency_overrides[deps.current_user] = api_key_user
    key = {"api_key": f"{tenant}:agent-1"}

    with TestClient(own_app) as client:
        created = client.post(
            f"{API}/tickets/", params=key, json={"title": "By key", "customer_id": "c"}
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        assert client.get(f"{API}/tickets/{tid}", params=key).status_code == 200
        # A parameter neither the route nor the override takes still is.
        unknown = client.get(f"{API}/tickets/{tid}", params={**key, "nope": "1"})
        assert unknown.status_code == 422
        assert [e["loc"] for e in unknown.json()["errors"]] == [["query", "nope"]]
