"""Time entries over HTTP: logging, listing, removing, history, who may."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor

API = "/api/v1/tickets"


class Desk:
    def __init__(self, client: TestClient, auth_for: AuthFor, tenant: str) -> None:
        self.client = client
        self.tenant = tenant
        self.ana = auth_for(tenant, "ana", "agent")
        self.ben = auth_for(tenant, "ben", "agent")
        self.boss = auth_for(tenant, "boss", "supervisor")
        self.customer = auth_for(tenant, "cust-1", "customer")
        response = client.post(
            f"{API}/",
            json={"title": "Slow line", "customer_id": "cust-1"},
            headers=self.ana,
        )
        assert response.status_code == 201, response.text
        self.ticket = response.json()["id"]

    def log(self, headers: dict[str, str], **body: Any) -> Any:
        return self.client.post(
            f"{API}/{self.ticket}/time-entries", json=body, headers=headers
        )

    def entries(self, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        response = self.client.get(
            f"{API}/{self.ticket}/time-entries", headers=headers or self.ana
        )
        assert response.status_code == 200, response.text
        return list(response.json())

    def history(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        response = self.client.get(f"{API}/{self.ticket}/history", headers=headers)
        assert response.status_code == 200, response.text
        return list(response.json())


@pytest.fixture
def desk(client: TestClient, auth_for: AuthFor, tenant: str) -> Desk:
    return Desk(client, auth_for, tenant)


def test_log_list_and_remove_time(desk: Desk) -> None:
    logged = desk.log(
        desk.ana, minutes=25, billable=True, type="support", note="Called them"
    )
    assert logged.status_code == 201, logged.text
    entry = logged.json()
    assert {k: entry[k] for k in ("agent_id", "minutes", "billable", "type")} == {
        "agent_id": "ana",
        "minutes": 25,
        "billable": True,
        "type": "support",
    }
    assert entry["note"] == "Called them" and entry["logged_by"] == "ana"
    version = int(logged.headers["etag"].strip('"'))
    second = desk.log(desk.ana, minutes=40, billable=False, type="travel")
    assert second.headers["etag"] == f'"{version + 1}"'
    travel = second.json()
    assert [e["id"] for e in desk.entries()] == [entry["id"], travel["id"]]

    removed = desk.client.delete(
        f"{API}/{desk.ticket}/time-entries/{travel['id']}", headers=desk.ana
    )
    assert removed.status_code == 200, removed.text
    assert [e["id"] for e in desk.entries()] == [entry["id"]]
    again = desk.client.delete(
        f"{API}/{desk.ticket}/time-entries/{travel['id']}", headers=desk.ana
    )
    assert again.status_code == 404, again.text

    events = [(h["event"], h["data"]) for h in desk.history(desk.ana)]
    assert events[-3:] == [
        (
            "TimeLogged",
            {
                "entry_id": entry["id"],
                "agent_id": "ana",
                "minutes": 25,
                "billable": True,
                "work_type": "support",
                "note": "Called them",
            },
        ),
        (
            "TimeLogged",
            {
                "entry_id": travel["id"],
                "agent_id": "ana",
                "minutes": 40,
                "billable": False,
                "work_type": "travel",
                "note": "",
            },
        ),
        ("TimeEntryRemoved", {"entry_id": travel["id"]}),
    ]


def test_customers_neither_log_nor_see_time(desk: Desk) -> None:
    desk.log(desk.ana, minutes=10, billable=True)
    refused = desk.log(desk.customer, minutes=10, billable=True)
    assert refused.status_code == 403, refused.text
    listed = desk.client.get(f"{API}/{desk.ticket}/time-entries", headers=desk.customer)
    assert listed.status_code == 403, listed.text
    assert listed.headers["content-type"] == "application/problem+json"
    events = {h["event"] for h in desk.history(desk.customer)}
    assert "TimeLogged" not in events and "TicketCreated" in events


def test_a_supervisor_logs_and_removes_for_an_agent_an_agent_does_not(
    desk: Desk,
) -> None:
    for_ben = desk.log(desk.boss, minutes=30, billable=True, agent_id="ben")
    assert for_ben.status_code == 201, for_ben.text
    assert for_ben.json()["agent_id"] == "ben"
    assert for_ben.json()["logged_by"] == "boss"
    refused = desk.log(desk.ana, minutes=30, billable=True, agent_id="ben")
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "agent_id"
    url = f"{API}/{desk.ticket}/time-entries/{for_ben.json()['id']}"
    assert desk.client.delete(url, headers=desk.ana).status_code == 422
    assert desk.client.delete(url, headers=desk.ben).status_code == 200
    assert desk.entries() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": 1441}, "minutes"),
        ({"minutes": 2.5}, "minutes"),
        ({"billable": True}, "minutes"),
        ({"minutes": 5, "type": "napping"}, "type"),
        ({"minutes": 5, "hours": 1}, "hours"),
        ({"minutes": 5, "note": "x" * 2001}, "note"),
        ({"minutes": 5, "agent_id": "  "}, "agent_id"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    desk: Desk, body: dict[str, Any], field: str
) -> None:
    response = desk.log(desk.ana, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.text
    assert desk.entries() == []


def test_closed_tickets_take_no_more_time(desk: Desk) -> None:
    for action, body in (
        ("resolve", {"resolution": "Fixed", "resolution_code": "fixed"}),
        ("close", None),
    ):
        done = desk.client.post(
            f"{API}/{desk.ticket}/{action}", json=body, headers=desk.ana
        )
        assert done.status_code == 200, done.text
    refused = desk.log(desk.ana, minutes=5, billable=True)
    assert refused.status_code == 409, refused.text
    assert refused.json()["command"] == "log_time"


def test_another_tenants_ticket_is_not_found(desk: Desk, auth_for: AuthFor) -> None:
    stranger = auth_for("another-tenant", "ana", "admin")
    assert desk.log(stranger, minutes=5).status_code == 404
    listed = desk.client.get(f"{API}/{desk.ticket}/time-entries", headers=stranger)
    assert listed.status_code == 404


@pytest.mark.usefixtures("projections")
def test_an_erasure_blanks_the_notes(desk: Desk, auth_for: AuthFor) -> None:
    desk.log(desk.ana, minutes=5, note="Spoke to Mrs Smith at home")
    erased = desk.client.post(
        "/api/v1/privacy/subjects/cust-1/erase",
        headers=auth_for(desk.tenant, "root", "admin"),
    )
    assert erased.status_code == 200, erased.text
    (entry,) = desk.entries()
    assert entry["note"] == "[erased]" and entry["minutes"] == 5
    logged = [h for h in desk.history(desk.ana) if h["event"] == "TimeLogged"]
    assert logged[0]["data"]["note"] == "[erased]"
