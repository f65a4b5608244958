"""Macros over HTTP: admins keep them; applying one is one save, all or nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from dotmac.ticketing.service.bootstrap import Ticketing
from tests.api.conftest import AuthFor, Headers, put_settings

MACROS = "/api/v1/macros"
TICKETS = "/api/v1/tickets"
PROBLEM = "application/problem+json"

TEAMS = [{"name": "Billing", "agents": [{"id": "bea"}, {"id": "bo"}]}]
REFUND = {
    "name": "Refund requested",
    "description": "Route refunds to billing",
    "actions": [
        {"type": "set_priority", "priority": "high"},
        {"type": "set_category", "category": "billing"},
        {"type": "set_tags", "add": ["refund"], "remove": ["triage"]},
        {"type": "set_custom_fields", "values": {"refund": True, "stale": None}},
        {"type": "assign", "team": "Billing", "assignee_id": "bea"},
        {"type": "set_status", "status": "pending"},
        {
            "type": "public_reply",
            "body": "Hello {{ customer.name }}, ticket #{{ ticket.number }}"
            " is with {{ ticket.team }}.",
        },
        {"type": "internal_note", "body": "Macro by {{ actor.id }}"},
    ],
}


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    return problem


@pytest.fixture
def admin(auth_for: AuthFor, tenant: str, client: TestClient) -> Headers:
    put_settings(client, auth_for, tenant, {"teams": TEAMS})
    return auth_for(tenant, "admin-1", "admin")


@pytest.fixture
def agent(auth_for: AuthFor, tenant: str) -> Headers:
    return auth_for(tenant, "bea", "agent")


def create(client: TestClient, admin: Headers, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(MACROS, json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def open_ticket(client: TestClient, agent: Headers) -> dict[str, Any]:
    response = client.post(
        f"{TICKETS}/",
        json={
            "title": "Refund please",
            "customer_id": "cust-1",
            "customer_name": "Ada",
            "tags": ["triage", "web"],
            "custom_fields": {"stale": 1},
        },
        headers=agent,
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


def history(client: TestClient, agent: Headers, ticket_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{TICKETS}/{ticket_id}/history", headers=agent)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def test_admins_keep_macros_and_other_tenants_see_none(
    client: TestClient, admin: Headers, agent: Headers, auth_for: AuthFor
) -> None:
    macro = create(client, admin, REFUND)
    assert macro["name"] == "Refund requested"
    assert [a["type"] for a in macro["actions"]] == [
        a["type"] for a in REFUND["actions"]
    ]
    assert client.get(MACROS, headers=admin).json() == [macro]
    assert client.get(f"{MACROS}/{macro['id']}", headers=admin).json() == macro
    # Agents apply macros; they do not edit them.
    assert_problem(client.get(MACROS, headers=agent), 403)
    other = auth_for("another-tenant", "admin-1", "admin")
    assert_problem(client.get(f"{MACROS}/{macro['id']}", headers=other), 404)
    assert_problem(client.delete(f"{MACROS}/{macro['id']}", headers=other), 404)

    renamed = {**REFUND, "name": "Refunds", "actions": REFUND["actions"][:1]}
    replaced = client.put(f"{MACROS}/{macro['id']}", json=renamed, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Refunds"
    assert len(replaced.json()["actions"]) == 1
    assert client.delete(f"{MACROS}/{macro['id']}", headers=admin).status_code == 204
    assert_problem(client.get(f"{MACROS}/{macro['id']}", headers=admin), 404)


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ([{"type": "assign", "team": "Nobody"}], "actions[0].team"),
        (
            [
                {"type": "set_priority", "priority": "low"},
                {"type": "assign", "team": "Billing", "assignee_id": "zed"},
            ],
            "actions[1].assignee_id",
        ),
    ],
)
def test_actions_the_tenant_cannot_run_are_422_naming_the_field(
    client: TestClient, admin: Headers, actions: list[dict[str, Any]], field: str
) -> None:
    response = client.post(
        MACROS, json={"name": "bad", "actions": actions}, headers=admin
    )
    assert assert_problem(response, 422)["field"] == field
    assert client.get(MACROS, headers=admin).json() == []


@pytest.mark.parametrize(
    ("body", "blamed"),
    [
        ({"name": "x", "actions": [], "colour": "red"}, "colour"),
        (
            {
                "name": "x",
                "actions": [{"type": "set_priority", "priority": "high", "x": 1}],
            },
            "x",
        ),
        (
            {"name": "x", "actions": [{"type": "set_status", "status": "closed"}]},
            "status",
        ),
        ({"name": "x", "actions": [{"type": "explode"}]}, "actions"),
        # Templates take the known placeholders and no other syntax.
        (
            {"name": "x", "actions": [{"type": "public_reply", "body": "{{ t.x }}"}]},
            "body",
        ),
        (
            {"name": "x", "actions": [{"type": "internal_note", "body": "{% if %}"}]},
            "body",
        ),
        ({"name": "x", "actions": [{"type": "assign"}]}, "assign"),
    ],
)
def test_unknown_fields_and_kinds_are_refused_by_the_schema(
    client: TestClient, admin: Headers, body: dict[str, Any], blamed: str
) -> None:
    problem = assert_problem(client.post(MACROS, json=body, headers=admin), 422)
    locations = {str(part) for e in problem["errors"] for part in e["loc"]}
    assert blamed in locations
    assert client.get(MACROS, headers=admin).json() == []


def test_applying_a_macro_is_one_save_its_events_contiguous_and_caused_by_it(
    client: TestClient, admin: Headers, agent: Headers, ticketing: Ticketing
) -> None:
    macro = create(client, admin, REFUND)
    ticket = open_ticket(client, agent)
    before = client.get(f"{TICKETS}/{ticket['id']}", headers=agent)
    version = int(before.headers["ETag"].strip('"'))
    url = f"{TICKETS}/{ticket['id']}/macros/{macro['id']}"

    preview = client.get(f"{url}/preview", headers=agent)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["version"] == version
    assert shown["changes"]["priority"] == {"from": "normal", "to": "high"}
    assert shown["changes"]["assigned_team"] == {"from": None, "to": "Billing"}
    assert shown["changes"]["tags"] == {
        "from": ["triage", "web"],
        "to": ["web", "refund"],
    }
    assert shown["comments"][0] == {
        "internal": False,
        "body": f"Hello Ada, ticket #{ticket['number']} is with Billing.",
    }
    # The preview saved nothing.
    assert len(history(client, agent, ticket["id"])) == version

    applied = client.post(url, headers={**agent, "If-Match": f'"{version}"'})
    assert applied.status_code == 200, applied.text
    after = applied.json()
    assert (after["priority"], after["category"], after["status"]) == (
        "high",
        "billing",
        "pending",
    )
    assert after["tags"] == ["web", "refund"]
    assert after["custom_fields"] == {"refund": True}
    assert (after["assigned_team"], after["assignee_id"]) == ("Billing", "bea")
    new_version = int(applied.headers["ETag"].strip('"'))

    entries = history(client, agent, ticket["id"])
    saved = [e for e in entries if e["version"] > version]
    assert [e["version"] for e in saved] == list(range(version + 1, new_version + 1))
    assert [e["event"] for e in saved] == shown["events"]
    # Each is the macro's, or the SLA clocks' following one of the events
    # before it (caused by that event): the history explains itself.
    cause = f"macro:{macro['id']}"
    explained = {cause}
    for entry in saved:
        assert entry["causation_id"] in explained, entry
        explained.add(f"{ticket['id']}:{entry['version']}")
    mine = [e for e in saved if e["causation_id"] == cause]
    assert {e["actor"]["id"] for e in mine} == {"bea"}
    assert {"PriorityChanged", "TicketAssigned", "CommentAdded"} <= {
        e["event"] for e in mine
    }
    # Counted once, with every event it recorded.
    with ticketing.app.transaction() as cur:
        cur.execute(
            "SELECT count(*) AS applications, max(events) AS events"
            " FROM macro_applications WHERE macro_id = %s",
            (macro["id"],),
        )
        row = cur.fetchone()
    assert (row["applications"], row["events"]) == (1, len(saved))
    # A stale If-Match is refused: the macro applied to the old version.
    stale = client.post(url, headers={**agent, "If-Match": f'"{version}"'})
    assert assert_problem(stale, 412)["current_version"] == new_version


def test_a_failing_action_saves_nothing(
    client: TestClient, admin: Headers, agent: Headers, auth_for: AuthFor, tenant: str
) -> None:
    macro = create(
        client,
        admin,
        {
            "name": "Reassign",
            "actions": [
                {"type": "set_priority", "priority": "urgent"},
                {"type": "assign", "team": "Billing"},
            ],
        },
    )
    ticket = open_ticket(client, agent)
    version = len(history(client, agent, ticket["id"]))
    # The team goes from the settings after the macro was written: the
    # second action is refused when applied, and the first is not saved.
    put_settings(client, auth_for, tenant, {"teams": [{"name": "Other"}]})
    url = f"{TICKETS}/{ticket['id']}/macros/{macro['id']}"
    assert assert_problem(client.post(url, headers=agent), 422)["field"] == (
        "actions[1].team"
    )
    assert len(history(client, agent, ticket["id"])) == version
    got = client.get(f"{TICKETS}/{ticket['id']}", headers=agent).json()
    assert got["priority"] == "normal"
    missing = f"{TICKETS}/{ticket['id']}/macros/{uuid.uuid4()}"
    assert_problem(client.post(missing, headers=agent), 404)


def test_customers_cannot_apply_macros(
    client: TestClient, admin: Headers, agent: Headers, auth_for: AuthFor, tenant: str
) -> None:
    macro = create(client, admin, {"name": "Bump", "actions": REFUND["actions"][:1]})
    customer = auth_for(tenant, "cust-1", "customer")
    created = client.post(f"{TICKETS}/", json={"title": "Mine"}, headers=customer)
    url = f"{TICKETS}/{created.json()['id']}/macros/{macro['id']}"
    assert_problem(client.post(url, headers=customer), 403)
    assert_problem(client.get(f"{url}/preview", headers=customer), 403)
    # Another tenant's agent finds neither the ticket nor the macro.
    stranger = auth_for("another-tenant", "bea", "agent")
    assert_problem(client.post(url, headers=stranger), 404)
    assert_problem(client.get(f"{url}/preview", headers=stranger), 404)
