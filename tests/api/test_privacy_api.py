"""Privacy over HTTP: who may erase and export, what they get, and the record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor

API = "/api/v1"


def open_tickets(
    client: TestClient, auth_for: AuthFor, tenant: str, customer: str, n: int = 2
) -> list[str]:
    who = auth_for(tenant, customer, "customer")
    ids = []
    for i in range(n):
        created = client.post(
            f"{API}/tickets/",
            json={
                "title": f"{customer} request {i}",
                "description": f"Details from {customer}",
                "customer_email": f"{customer}@example.test",
            },
            headers=who,
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        reply = client.post(
            f"{API}/tickets/{tid}/comments",
            json={"body": f"More from {customer}"},
            headers=who,
        )
        assert reply.is_success, reply.text
        ids.append(tid)
    return ids


@pytest.mark.parametrize("role", ["customer", "agent", "supervisor"])
def test_only_admins_erase_export_or_list(
    client: TestClient, auth_for: AuthFor, tenant: str, role: str
) -> None:
    open_tickets(client, auth_for, tenant, "cust-1", n=1)
    who = auth_for(tenant, "cust-1", role)
    for response in (
        client.post(f"{API}/privacy/subjects/cust-1/erase", headers=who),
        client.get(f"{API}/privacy/subjects/cust-1/export", headers=who),
        client.get(f"{API}/privacy/requests", headers=who),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
    # Nothing was done, so nothing is on record.
    admin = auth_for(tenant, "admin-1", "admin")
    assert client.get(f"{API}/privacy/requests", headers=admin).json() == []


def test_another_tenants_admin_finds_no_such_customer(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    (tid,) = open_tickets(client, auth_for, tenant, "cust-1", n=1)
    stranger = auth_for(f"{tenant}-other", "admin-9", "admin")
    for response in (
        client.post(f"{API}/privacy/subjects/cust-1/erase", headers=stranger),
        client.get(f"{API}/privacy/subjects/cust-1/export", headers=stranger),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["type"].endswith("not-found")
    # Nothing happened to the ticket.
    admin = auth_for(tenant, "admin-1", "admin")
    assert client.get(f"{API}/tickets/{tid}", headers=admin).json()["title"] == (
        "cust-1 request 0"
    )
    assert client.get(f"{API}/privacy/requests", headers=stranger).json() == []


def test_a_subject_id_with_control_characters_is_refused(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    admin = auth_for(tenant, "admin-1", "admin")
    response = client.post(f"{API}/privacy/subjects/a%01b/erase", headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_erasure_reads_erased_everywhere_and_leaves_other_customers(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    admin = auth_for(tenant, "admin-1", "admin")
    mine = open_tickets(client, auth_for, tenant, "cust-1")
    (theirs,) = open_tickets(client, auth_for, tenant, "cust-2", n=1)

    erased = client.post(f"{API}/privacy/subjects/cust-1/erase", headers=admin)
    assert erased.status_code == 200, erased.text
    receipt = erased.json()
    assert sorted(receipt["tickets"]) == sorted(mine)
    assert receipt["keys_destroyed"] == 2
    assert receipt["subject_id"] == "cust-1"

    for tid in mine:
        now = client.get(f"{API}/tickets/{tid}", headers=admin).json()
        assert (now["title"], now["description"]) == ("[erased]", "[erased]")
        assert now["customer_id"] == "cust-1"  # an id, kept to count by
        then = client.get(f"{API}/tickets/{tid}", params={"as_of": 1}, headers=admin)
        assert then.json()["title"] == "[erased]"
        history = client.get(f"{API}/tickets/{tid}/history", headers=admin).json()
        assert history[0]["data"]["title"] == "[erased]"
        assert history[-1]["event"] == "SubjectErased"
        assert history[-1]["data"]["reason"] == "request"
        assert "cust-1@" not in json.dumps(history)
    other = client.get(f"{API}/tickets/{theirs}", headers=admin).json()
    assert other["title"] == "cust-2 request 0"
    assert other["customer_email"] == "cust-2@example.test"
    comments = client.get(f"{API}/tickets/{theirs}/comments", headers=admin).json()
    assert [c["body"] for c in comments] == ["More from cust-2"]

    # The record: who asked, and the receipt, never the data.
    (request,) = client.get(f"{API}/privacy/requests", headers=admin).json()
    assert request["kind"] == "erasure"
    assert request["requested_by"] == {"id": "admin-1", "role": "admin", "kind": "user"}
    assert request["receipt"]["keys_destroyed"] == 2
    assert "cust-1@" not in json.dumps(request)


def test_export_streams_every_ticket_with_its_history(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    admin = auth_for(tenant, "admin-1", "admin")
    mine = open_tickets(client, auth_for, tenant, "cust-1")
    open_tickets(client, auth_for, tenant, "cust-2", n=1)
    attached = client.post(
        f"{API}/tickets/{mine[0]}/attachments",
        files={"file": ("receipt.txt", b"total 42", "text/plain")},
        headers=auth_for(tenant, "cust-1", "customer"),
    )
    assert attached.is_success, attached.text

    response = client.get(f"{API}/privacy/subjects/cust-1/export", headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    document: dict[str, Any] = response.json()
    assert document["subject"] == {"tenant_id": tenant, "customer_id": "cust-1"}
    tickets = {t["ticket"]["id"]: t for t in document["tickets"]}
    assert sorted(tickets) == sorted(mine)
    first = tickets[mine[0]]
    assert first["ticket"]["customer_email"] == "cust-1@example.test"
    assert first["history"][0]["event"] == "TicketCreated"
    assert "More from cust-1" in json.dumps(first["history"])
    (file,) = first["attachments"]
    assert file["filename"] == "receipt.txt"
    assert client.get(file["url"], headers=admin).content == b"total 42"
    assert isinstance(document["in_app_notifications"], list)
    assert isinstance(document["deliveries"], list)
    assert "cust-2" not in json.dumps(document["tickets"])

    (request,) = client.get(f"{API}/privacy/requests", headers=admin).json()
    assert (request["kind"], request["receipt"]) == ("export", {"tickets": 2})
