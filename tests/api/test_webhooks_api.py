"""Webhook registrations over HTTP: admins of a tenant, their tenant only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from dotmac.ticketing.consumers.kafka.cloudevents import EVENT_MODELS, event_type
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.schemas.notifications import TICKET_EVENT_TYPES, cloudevent_type
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.url_safety import UnsafeWebhookURL
from dotmac.ticketing.service.webhooks import check_registration_url
from tests.api.conftest import AuthFor, Headers

API = "/api/v1/webhooks"
PROBLEM = "application/problem+json"
# A public address, so no DNS is needed to accept it.
PUBLIC_URL = "https://93.184.215.14/hooks/ticketing"
CREATED = "ticketing.ticket.ticket_created.v1"
RESOLVED = "ticketing.ticket.ticket_resolved.v1"


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def blamed(problem: dict[str, Any]) -> set[str]:
    return {str(error["loc"][1]) for error in problem.get("errors", ())}


@pytest.fixture
def admin(auth_for: AuthFor, tenant: str) -> Headers:
    return auth_for(tenant, "admin-1", "admin")


def register(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = client.post(
        API, json={"url": PUBLIC_URL, "event_types": [CREATED], **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def stored_secret(ticketing: Ticketing, webhook_id: str) -> str:
    with ticketing.app.transaction() as cursor:
        cursor.execute("SELECT secret FROM webhooks WHERE id = %s", (webhook_id,))
        row = cursor.fetchone()
    assert row is not None
    return str(row["secret"])


# -- the event types -------------------------------------------------------


def test_every_ticket_event_has_a_cloudevent_type() -> None:
    events = {
        value
        for value in vars(Ticket).values()
        if isinstance(value, type)
        and issubclass(value, Ticket.Event)
        and value is not Ticket.Event
    }
    assert set(TICKET_EVENT_TYPES) == {cloudevent_type(e) for e in events}
    assert len(TICKET_EVENT_TYPES) == len(events)
    assert CREATED in TICKET_EVENT_TYPES
    assert "ticketing.ticket.priority_changed.v1" in TICKET_EVENT_TYPES
    # The same names the relay publishes under.
    assert set(TICKET_EVENT_TYPES) == {event_type(e) for e in EVENT_MODELS}


# -- CRUD --------------------------------------------------------------------


def test_register_read_list_delete(
    client: TestClient, admin: Headers, ticketing: Ticketing
) -> None:
    response = client.post(
        API,
        json={"url": PUBLIC_URL, "event_types": [RESOLVED, CREATED, CREATED]},
        headers=admin,
    )

    assert response.status_code == 201, response.text
    created = response.json()
    webhook_id = created["id"]
    assert response.headers["location"].endswith(webhook_id)
    assert created["url"] == PUBLIC_URL
    assert created["event_types"] == sorted({CREATED, RESOLVED})
    assert created["created_by"] == "admin-1"
    # A secret was made up, returned once, and is what deliveries will sign with.
    assert len(created["secret"]) >= 32
    assert stored_secret(ticketing, webhook_id) == created["secret"]

    read = client.get(f"{API}/{webhook_id}", headers=admin)
    assert read.status_code == 200, read.text
    assert "secret" not in read.json()
    assert read.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = client.get(API, headers=admin)
    assert listed.status_code == 200, listed.text
    assert [w["id"] for w in listed.json()] == [webhook_id]
    assert created["secret"] not in listed.text

    deleted = client.delete(f"{API}/{webhook_id}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_problem(client.get(f"{API}/{webhook_id}", headers=admin), 404)
    assert_problem(client.delete(f"{API}/{webhook_id}", headers=admin), 404)
    assert client.get(API, headers=admin).json() == []


def test_a_given_secret_is_kept(
    client: TestClient, admin: Headers, ticketing: Ticketing
) -> None:
    secret = "correct horse battery staple"
    created = register(client, admin, secret=secret)
    assert created["secret"] == secret
    assert stored_secret(ticketing, created["id"]) == secret


def test_no_event_types_means_all(client: TestClient, admin: Headers) -> None:
    created = register(client, admin, event_types=[])
    assert created["event_types"] == []


def test_two_registrations_get_different_secrets(
    client: TestClient, admin: Headers
) -> None:
    first, second = register(client, admin), register(client, admin)
    assert first["secret"] != second["secret"]
    assert [w["id"] for w in client.get(API, headers=admin).json()] == [
        first["id"],
        second["id"],
    ]


# -- who may --------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "supervisor", "customer"])
def test_only_admins(
    client: TestClient, admin: Headers, auth_for: AuthFor, tenant: str, role: str
) -> None:
    webhook_id = register(client, admin)["id"]
    other = auth_for(tenant, f"{role}-1", role)
    body = {"url": PUBLIC_URL, "event_types": [CREATED]}

    assert_problem(client.post(API, json=body, headers=other), 403)
    assert_problem(client.get(API, headers=other), 403)
    assert_problem(client.get(f"{API}/{webhook_id}", headers=other), 403)
    assert_problem(client.delete(f"{API}/{webhook_id}", headers=other), 403)
    assert client.get(f"{API}/{webhook_id}", headers=admin).status_code == 200


def test_without_a_token_401(client: TestClient) -> None:
    response = client.get(API)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_another_tenants_webhook_is_not_found(
    client: TestClient, admin: Headers, auth_for: AuthFor, tenant: str
) -> None:
    webhook_id = register(client, admin)["id"]
    stranger = auth_for("another-" + tenant, "admin-1", "admin")

    assert_problem(client.get(f"{API}/{webhook_id}", headers=stranger), 404)
    assert_problem(client.delete(f"{API}/{webhook_id}", headers=stranger), 404)
    assert client.get(API, headers=stranger).json() == []
    assert client.get(f"{API}/{webhook_id}", headers=admin).status_code == 200


# -- what is refused ---------------------------------------------------------------


PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 spelled as a number
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_targets_are_refused(
    client: TestClient, admin: Headers, url: str
) -> None:
    response = client.post(
        API, json={"url": url, "event_types": [CREATED]}, headers=admin
    )
    problem = assert_problem(response, 422)
    assert blamed(problem) == {"url"}
    assert client.get(API, headers=admin).json() == []


@pytest.fixture(scope="module")
def permissive_client(settings: Settings, ticketing: Ticketing) -> Iterator[TestClient]:
    """The API of a deployment with TICKETING_WEBHOOK_ALLOW_PRIVATE=true."""
    allowing = settings.model_copy(update={"webhook_allow_private": True})
    app = create_app(allowing, ticketing=ticketing)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_targets_are_accepted_where_allowed(
    permissive_client: TestClient, admin: Headers, url: str
) -> None:
    response = permissive_client.post(
        API, json={"url": url, "event_types": [CREATED]}, headers=admin
    )
    assert response.status_code == 201, response.text
    assert response.json()["url"] == url


def test_names_resolving_to_private_addresses_are_refused() -> None:
    def resolve(host: str, port: int) -> list[str]:
        return {
            "intranet.example": ["10.0.0.7"],
            "mixed.example": ["93.184.215.14", "127.0.0.1"],
        }.get(host, ["93.184.215.14"])

    for host in ("intranet.example", "mixed.example"):
        with pytest.raises(UnsafeWebhookURL):
            check_registration_url(
                f"https://{host}/hook", allow_private=False, resolve=resolve
            )
        check_registration_url(
            f"https://{host}/hook", allow_private=True, resolve=resolve
        )
    check_registration_url(
        "https://public.example/hook", allow_private=False, resolve=resolve
    )
    # Not resolvable now: accepted (delivery checks the addresses again).
    check_registration_url(
        "https://nowhere.example/hook", allow_private=False, resolve=lambda h, p: []
    )


@pytest.mark.parametrize(
    ("body", "blames"),
    [
        ({"event_types": [CREATED]}, "url"),
        ({"url": PUBLIC_URL}, "event_types"),
        ({"url": "ftp://93.184.215.14/x", "event_types": []}, "url"),
        ({"url": "javascript:alert(1)", "event_types": []}, "url"),
        ({"url": "https://", "event_types": []}, "url"),
        ({"url": "https://a b.example/", "event_types": []}, "url"),
        ({"url": "https://x.example/" + "a" * 2000, "event_types": []}, "url"),
        ({"url": "https://user:pw@93.184.215.14/", "event_types": []}, "url"),
        ({"url": PUBLIC_URL, "event_types": ["ticket_created"]}, "event_types"),
        (
            {"url": PUBLIC_URL, "event_types": ["ticketing.ticket.no_such.v1"]},
            "event_types",
        ),
        ({"url": PUBLIC_URL, "event_types": "all"}, "event_types"),
        ({"url": PUBLIC_URL, "event_types": [], "secret": "short"}, "secret"),
        ({"url": PUBLIC_URL, "event_types": [], "secret": "x" * 201}, "secret"),
        (
            {"url": PUBLIC_URL, "event_types": [], "secret": "line\nbreak-0123456789"},
            "secret",
        ),
        ({"url": PUBLIC_URL, "event_types": [], "id": str(uuid.uuid4())}, "id"),
        ({"url": PUBLIC_URL, "event_types": [], "tenant_id": "x"}, "tenant_id"),
    ],
)
def test_bad_input_is_422(
    client: TestClient, admin: Headers, body: dict[str, Any], blames: str
) -> None:
    problem = assert_problem(client.post(API, json=body, headers=admin), 422)
    assert blames in blamed(problem), problem
    assert client.get(API, headers=admin).json() == []


def test_bad_ids_are_422(client: TestClient, admin: Headers) -> None:
    for method in ("GET", "DELETE"):
        response = client.request(method, f"{API}/not-a-uuid", headers=admin)
        assert blamed(assert_problem(response, 422)) == {"webhook_id"}


# -- the limit per tenant --------------------------------------------------------


@pytest.fixture(scope="module")
def limited_client(settings: Settings, ticketing: Ticketing) -> Iterator[TestClient]:
    """The API of a deployment with TICKETING_WEBHOOKS_PER_TENANT_MAX=3."""
    limited = settings.model_copy(update={"webhooks_per_tenant_max": 3})
    app = create_app(limited, ticketing=ticketing)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_tenant_registers_at_most_the_limit(
    limited_client: TestClient, admin: Headers, auth_for: AuthFor, tenant: str
) -> None:
    kept = [register(limited_client, admin)["id"] for _ in range(3)]

    refused = limited_client.post(
        API, json={"url": PUBLIC_URL, "event_types": [CREATED]}, headers=admin
    )

    problem = assert_problem(refused, 409)
    assert problem["type"].endswith("/webhook-limit")
    assert problem["limit"] == 3
    assert "at most 3 webhooks" in problem["detail"]
    assert "TICKETING_WEBHOOKS_PER_TENANT_MAX" in problem["detail"]
    listed = limited_client.get(API, headers=admin).json()
    assert [w["id"] for w in listed] == kept  # nothing changed
    # Another tenant has its own allowance; a removal makes room again.
    other = auth_for("other-" + tenant, "admin-1", "admin")
    register(limited_client, other)
    assert limited_client.delete(f"{API}/{kept[0]}", headers=admin).status_code == 204
    register(limited_client, admin)


# -- the circuit breaker ---------------------------------------------------------


def test_a_new_webhook_is_active(client: TestClient, admin: Headers) -> None:
    created = register(client, admin)
    assert created["state"] == "active"
    assert created["paused_since"] is None
    assert created["next_trial_at"] is None
    assert created["consecutive_failures"] == 0
    assert created["last_error"] is None


def test_an_admin_resumes_a_paused_webhook(
    client: TestClient, admin: Headers, ticketing: Ticketing
) -> None:
    webhook_id = register(client, admin)["id"]
    with ticketing.app.datastore.transaction(commit=True) as cursor:  # dispatcher-like
        cursor.execute(
            "UPDATE webhooks SET consecutive_failures = 5, paused_at = now(),"
            " retry_at = now() + interval '5 minutes', last_error = 'answered 500',"
            " last_failure_at = now() WHERE id = %s",
            (webhook_id,),
        )
    paused = client.get(f"{API}/{webhook_id}", headers=admin).json()
    assert paused["state"] == "paused"
    assert paused["paused_since"] is not None
    assert paused["next_trial_at"] > paused["paused_since"]
    assert paused["last_error"] == "answered 500"

    resumed = client.post(f"{API}/{webhook_id}/resume", headers=admin)

    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["state"] == "active"
    assert body["paused_since"] is None and body["next_trial_at"] is None
    assert body["consecutive_failures"] == 0
    assert body["last_error"] == "answered 500"  # history, for the admin
    assert client.get(f"{API}/{webhook_id}", headers=admin).json() == body
    # Resuming an active webhook changes nothing.
    again = client.post(f"{API}/{webhook_id}/resume", headers=admin)
    assert again.status_code == 200 and again.json() == body


def test_resume_is_for_the_tenants_admins(
    client: TestClient, admin: Headers, auth_for: AuthFor, tenant: str
) -> None:
    webhook_id = register(client, admin)["id"]
    agent = auth_for(tenant, "agent-1", "agent")
    stranger = auth_for("another-" + tenant, "admin-1", "admin")
    assert_problem(client.post(f"{API}/{webhook_id}/resume", headers=agent), 403)
    assert_problem(client.post(f"{API}/{webhook_id}/resume", headers=stranger), 404)
    unknown = f"{API}/{uuid.uuid4()}/resume"
    assert_problem(client.post(unknown, headers=admin), 404)
    bad = assert_problem(client.post(f"{API}/nope/resume", headers=admin), 422)
    assert blamed(bad) == {"webhook_id"}
