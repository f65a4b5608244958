"""Tenancy and visibility over HTTP: what another tenant, another customer and
the owning customer can reach of a ticket, and what a bad credential gets.

Tenant A has a ticket with a public reply, an internal note and an
attachment. Another tenant's staff must find nothing there (404, exactly as
for a ticket that does not exist), on every ticket endpoint, and must not be
able to change it. Another customer of tenant A must not learn that it
exists either. The owning customer sees it, but not the internal note, and
may not run staff commands.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from dotmac.ticketing.domain.workflow import WorkflowResult
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing
from tests.api.conftest import AuthFor, Headers

API = "/api/v1"
TICKETS = f"{API}/tickets"
PROBLEM = "application/problem+json"

INTERNAL_NOTE = "INTERNAL: the customer's card was flagged for fraud"
PUBLIC_REPLY = "We are looking into it."
SECRET_TITLE = "Tenant A: invoice 4711 is wrong"
ATTACHMENT_BYTES = b"tenant A's confidential invoice"


# -- what we ask of a ticket ----------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request against a ticket, the way any caller could send it."""

    name: str
    method: str
    route: str  # the route's path template, to check that all are covered
    suffix: str = ""
    body: Callable[[Scene], dict[str, Any]] | None = None
    params: dict[str, str] = field(default_factory=dict)
    upload: bool = False
    staff_only: bool = False
    # Refused (403) to every other role before any lookup.
    supervisor_only: bool = False

    def send(
        self, client: TestClient, scene: Scene, ticket_id: str, headers: Headers
    ) -> Response:
        suffix = self.suffix.format(att=scene.attachment_id, macro=scene.macro_id)
        url = f"{TICKETS}/{ticket_id}{suffix}"
        kwargs: dict[str, Any] = {"headers": headers, "params": self.params}
        if self.body is not None:
            kwargs["json"] = self.body(scene)
        if self.upload:
            kwargs["files"] = {"file": ("intruder.txt", b"intruder", "text/plain")}
        return client.request(self.method, url, **kwargs)


T = "/tickets/{ticket_id}"
PROBES = [
    Probe("get", "GET", T),
    Probe("get-as-of", "GET", T, params={"as_of": "1"}),
    Probe(
        "update",
        "PUT",
        T,
        body=lambda s: {"title": "hijacked"},
        staff_only=True,
    ),
    Probe(
        "assign",
        "POST",
        T + "/assign",
        "/assign",
        body=lambda s: {"assignee_id": "intruder"},
        staff_only=True,
    ),
    Probe("unassign", "POST", T + "/unassign", "/unassign", staff_only=True),
    Probe(
        "status",
        "POST",
        T + "/status",
        "/status",
        body=lambda s: {"status": "in_progress"},
        staff_only=True,
    ),
    Probe(
        "escalate",
        "POST",
        T + "/escalate",
        "/escalate",
        body=lambda s: {"reason": "intruder"},
        staff_only=True,
    ),
    Probe(
        "resolve",
        "POST",
        T + "/resolve",
        "/resolve",
        body=lambda s: {"resolution": "intruder"},
    ),
    Probe("reopen", "POST", T + "/reopen", "/reopen", body=lambda s: {"reason": "x"}),
    Probe("close", "POST", T + "/close", "/close"),
    Probe(
        "merge",
        "POST",
        T + "/merge",
        "/merge",
        body=lambda s: {"into": s.foreign_target},
        staff_only=True,
    ),
    Probe(
        "link",
        "POST",
        T + "/links",
        "/links",
        body=lambda s: {"ticket_id": s.foreign_target},
        staff_only=True,
    ),
    Probe(
        "comment",
        "POST",
        T + "/comments",
        "/comments",
        body=lambda s: {"body": "intruder"},
    ),
    Probe(
        "satisfaction",
        "POST",
        T + "/satisfaction",
        "/satisfaction",
        body=lambda s: {"rating": 1},
    ),
    Probe("upload", "POST", T + "/attachments", "/attachments", upload=True),
    Probe("comments", "GET", T + "/comments", "/comments"),
    Probe("attachments", "GET", T + "/attachments", "/attachments"),
    Probe(
        "download",
        "GET",
        T + "/attachments/{attachment_id}",
        "/attachments/{att}",
    ),
    Probe("history", "GET", T + "/history", "/history"),
    Probe("sla", "GET", T + "/sla", "/sla"),
    Probe(
        "approve-escalation",
        "POST",
        T + "/escalation/approve",
        "/escalation/approve",
        body=lambda s: {"comment": "intruder"},
        staff_only=True,
        supervisor_only=True,
    ),
    Probe(
        "reject-escalation",
        "POST",
        T + "/escalation/reject",
        "/escalation/reject",
        body=lambda s: {"comment": "intruder"},
        staff_only=True,
        supervisor_only=True,
    ),
]
# The workflow: staff only, refused to every customer before any lookup.
PROBES += [
    Probe("workflow", "GET", T + "/workflow", "/workflow", staff_only=True),
    Probe(
        "complete-workflow-step",
        "POST",
        T + "/workflow/steps/{step}/complete",
        "/workflow/steps/validate_ticket/complete",
        body=lambda s: {"data": {"approved": True}},
        staff_only=True,
    ),
    Probe(
        "retry-workflow",
        "POST",
        T + "/workflow/retry",
        "/workflow/retry",
        staff_only=True,
    ),
]
# Time tracking: staff only; customers neither log nor read it.
PROBES += [
    Probe(
        "log-time",
        "POST",
        T + "/time-entries",
        "/time-entries",
        body=lambda s: {"minutes": 30, "note": "intruder"},
        staff_only=True,
    ),
    Probe("time-entries", "GET", T + "/time-entries", "/time-entries", staff_only=True),
    Probe(
        "apply-macro",
        "POST",
        T + "/macros/{macro_id}",
        "/macros/{macro}",
        staff_only=True,
    ),
    Probe(
        "preview-macro",
        "GET",
        T + "/macros/{macro_id}/preview",
        "/macros/{macro}/preview",
        staff_only=True,
    ),
    Probe(
        "remove-time-entry",
        "DELETE",
        T + "/time-entries/{entry_id}",
        "/time-entries/0123456789abcdef",
        staff_only=True,
    ),
]
STAFF_ONLY = [p for p in PROBES if p.staff_only]
STAFF_ROLES = ["agent", "supervisor", "admin"]
SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})


# -- the scene: tenant A's ticket, and a stranger ---------------------------


@dataclass
class Scene:
    tenant: str
    stranger_tenant: str
    ticket: str  # tenant A's ticket, opened by cust-1
    sibling: str  # another ticket of tenant A
    stranger_ticket: str  # tenant B's ticket
    attachment_id: str
    macro_id: str  # a macro of tenant A
    agent: Headers  # tenant A
    owner: Headers  # cust-1 of tenant A
    # Where merge and link point: a ticket the caller could otherwise reach.
    foreign_target: str = ""


@pytest.fixture
def scene(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> Scene:
    stranger_tenant = f"tenant-{secrets.token_hex(4)}"
    agent = auth_for(tenant, "agent-a", "agent")
    owner = auth_for(tenant, "cust-1", "customer")

    ticket = _created(client, owner, {"title": SECRET_TITLE})
    sibling = _created(client, agent, {"title": "Sibling", "customer_id": "cust-1"})
    stranger_ticket = _created(
        client,
        auth_for(stranger_tenant, "agent-b", "agent"),
        {"title": "B's own", "customer_id": "cust-b"},
    )
    for body in (
        {"body": INTERNAL_NOTE, "internal": True},
        {"body": PUBLIC_REPLY},
    ):
        response = client.post(f"{TICKETS}/{ticket}/comments", json=body, headers=agent)
        assert response.status_code == 201, response.text
    upload = client.post(
        f"{TICKETS}/{ticket}/attachments",
        files={"file": ("invoice.txt", ATTACHMENT_BYTES, "text/plain")},
        headers=agent,
    )
    assert upload.status_code == 201, upload.text
    macro = client.post(
        "/api/v1/macros",
        json={
            "name": "Bump",
            "actions": [{"type": "set_priority", "priority": "high"}],
        },
        headers=auth_for(tenant, "admin-a", "admin"),
    )
    assert macro.status_code == 201, macro.text
    wait_on_first_step(ticketing, tenant, ticket)
    return Scene(
        tenant=tenant,
        stranger_tenant=stranger_tenant,
        ticket=ticket,
        sibling=sibling,
        stranger_ticket=stranger_ticket,
        attachment_id=upload.json()["id"],
        macro_id=macro.json()["id"],
        agent=agent,
        owner=owner,
    )


def wait_on_first_step(ticketing: Ticketing, tenant: str, ticket_id: str) -> None:
    """Start the ticket's workflow and make its first step wait for a person
    (what the workflow runtime would do), so the workflow routes have
    something to show and complete."""
    ticketing.workflows.start(tenant, UUID(ticket_id))
    ticket = ticketing.tickets.find(UUID(ticket_id))
    assert ticket is not None
    run = ticketing.workflows.step_to_run(ticket)
    assert run is not None and run.step == "validate_ticket"
    ticketing.workflows.record(
        run,
        WorkflowResult(
            success=True,
            step_name=run.step,
            requires_action=True,
            message="waiting for a person",
        ),
    )


def _created(client: TestClient, headers: Headers, body: dict[str, Any]) -> str:
    response = client.post(f"{TICKETS}/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# -- helpers ---------------------------------------------------------------


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"] and problem["title"]
    return problem


def assert_reveals_nothing(response: Response) -> None:
    for secret in (SECRET_TITLE, INTERNAL_NOTE, PUBLIC_REPLY, "invoice.txt"):
        assert secret not in response.text
    assert ATTACHMENT_BYTES not in response.content


def state(client: TestClient, scene: Scene, ticket_id: str) -> tuple[int, int]:
    """(version, number of history entries) as tenant A's staff sees them."""
    ticket = client.get(f"{TICKETS}/{ticket_id}", headers=scene.agent)
    assert ticket.status_code == 200, ticket.text
    history = client.get(f"{TICKETS}/{ticket_id}/history", headers=scene.agent)
    return ticket.json()["version"], len(history.json())


def blob_count(ticketing: Ticketing, tenant_id: str) -> int:
    with ticketing.app.transaction() as cursor:
        cursor.execute(
            "SELECT count(*) AS n FROM attachment_blobs WHERE tenant_id = %s",
            (tenant_id,),
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row["n"])


def route_templates(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route that acts on one ticket."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers
        pairs = [(r.path, r.methods, r) for r in app.routes]
    else:
        pairs = [
            (c.path, c.methods, c.original_route)
            for c in iter_route_contexts(app.routes)
        ]
    return {
        (method, path.removeprefix(API))
        for path, methods, route in pairs
        if isinstance(route, APIRoute) and "{ticket_id}" in path
        for method in methods or ()
    }


# -- coverage and a positive control ---------------------------------------


def test_every_ticket_endpoint_is_probed(app: FastAPI) -> None:
    """A new ticket endpoint must be added to PROBES to be tenancy-tested."""
    probed = {(p.method, p.route) for p in PROBES}
    assert route_templates(app) <= probed, route_templates(app) - probed


def test_the_owners_reach_the_ticket(
    client: TestClient, scene: Scene, auth_for: AuthFor
) -> None:
    """Without this, every 404 below could be a broken scene."""
    for headers in (scene.agent, auth_for(scene.tenant, "admin-a", "admin")):
        assert client.get(f"{TICKETS}/{scene.ticket}", headers=headers).is_success
        comments = client.get(f"{TICKETS}/{scene.ticket}/comments", headers=headers)
        assert len(comments.json()) == 2
    download = client.get(
        f"{TICKETS}/{scene.ticket}/attachments/{scene.attachment_id}",
        headers=scene.owner,
    )
    assert download.status_code == 200
    assert download.content == ATTACHMENT_BYTES
    stranger = auth_for(scene.stranger_tenant, "agent-b", "agent")
    assert client.get(f"{TICKETS}/{scene.stranger_ticket}", headers=stranger).is_success
    workflow = client.get(f"{TICKETS}/{scene.ticket}/workflow", headers=scene.agent)
    assert workflow.json()["status"] == "waiting", workflow.text


# -- another tenant ----------------------------------------------------------


@pytest.mark.parametrize("role", STAFF_ROLES)
@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_another_tenants_staff_find_nothing(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    scene: Scene,
    probe: Probe,
    role: str,
) -> None:
    stranger = auth_for(scene.stranger_tenant, f"{role}-b", role)
    # Merge and link point at the stranger's own ticket: all they could reach.
    scene.foreign_target = scene.stranger_ticket
    before = state(client, scene, scene.ticket)
    stranger_before = client.get(
        f"{TICKETS}/{scene.stranger_ticket}", headers=stranger
    ).json()["version"]

    response = probe.send(client, scene, scene.ticket, stranger)

    # A command for supervisors refuses an agent before any lookup: that
    # says nothing about the ticket either.
    refused = probe.supervisor_only and role not in SUPERVISOR_ROLES
    status, kind = (403, "/forbidden") if refused else (404, "/not-found")
    problem = assert_problem(response, status)
    assert_reveals_nothing(response)
    # Exactly what a ticket that does not exist answers.
    nowhere = probe.send(client, scene, str(uuid.uuid4()), stranger)
    assert (nowhere.status_code, _kind(nowhere)) == (status, _kind(response))
    assert problem["type"].endswith(kind)

    assert state(client, scene, scene.ticket) == before
    after = client.get(f"{TICKETS}/{scene.stranger_ticket}", headers=stranger)
    assert after.json()["version"] == stranger_before
    assert blob_count(ticketing, scene.stranger_tenant) == 0


def _kind(response: Response) -> tuple[str, str]:
    problem = response.json()
    return problem["type"], problem["title"]


@pytest.mark.parametrize("command", ["merge", "link"])
@pytest.mark.parametrize("direction", ["a-into-b", "b-into-a"])
def test_merge_and_link_never_cross_tenants(
    client: TestClient, auth_for: AuthFor, scene: Scene, command: str, direction: str
) -> None:
    """The other ticket of a merge or link belongs to the other tenant: 404."""
    stranger = auth_for(scene.stranger_tenant, "agent-b", "agent")
    if direction == "a-into-b":
        caller, source, target = scene.agent, scene.ticket, scene.stranger_ticket
    else:
        caller, source, target = stranger, scene.stranger_ticket, scene.ticket
    mine = state(client, scene, scene.ticket)
    theirs = client.get(f"{TICKETS}/{scene.stranger_ticket}", headers=stranger).json()

    if command == "merge":
        response = client.post(
            f"{TICKETS}/{source}/merge", json={"into": target}, headers=caller
        )
    else:
        response = client.post(
            f"{TICKETS}/{source}/links",
            json={"ticket_id": target, "relation": "blocks"},
            headers=caller,
        )

    assert_problem(response, 404)
    assert_reveals_nothing(response)
    assert state(client, scene, scene.ticket) == mine
    now = client.get(f"{TICKETS}/{scene.stranger_ticket}", headers=stranger).json()
    assert (now["version"], now["links"], now["status"]) == (
        theirs["version"],
        [],
        "new",
    )


def test_an_attachment_id_does_not_travel_to_another_tenants_ticket(
    client: TestClient, auth_for: AuthFor, scene: Scene
) -> None:
    stranger = auth_for(scene.stranger_tenant, "agent-b", "agent")
    response = client.get(
        f"{TICKETS}/{scene.stranger_ticket}/attachments/{scene.attachment_id}",
        headers=stranger,
    )
    assert_problem(response, 404)
    assert ATTACHMENT_BYTES not in response.content


def test_an_idempotency_key_names_a_ticket_per_tenant(
    client: TestClient, auth_for: AuthFor, scene: Scene
) -> None:
    key = {"Idempotency-Key": f"order-{secrets.token_hex(4)}"}
    body = {"title": "Same key", "customer_id": "cust-1"}
    stranger = auth_for(scene.stranger_tenant, "agent-b", "agent")
    mine = client.post(f"{TICKETS}/", json=body, headers={**scene.agent, **key})
    theirs = client.post(f"{TICKETS}/", json=body, headers={**stranger, **key})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert_problem(client.get(f"{TICKETS}/{mine.json()['id']}", headers=stranger), 404)


# -- another customer of the same tenant ------------------------------------


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_another_customer_cannot_tell_the_ticket_exists(
    client: TestClient, auth_for: AuthFor, scene: Scene, probe: Probe
) -> None:
    """404 like a missing ticket; staff commands are refused (403) to every
    customer before any lookup, so they reveal nothing either."""
    other_customer = auth_for(scene.tenant, "cust-2", "customer")
    scene.foreign_target = scene.sibling
    before = state(client, scene, scene.ticket)

    response = probe.send(client, scene, scene.ticket, other_customer)

    assert_problem(response, 403 if probe.staff_only else 404)
    assert_reveals_nothing(response)
    nowhere = probe.send(client, scene, str(uuid.uuid4()), other_customer)
    assert (nowhere.status_code, _kind(nowhere)) == (
        response.status_code,
        _kind(response),
    )
    assert state(client, scene, scene.ticket) == before


# -- the owning customer -----------------------------------------------------


def test_the_owner_never_sees_internal_notes(client: TestClient, scene: Scene) -> None:
    ticket = client.get(f"{TICKETS}/{scene.ticket}", headers=scene.owner)
    assert ticket.status_code == 200
    assert ticket.json()["comment_count"] == 1
    comments = client.get(f"{TICKETS}/{scene.ticket}/comments", headers=scene.owner)
    assert [c["body"] for c in comments.json()] == [PUBLIC_REPLY]
    history = client.get(f"{TICKETS}/{scene.ticket}/history", headers=scene.owner)
    assert history.status_code == 200
    events = [entry["event"] for entry in history.json()]
    assert events.count("CommentAdded") == 1
    past = client.get(
        f"{TICKETS}/{scene.ticket}", params={"as_of": "2"}, headers=scene.owner
    )
    for response in (ticket, comments, history, past):
        assert INTERNAL_NOTE not in response.text

    staff_view = client.get(f"{TICKETS}/{scene.ticket}", headers=scene.agent)
    assert staff_view.json()["comment_count"] == 2


@pytest.mark.parametrize("probe", STAFF_ONLY, ids=lambda p: p.name)
def test_the_owner_cannot_run_staff_commands(
    client: TestClient, scene: Scene, probe: Probe
) -> None:
    scene.foreign_target = scene.sibling
    before = state(client, scene, scene.ticket)
    sibling_before = state(client, scene, scene.sibling)

    response = probe.send(client, scene, scene.ticket, scene.owner)

    assert_problem(response, 403)
    assert state(client, scene, scene.ticket) == before
    assert state(client, scene, scene.sibling) == sibling_before


def test_the_owner_cannot_write_internal_notes(
    client: TestClient, scene: Scene
) -> None:
    before = state(client, scene, scene.ticket)
    response = client.post(
        f"{TICKETS}/{scene.ticket}/comments",
        json={"body": "let me in", "internal": True},
        headers=scene.owner,
    )
    assert_problem(response, 403)
    assert state(client, scene, scene.ticket) == before


# -- credentials that are no good --------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bad_authorization(kind: str, secret: str, tenant: str) -> Headers:
    now = datetime.now(UTC)
    claims = {"tenant_id": tenant, "sub": "agent-a", "roles": ["agent"]}
    match kind:
        case "missing":
            return {}
        case "expired":
            token = issue_token(
                secret, **claims, now=now - timedelta(days=1), ttl=timedelta(hours=1)
            )
        case "expired-by-ttl":
            token = issue_token(secret, **claims, ttl=timedelta(minutes=-5))
        case "another-secret":
            token = issue_token(secrets.token_urlsafe(48), **claims)
        case "alg-none":
            payload = {**claims, "exp": int((now + timedelta(hours=1)).timestamp())}
            token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
        case "not-a-jwt":
            token = "definitely-not-a-jwt"
        case _:
            raise AssertionError(kind)
    return {"Authorization": f"Bearer {token}"}


BAD_CREDENTIALS = [
    "missing",
    "expired",
    "expired-by-ttl",
    "another-secret",
    "alg-none",
    "not-a-jwt",
]
GUARDED = [
    ("GET", "/{ticket}", None),
    ("POST", "/", {"title": "Sneaky", "customer_id": "cust-1"}),
    ("POST", "/{ticket}/comments", {"body": "sneaky"}),
    ("GET", "/{ticket}/history", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED]
)
@pytest.mark.parametrize("kind", BAD_CREDENTIALS)
def test_bad_credentials_are_unauthorized(
    client: TestClient,
    jwt_secret: str,
    scene: Scene,
    kind: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = state(client, scene, scene.ticket)
    response = client.request(
        method,
        TICKETS + path.format(ticket=scene.ticket),
        json=body,
        headers=bad_authorization(kind, jwt_secret, scene.tenant),
    )
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_reveals_nothing(response)
    assert state(client, scene, scene.ticket) == before
