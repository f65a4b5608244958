"""A customer's answer reopens a ticket waiting on them, over HTTP.

The tenant works Monday to Friday, 09:00-17:00 Berlin time; a ``high``
ticket owes its resolution in 480 business minutes and a next reply in
120. Every due time below is worked out by hand on that calendar; the
service's clock is set to each moment (``clock`` fixture), never slept for.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor, Headers, ManualClock, put_settings

TICKETS = "/api/v1/tickets"
PROBLEM = "application/problem+json"
BERLIN = ZoneInfo("Europe/Berlin")
SETTINGS: dict[str, Any] = {
    "sla_config": {"high": {"response": 60, "resolution": 480, "next_reply": 120}},
    "business_hours": {
        "timezone": "Europe/Berlin",
        "week": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    },
}


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock moment in Berlin in December 2026 (the 7th is a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Desk:
    """A tenant's agent and customer around one ticket, over HTTP."""

    def __init__(self, client: TestClient, auth_for: AuthFor, tenant: str) -> None:
        self.client = client
        self.tenant = tenant
        self.auth_for = auth_for
        self.agent: Headers = auth_for(tenant, "agent-1", "agent")
        self.customer: Headers = auth_for(tenant, "cust-1", "customer")

    def settings(self, **sections: Any) -> None:
        document = {**copy.deepcopy(SETTINGS), **sections}
        put_settings(self.client, self.auth_for, self.tenant, document)

    def waiting_ticket(self, clock: ManualClock, status: str = "pending") -> str:
        """Opened Monday 09:00, answered 09:15, put in ``status`` at 10:00."""
        clock.set(berlin(7, 9))
        response = self.client.post(
            f"{TICKETS}/",
            json={"title": "VPN drops", "priority": "high", "customer_id": "cust-1"},
            headers=self.agent,
        )
        assert response.status_code == 201, response.text
        tid: str = response.json()["id"]
        clock.set(berlin(7, 9, 15))
        self.ok("POST", f"{tid}/comments", {"body": "Which client version?"})
        clock.set(berlin(7, 10))
        self.ok("POST", f"{tid}/status", {"status": status, "reason": "asked"})
        return tid

    def ok(
        self, method: str, path: str, body: Any = None, headers: Headers | None = None
    ) -> Any:
        response = self.client.request(
            method, f"{TICKETS}/{path}", json=body, headers=headers or self.agent
        )
        assert response.is_success, response.text
        return response

    def customer_says(self, tid: str, body: str) -> Any:
        return self.ok("POST", f"{tid}/comments", {"body": body}, self.customer)

    def ticket(self, tid: str) -> dict[str, Any]:
        ticket: dict[str, Any] = self.ok("GET", tid).json()
        return ticket

    def sla(self, tid: str) -> dict[str, Any]:
        report: dict[str, Any] = self.ok("GET", f"{tid}/sla").json()
        return report

    def history(self, tid: str, headers: Headers | None = None) -> list[Any]:
        entries: list[Any] = self.ok("GET", f"{tid}/history", headers=headers).json()
        return entries


@pytest.fixture
def desk(client: TestClient, auth_for: AuthFor, tenant: str) -> Desk:
    desk = Desk(client, auth_for, tenant)
    desk.settings()
    return desk


def test_the_customers_comment_reopens_a_pending_ticket_and_resumes_the_clock(
    desk: Desk, clock: ManualClock
) -> None:
    tid = desk.waiting_ticket(clock)
    assert desk.sla(tid)["resolution"]["state"] == "paused"

    clock.set(berlin(8, 11))  # Tuesday: the customer answers
    answered = desk.customer_says(tid, "Version 5.2, on Windows.")

    ticket = desk.ticket(tid)
    assert ticket["status"] == "open"
    resolution = desk.sla(tid)["resolution"]
    # Paused Monday 10-17 and Tuesday 9-11: 540 business minutes. 60 were
    # used before; the 420 left run from Tuesday 11:00 to Wednesday 10:00.
    assert resolution["state"] == "running"
    assert moment(resolution["due_at"]) == berlin(9, 10)
    assert (
        resolution["business_minutes_used"],
        resolution["business_minutes_left"],
    ) == (
        60,
        420,
    )
    assert [(moment(p["start"]), moment(p["end"])) for p in resolution["pauses"]] == [
        (berlin(7, 10), berlin(8, 11))
    ]
    # The answer is owed a reply within 120 business minutes.
    next_reply = desk.sla(tid)["next_reply"]
    assert (next_reply["state"], moment(next_reply["due_at"])) == (
        "running",
        berlin(8, 13),
    )

    history = desk.history(tid)
    comment = next(
        e
        for e in history
        if e["event"] == "CommentAdded" and e["actor"]["id"] == "cust-1"
    )
    after = [e for e in history if e["version"] >= comment["version"]]
    assert [e["event"] for e in after] == [
        "CommentAdded",
        "StatusChanged",
        "SLAResumed",
        "SLAStarted",
    ]
    # Saved with the comment, in one save: the comment's answer is at the end.
    assert answered.headers["etag"] == f'"{after[-1]["version"]}"'
    changed = after[1]
    assert changed["actor"] == {
        "id": "customer-reply",
        "role": "automation",
        "kind": "automation",
    }
    assert changed["data"]["status"] == "open"
    assert changed["data"]["previous_status"] == "pending"
    assert changed["data"]["cause"] == {
        "event": "CommentAdded",
        "comment_id": comment["data"]["comment_id"],
        "version": comment["version"],
        "customer_id": "cust-1",
    }
    assert changed["causation_id"] == f"{tid}:{comment['version']}"
    assert changed["correlation_id"] == comment["correlation_id"]
    assert after[2]["actor"]["id"] == "customer-reply"
    assert after[2]["data"]["target"] == "resolution"
    assert after[2]["data"]["paused_minutes"] == 540
    # The customer's history shows why their ticket moved.
    theirs = desk.history(tid, desk.customer)
    [reopened] = [e for e in theirs if e["version"] == changed["version"]]
    assert reopened["data"]["cause"]["event"] == "CommentAdded"


def test_the_customers_attachment_reopens_a_pending_ticket(
    desk: Desk, clock: ManualClock
) -> None:
    tid = desk.waiting_ticket(clock)
    clock.set(berlin(8, 11))
    uploaded = desk.client.post(
        f"{TICKETS}/{tid}/attachments",
        files={"file": ("client.log", b"connect failed\n", "text/plain")},
        headers=desk.customer,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert desk.ticket(tid)["status"] == "open"
    resolution = desk.sla(tid)["resolution"]
    assert (resolution["state"], moment(resolution["due_at"])) == (
        "running",
        berlin(9, 10),
    )
    changed = desk.history(tid)[-2]
    assert changed["event"] == "StatusChanged"
    assert changed["data"]["cause"]["event"] == "AttachmentAdded"
    assert changed["data"]["cause"]["attachment_id"] == uploaded.json()["id"]


def test_an_agents_reply_leaves_the_ticket_pending(
    desk: Desk, clock: ManualClock
) -> None:
    tid = desk.waiting_ticket(clock)
    clock.set(berlin(8, 11))
    desk.ok("POST", f"{tid}/comments", {"body": "Any news?"})
    assert desk.ticket(tid)["status"] == "pending"
    assert desk.sla(tid)["resolution"]["state"] == "paused"


def test_on_hold_stays_unless_the_tenant_turns_it_on(
    desk: Desk, clock: ManualClock
) -> None:
    held = desk.waiting_ticket(clock, "on_hold")
    clock.set(berlin(8, 11))
    desk.customer_says(held, "Any news?")
    assert desk.ticket(held)["status"] == "on_hold"

    sla_config = {
        **SETTINGS["sla_config"],
        "pause_on": {"resolution": ["pending", "on_hold"]},
    }
    desk.settings(
        sla_config=sla_config,
        customer_replies={"reopen_pending": True, "reopen_on_hold": True},
    )
    tid = desk.waiting_ticket(clock, "on_hold")
    assert desk.sla(tid)["resolution"]["state"] == "paused"
    clock.set(berlin(8, 11))
    desk.customer_says(tid, "Any news?")
    assert desk.ticket(tid)["status"] == "open"
    resolution = desk.sla(tid)["resolution"]
    assert (resolution["state"], moment(resolution["due_at"])) == (
        "running",
        berlin(9, 10),
    )


def test_a_tenant_can_turn_it_off(desk: Desk, clock: ManualClock) -> None:
    desk.settings(customer_replies={"reopen_pending": False})
    settings = desk.client.get(
        "/api/v1/settings", headers=desk.auth_for(desk.tenant, "admin-1", "admin")
    ).json()
    assert settings["document"]["customer_replies"] == {
        "reopen_pending": False,
        "reopen_on_hold": False,
        "reopen_resolved": True,
        "reopen_resolved_within_days": 7,
    }
    tid = desk.waiting_ticket(clock)
    clock.set(berlin(8, 11))
    desk.customer_says(tid, "Version 5.2.")
    assert desk.ticket(tid)["status"] == "pending"
    assert desk.sla(tid)["resolution"]["state"] == "paused"
    assert "StatusChanged" not in [e["event"] for e in desk.history(tid)[-2:]]


@pytest.mark.parametrize(
    ("section", "loc"),
    [
        ({"reopen_pending": "yes"}, ["customer_replies", "reopen_pending"]),
        ({"reopen_on_hold": 1}, ["customer_replies", "reopen_on_hold"]),
        ({"reopen_later": True}, ["customer_replies", "reopen_later"]),
        ([], ["customer_replies"]),
    ],
)
def test_the_setting_is_validated(
    client: TestClient, auth_for: AuthFor, tenant: str, section: Any, loc: list[str]
) -> None:
    admin = auth_for(tenant, "admin-1", "admin")
    response = client.put(
        "/api/v1/settings", json={"customer_replies": section}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    locs = [error["loc"] for error in response.json()["errors"]]
    assert ["body", *loc] in locs, locs
    assert client.get("/api/v1/settings", headers=admin).json()["version"] == 0


def resolved_ticket(desk: Desk, clock: ManualClock) -> str:
    tid = desk.waiting_ticket(clock)
    clock.set(berlin(7, 11))
    desk.ok(
        "POST",
        f"{tid}/resolve",
        {"resolution": "New client", "resolution_code": "fixed"},
    )
    return tid


def test_an_answer_on_a_resolved_ticket_reopens_it_within_the_window(
    desk: Desk, clock: ManualClock
) -> None:
    desk.settings()
    tid = resolved_ticket(desk, clock)
    clock.set(berlin(14, 11))  # exactly seven days later
    answer = desk.customer_says(tid, "Still dropping.")
    assert "location" not in answer.headers
    ticket = desk.ticket(tid)
    assert (ticket["status"], ticket["reopen_count"]) == ("open", 1)
    history = desk.history(tid)
    (reopened,) = [e for e in history if e["event"] == "TicketReopened"]
    answered = next(e for e in history if e["version"] == reopened["version"] - 1)
    assert answered["event"] == "CommentAdded"
    assert reopened["actor"]["id"] == "customer-reply"


def test_after_the_window_and_on_a_closed_ticket_a_linked_follow_up_opens(
    desk: Desk, clock: ManualClock
) -> None:
    desk.settings(customer_replies={"reopen_resolved_within_days": 2})
    tid = resolved_ticket(desk, clock)
    clock.set(berlin(10, 12))  # three days later
    answer = desk.customer_says(tid, "It is back.")
    follow_up_id = answer.headers["location"].rsplit("/", 1)[-1]
    assert follow_up_id != tid
    old, new = desk.ticket(tid), desk.ticket(follow_up_id)
    assert old["status"] == "resolved" and old["reopen_count"] == 0
    assert new["title"] == f"Re: #{old['number']} VPN drops"
    assert (new["customer_id"], new["priority"], new["status"]) == (
        "cust-1",
        "high",
        "new",
    )
    assert {"ticket_id": tid, "relation": "follow_up_of"} in new["links"]
    assert {"ticket_id": follow_up_id, "relation": "followed_up_by"} in old["links"]
    comments = desk.ok("GET", f"{follow_up_id}/comments", headers=desk.customer).json()
    assert [c["body"] for c in comments] == ["It is back."]

    # Closed is final: the customer's next words go to the same follow-up,
    # not a 409; staff still get the 409.
    desk.ok("POST", f"{tid}/close")
    again = desk.customer_says(tid, "Any news?")
    assert again.headers["location"].endswith(follow_up_id)
    comments = desk.ok("GET", f"{follow_up_id}/comments", headers=desk.customer).json()
    assert [c["body"] for c in comments] == ["It is back.", "Any news?"]
    refused = desk.client.post(
        f"{TICKETS}/{tid}/comments", json={"body": "note"}, headers=desk.agent
    )
    assert refused.status_code == 409
