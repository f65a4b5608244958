"""Bulk actions over HTTP: ``POST /tickets/bulk`` and ``GET /jobs/{id}``.

The session's app runs its bulk runner (the lifespan starts it), so a job
started here is applied by that runner; the tests wait for the job to
finish and read every ticket back.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor
from tests.notifications.servers import wait_until

API = "/api/v1"


def open_ticket(client: TestClient, auth: dict[str, str], **fields: Any) -> str:
    response = client.post(
        f"{API}/tickets/",
        json={"title": "Printer on fire", "customer_id": "cust-1", **fields},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finished_job(client: TestClient, auth: dict[str, str], job_id: str) -> Any:
    def finished() -> bool:
        return bool(
            client.get(f"{API}/jobs/{job_id}", headers=auth).json()["state"]
            == "finished"
        )

    wait_until(finished, timeout=30, what="the bulk job to finish")
    response = client.get(f"{API}/jobs/{job_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_job_assigns_every_ticket_once_and_refuses_what_the_caller_cannot_see(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    mine = [open_ticket(client, agent) for _ in range(5)]
    elsewhere = open_ticket(client, auth_for(f"{tenant}-other", "agent-9", "agent"))
    nobody = str(uuid.uuid4())

    response = client.post(
        f"{API}/tickets/bulk",
        json={
            "ids": [*mine, elsewhere, nobody, mine[0]],
            "action": {"assign": {"assignee_id": "agent-7"}},
        },
        headers=agent,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{job_id}")
    assert response.json()["total"] == 7  # mine[0] once

    job = finished_job(client, agent, job_id)
    assert job["counts"] == {
        "pending": 0,
        "done": 5,
        "conflict_retried": 0,
        "refused": 2,
        "changed": 5,
        "conflicts": 0,
    }
    outcomes = {item["ticket_id"]: item for item in job["items"]}
    for ticket_id in mine:
        assert outcomes[ticket_id]["outcome"] == "done"
        ticket = client.get(f"{API}/tickets/{ticket_id}", headers=agent).json()
        assert ticket["assignee_id"] == "agent-7"
        assert outcomes[ticket_id]["version"] == ticket["version"]
        history = client.get(f"{API}/tickets/{ticket_id}/history", headers=agent)
        assigned = [e for e in history.json() if e["event"] == "TicketAssigned"]
        assert len(assigned) == 1
        assert assigned[0]["correlation_id"] == job_id
        assert assigned[0]["actor"]["id"] == "agent-1"
    for ticket_id in (elsewhere, nobody):
        assert outcomes[ticket_id]["outcome"] == "refused"
        assert outcomes[ticket_id]["problem"] == "not-found"
        assert outcomes[ticket_id]["changed"] is False
    other = client.get(
        f"{API}/tickets/{elsewhere}",
        headers=auth_for(f"{tenant}-other", "agent-9", "agent"),
    ).json()
    assert other["assignee_id"] is None


def test_a_command_the_ticket_state_refuses_is_refused_with_its_reason(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    resolved = open_ticket(client, agent)
    response = client.post(
        f"{API}/tickets/{resolved}/resolve", json={"resolution": "done"}, headers=agent
    )
    assert response.status_code == 200, response.text
    still_open = open_ticket(client, agent)

    started = client.post(
        f"{API}/tickets/bulk",
        json={"ids": [resolved, still_open], "action": {"close": {}}},
        headers=agent,
    )
    job = finished_job(client, agent, started.json()["id"])
    by_ticket = {item["ticket_id"]: item for item in job["items"]}
    assert by_ticket[resolved]["outcome"] == "done"
    assert by_ticket[still_open]["outcome"] == "refused"
    assert by_ticket[still_open]["problem"] == "command-refused"
    assert "cannot close" in by_ticket[still_open]["reason"]
    assert (
        client.get(f"{API}/tickets/{still_open}", headers=agent).json()["status"]
        != "closed"
    )
    refused = client.get(
        f"{API}/jobs/{job['id']}", params={"outcome": "refused"}, headers=agent
    ).json()
    assert [item["ticket_id"] for item in refused["items"]] == [still_open]


def test_a_comment_job_adds_one_comment_to_each_ticket(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    tickets = [open_ticket(client, agent) for _ in range(3)]
    started = client.post(
        f"{API}/tickets/bulk",
        json={
            "ids": tickets,
            "action": {"comment": {"body": "Known outage", "internal": True}},
        },
        headers=agent,
    )
    finished_job(client, agent, started.json()["id"])
    for ticket_id in tickets:
        comments = client.get(f"{API}/tickets/{ticket_id}/comments", headers=agent)
        assert [c["body"] for c in comments.json()] == ["Known outage"]


def test_the_same_idempotency_key_answers_the_same_job(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    ticket = open_ticket(client, agent)
    body = {"ids": [ticket], "action": {"add_tags": {"tags": ["outage"]}}}
    keyed = {**agent, "Idempotency-Key": "outage-tags"}

    first = client.post(f"{API}/tickets/bulk", json=body, headers=keyed)
    again = client.post(f"{API}/tickets/bulk", json=body, headers=keyed)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    finished_job(client, agent, first.json()["id"])
    replayed = client.post(f"{API}/tickets/bulk", json=body, headers=keyed)
    assert replayed.json()["id"] == first.json()["id"]
    tags = client.get(f"{API}/tickets/{ticket}", headers=agent).json()["tags"]
    assert tags == ["outage"]

    other = client.post(
        f"{API}/tickets/bulk",
        json={"ids": [ticket], "action": {"close": {}}},
        headers=keyed,
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    # Another tenant's same key is another job.
    theirs = client.post(
        f"{API}/tickets/bulk",
        json=body,
        headers={
            **auth_for(f"{tenant}-b", "agent-2", "agent"),
            "Idempotency-Key": "outage-tags",
        },
    )
    assert theirs.status_code == 202
    assert theirs.json()["id"] != first.json()["id"]


def test_bulk_is_for_staff_and_a_job_is_its_tenants(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    ticket = open_ticket(client, agent)
    customer = auth_for(tenant, "cust-1", "customer")
    refused = client.post(
        f"{API}/tickets/bulk",
        json={"ids": [ticket], "action": {"close": {}}},
        headers=customer,
    )
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"

    started = client.post(
        f"{API}/tickets/bulk",
        json={"ids": [ticket], "action": {"unassign": {}}},
        headers=agent,
    )
    job_id = started.json()["id"]
    assert client.get(f"{API}/jobs/{job_id}", headers=customer).status_code == 403
    other_tenant = auth_for(f"{tenant}-other", "agent-1", "agent")
    assert client.get(f"{API}/jobs/{job_id}", headers=other_tenant).status_code == 404


def test_an_action_names_exactly_one_command_and_nothing_is_started_otherwise(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    ticket = open_ticket(client, agent)
    for body in (
        {"ids": [ticket], "action": {"close": {}, "unassign": {}}},
        {"ids": [ticket], "action": {}},
        {"ids": [ticket], "action": {"merge": {"into": ticket}}},
        {"ids": [ticket], "filter": {}, "action": {"close": {}}},
        {"ids": [], "action": {"close": {}}},
        {"ids": [ticket], "action": {"status": {"status": "sleeping"}}},
    ):
        response = client.post(f"{API}/tickets/bulk", json=body, headers=agent)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
    too_many = [str(uuid.uuid4()) for _ in range(10_001)]
    response = client.post(
        f"{API}/tickets/bulk",
        json={"ids": too_many, "action": {"close": {}}},
        headers=agent,
    )
    assert response.status_code in (413, 422)


def test_a_filter_is_resolved_when_the_job_starts_and_kept(
    client: TestClient, auth_for: AuthFor, tenant: str, projections: None
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    tagged = [open_ticket(client, agent, tags=["outage"]) for _ in range(3)]
    untagged = open_ticket(client, agent)
    last = client.put(
        f"{API}/tickets/{tagged[-1]}", json={"priority": "low"}, headers=agent
    ).json()["position"]
    listed = client.get(
        f"{API}/tickets/",
        params={"tags": "outage", "min_position": last},
        headers=agent,
    )
    assert len(listed.json()["items"]) == 3

    started = client.post(
        f"{API}/tickets/bulk",
        json={
            "filter": {"tags": ["outage"], "assignee_id": ["none"]},
            "action": {"update": {"priority": "urgent"}},
        },
        headers=agent,
    )
    assert started.status_code == 202, started.text
    assert started.json()["selection"] == {
        "filter": {"tags": ["outage"], "assignee_id": ["none"]}
    }
    job = finished_job(client, agent, started.json()["id"])
    assert sorted(item["ticket_id"] for item in job["items"]) == sorted(tagged)
    for ticket_id in tagged:
        ticket = client.get(f"{API}/tickets/{ticket_id}", headers=agent).json()
        assert ticket["priority"] == "urgent"
    assert (
        client.get(f"{API}/tickets/{untagged}", headers=agent).json()["priority"]
        == "normal"
    )


def test_a_macro_job_applies_the_macro_to_each_ticket_in_one_save(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    admin, agent = auth_for(tenant, "admin-1", "admin"), auth_for(tenant, "agent-1")
    macro = client.post(
        f"{API}/macros",
        json={
            "name": "Triage",
            "actions": [
                {"type": "set_priority", "priority": "high"},
                {"type": "internal_note", "body": "Triaged in bulk"},
            ],
        },
        headers=admin,
    )
    assert macro.status_code == 201, macro.text
    macro_id = macro.json()["id"]
    tickets = [open_ticket(client, agent) for _ in range(3)]
    before = {
        t: client.get(f"{API}/tickets/{t}", headers=agent).json() for t in tickets
    }

    started = client.post(
        f"{API}/tickets/bulk",
        json={"ids": tickets, "action": {"macro": macro_id}},
        headers=agent,
    )
    assert started.status_code == 202, started.text
    job = finished_job(client, agent, started.json()["id"])
    assert job["counts"]["done"] == 3 and job["counts"]["changed"] == 3
    for ticket_id in tickets:
        ticket = client.get(f"{API}/tickets/{ticket_id}", headers=agent).json()
        assert ticket["priority"] == "high"
        history = client.get(f"{API}/tickets/{ticket_id}/history", headers=agent)
        made = [
            e for e in history.json() if e["version"] > before[ticket_id]["version"]
        ]
        # The macro's two changes, caused by it (the SLA's follow theirs).
        caused = [e for e in made if e["causation_id"] == f"macro:{macro_id}"]
        assert [e["event"] for e in caused] == ["PriorityChanged", "CommentAdded"]


def test_a_job_naming_a_macro_the_tenant_lacks_is_refused(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1")
    ticket = open_ticket(client, agent)
    response = client.post(
        f"{API}/tickets/bulk",
        json={"ids": [ticket], "action": {"macro": str(uuid.uuid4())}},
        headers=agent,
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "action.macro"
