"""Trigger registrations over HTTP: admins of a tenant, checked before saving.

Running them (events, time, loops) is tests/integration/test_triggers.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.api.conftest import AuthFor, Headers, put_settings

TRIGGERS = "/api/v1/triggers"
PROBLEM = "application/problem+json"
TEAMS = [{"name": "Billing", "agents": [{"id": "bea"}]}]
ESCALATE = {
    "name": "Breached VIPs to billing",
    "when": {"type": "event", "events": ["sla_breach", "customer_comment"]},
    "conditions": {"tags": ["vip"], "priority": ["high", "urgent"]},
    "actions": [
        {"type": "assign", "team": "Billing"},
        {"type": "internal_note", "body": "#{{ ticket.number }} breached"},
    ],
}


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    return problem


def blamed(problem: dict[str, Any]) -> set[str]:
    return {str(part) for error in problem.get("errors", ()) for part in error["loc"]}


@pytest.fixture
def admin(auth_for: AuthFor, tenant: str, client: TestClient) -> Headers:
    put_settings(client, auth_for, tenant, {"teams": TEAMS})
    return auth_for(tenant, "admin-1", "admin")


def test_admins_keep_triggers_and_other_tenants_see_none(
    client: TestClient, admin: Headers, auth_for: AuthFor, tenant: str
) -> None:
    created = client.post(TRIGGERS, json=ESCALATE, headers=admin)
    assert created.status_code == 201, created.text
    trigger = created.json()
    assert trigger["enabled"] is True
    assert trigger["when"] == ESCALATE["when"]
    assert trigger["conditions"] == ESCALATE["conditions"]
    assert client.get(TRIGGERS, headers=admin).json() == [trigger]
    assert client.get(f"{TRIGGERS}/{trigger['id']}/runs", headers=admin).json() == []

    assert_problem(client.get(TRIGGERS, headers=auth_for(tenant, "a", "agent")), 403)
    other = auth_for("another-tenant", "admin-1", "admin")
    for method in ("GET", "DELETE"):
        path = f"{TRIGGERS}/{trigger['id']}"
        assert_problem(client.request(method, path, headers=other), 404)
    assert_problem(client.get(f"{TRIGGERS}/{trigger['id']}/runs", headers=other), 404)

    timed = {
        **ESCALATE,
        "enabled": False,
        "when": {
            "type": "time",
            "status": "pending",
            "hours": 72,
            "business_hours": True,
        },
    }
    replaced = client.put(f"{TRIGGERS}/{trigger['id']}", json=timed, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["enabled"], replaced.json()["when"]) == (
        False,
        timed["when"],
    )
    deleted = client.delete(f"{TRIGGERS}/{trigger['id']}", headers=admin)
    assert deleted.status_code == 204
    assert client.get(TRIGGERS, headers=admin).json() == []


def test_a_trigger_may_apply_the_tenants_macros_only(
    client: TestClient, admin: Headers, auth_for: AuthFor
) -> None:
    macro = client.post(
        "/api/v1/macros",
        json={
            "name": "Bump",
            "actions": [{"type": "set_priority", "priority": "high"}],
        },
        headers=admin,
    ).json()
    body = {**ESCALATE, "actions": [{"type": "apply_macro", "macro_id": macro["id"]}]}
    assert client.post(TRIGGERS, json=body, headers=admin).status_code == 201
    other = auth_for("another-tenant", "admin-1", "admin")
    refused = client.post(TRIGGERS, json=body, headers=other)
    assert assert_problem(refused, 422)["field"] == "actions[0].macro_id"
    missing = {
        **body,
        "actions": [{"type": "apply_macro", "macro_id": str(uuid.uuid4())}],
    }
    refused = client.post(TRIGGERS, json=missing, headers=admin)
    assert assert_problem(refused, 422)["field"] == "actions[0].macro_id"
    assert len(client.get(TRIGGERS, headers=admin).json()) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"actions": [{"type": "assign", "team": "Nobody"}]}, "actions[0].team"),
        (
            {
                "actions": [
                    {"type": "set_priority", "priority": "low"},
                    {"type": "assign", "team": "Billing", "assignee_id": "zed"},
                ]
            },
            "actions[1].assignee_id",
        ),
        (
            {
                "actions": [
                    {"type": "notify", "team": "Nobody", "subject": "s", "body": "b"}
                ]
            },
            "actions[0].team",
        ),
        (
            {"actions": [{"type": "call_webhook", "webhook_id": str(uuid.uuid4())}]},
            "actions[0].webhook_id",
        ),
    ],
)
def test_actions_the_tenant_cannot_run_are_422_naming_the_field(
    client: TestClient, admin: Headers, change: dict[str, Any], field: str
) -> None:
    refused = client.post(TRIGGERS, json={**ESCALATE, **change}, headers=admin)
    assert assert_problem(refused, 422)["field"] == field
    assert client.get(TRIGGERS, headers=admin).json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"conditions": {"tags": ["vip"], "mood": ["angry"]}}, "mood"),
        ({"conditions": {"text": {"contains": ["x"], "glob": ["*"]}}}, "glob"),
        ({"when": {"type": "event", "events": ["exploded"]}}, "events"),
        ({"when": {"type": "event", "events": ["created"], "every": 2}}, "every"),
        ({"when": {"type": "time", "status": "pending", "hours": 0}}, "hours"),
        ({"when": {"type": "sometimes"}}, "when"),
        ({"colour": "red"}, "colour"),
        ({"actions": [{"type": "notify_everyone"}]}, "actions"),
        (
            {
                "actions": [
                    {
                        "type": "notify",
                        "team": "Billing",
                        "address": "a@example.test",
                        "subject": "s",
                        "body": "b",
                    }
                ]
            },
            "actions",
        ),
        (
            {"actions": [{"type": "notify", "address": "nobody", "body": "b"}]},
            "subject",
        ),
    ],
)
def test_unknown_fields_and_values_are_refused_naming_them(
    client: TestClient, admin: Headers, change: dict[str, Any], field: str
) -> None:
    refused = client.post(TRIGGERS, json={**ESCALATE, **change}, headers=admin)
    assert field in blamed(assert_problem(refused, 422))
    assert client.get(TRIGGERS, headers=admin).json() == []


def test_a_trigger_notifies_a_team_or_an_address_and_calls_the_tenants_webhooks(
    client: TestClient, admin: Headers, auth_for: AuthFor, tenant: str
) -> None:
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/in", "event_types": []},
        headers=admin,
    )
    assert hook.status_code == 201, hook.text
    actions = [
        {
            "type": "notify",
            "team": "Billing",
            "subject": "#{{ ticket.number }} answered",
            "body": "The customer wrote again.",
        },
        {
            "type": "notify",
            "address": "lead@example.test",
            "subject": "VIP",
            "body": "{{ ticket.title }}",
        },
        {"type": "call_webhook", "webhook_id": hook.json()["id"]},
    ]
    created = client.post(
        TRIGGERS, json={**ESCALATE, "actions": actions}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["actions"] == actions
    # Another tenant's webhook is not one of this tenant's.
    stranger = auth_for(f"{tenant}-other", "admin-9", "admin")
    refused = client.post(
        TRIGGERS, json={**ESCALATE, "actions": actions[2:]}, headers=stranger
    )
    assert assert_problem(refused, 422)["field"] == "actions[0].webhook_id"
