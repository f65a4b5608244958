"""Escalation rules with approval, over HTTP and on fake time.

The timers worker (another process) calls
``TicketService.apply_escalation_rule`` when a rule's threshold comes; here
the test calls it directly at the moments it needs, and everything else
goes through the API: the pending request on the ticket, a supervisor's
approval or rejection, and who may give them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.service.bootstrap import Ticketing
from tests.api.conftest import AuthFor, Headers, ManualClock, put_settings

TICKETS = "/api/v1/tickets"
PROBLEM = "application/problem+json"
START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)

SETTINGS: dict[str, Any] = {
    "teams": [
        {"name": "Support", "agents": [{"id": "support-1"}]},
        {"name": "Engineering", "agents": [{"id": "eng-1"}, {"id": "eng-2"}]},
    ],
    "escalation_rules": [
        {
            "name": "critical_needs_approval",
            "conditions": {"priority": "critical"},
            "level": 1,
            "escalation_time_hours": 1,
            "escalate_to_team": "Engineering",
            "requires_approval": True,
        },
        {
            "name": "urgent_untouched",
            "conditions": {"priority": "urgent"},
            "level": 1,
            "measured_from": "last_update",
            "escalation_time_hours": 1,
            "escalate_to_team": "Engineering",
        },
    ],
}
APPROVAL_RULE = "critical_needs_approval"


class Scene:
    def __init__(
        self,
        client: TestClient,
        ticketing: Ticketing,
        auth_for: AuthFor,
        tenant: str,
        clock: ManualClock,
    ) -> None:
        self.client = client
        self.ticketing = ticketing
        self.tenant = tenant
        self.clock = clock
        self.auth_for = auth_for
        self.agent = auth_for(tenant, "agent-1", "agent")
        self.supervisor = auth_for(tenant, "super-1", "supervisor")
        self.customer = auth_for(tenant, "cust-1", "customer")

    def open(self, priority: str = "critical") -> str:
        response = self.client.post(
            f"{TICKETS}/",
            json={
                "title": "Checkout is down",
                "customer_id": "cust-1",
                "priority": priority,
            },
            headers=self.agent,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def fire(self, ticket_id: str, rule: str = APPROVAL_RULE) -> int | None:
        """What the timers worker does when the rule's threshold comes."""
        result = self.ticketing.tickets.apply_escalation_rule(
            self.tenant, UUID(ticket_id), rule
        )
        return result.position

    def requested(self, ticket_id: str) -> str:
        """A ticket with a pending escalation request, an hour after creation."""
        self.clock.advance(minutes=61)
        assert self.fire(ticket_id) is not None
        return ticket_id

    def get(self, ticket_id: str, headers: Headers | None = None) -> dict[str, Any]:
        response = self.client.get(
            f"{TICKETS}/{ticket_id}", headers=headers or self.agent
        )
        assert response.status_code == 200, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    def decide(
        self,
        ticket_id: str,
        decision: str,
        headers: Headers | None = None,
        body: dict[str, Any] | None = None,
        if_match: str | None = None,
    ) -> Any:
        extra = {} if if_match is None else {"If-Match": if_match}
        return self.client.post(
            f"{TICKETS}/{ticket_id}/escalation/{decision}",
            json=body,
            headers={**(headers or self.supervisor), **extra},
        )

    def events(self, ticket_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"{TICKETS}/{ticket_id}/history", headers=self.agent)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        return entries


@pytest.fixture
def scene(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> Scene:
    put_settings(client, auth_for, tenant, SETTINGS)
    clock.set(START)
    return Scene(client, ticketing, auth_for, tenant, clock)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


# -- the request -----------------------------------------------------------


def test_a_rule_with_approval_asks_once_its_threshold_has_passed(
    scene: Scene,
) -> None:
    tid = scene.open()
    scene.clock.set(START + timedelta(minutes=59))
    assert scene.fire(tid) is None  # not yet: nothing recorded
    assert scene.get(tid)["pending_escalation"] is None

    scene.clock.set(START + timedelta(minutes=61))
    assert scene.fire(tid) is not None

    ticket = scene.get(tid)
    pending = ticket["pending_escalation"]
    assert {k: pending[k] for k in ("level", "team", "rule")} == {
        "level": 1,
        "team": "Engineering",
        "rule": APPROVAL_RULE,
    }
    assert "1 h since creation" in pending["reason"]
    assert datetime.fromisoformat(pending["requested_at"]) == START + timedelta(
        minutes=61
    )
    # Waiting for the supervisor: nothing escalated yet.
    assert (ticket["escalation_level"], ticket["assigned_team"]) == (0, None)
    # The timer firing again asks nothing new.
    assert scene.fire(tid) is None
    # The customer sees neither the internal request nor its event.
    assert scene.get(tid, scene.customer)["pending_escalation"] is None
    history = scene.client.get(f"{TICKETS}/{tid}/history", headers=scene.customer)
    assert "EscalationRequested" not in {e["event"] for e in history.json()}


# -- approving ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_a_supervisor_or_admin_approves_and_the_ticket_escalates(
    scene: Scene, role: str
) -> None:
    tid = scene.requested(scene.open())
    approver = scene.auth_for(scene.tenant, f"{role}-1", role)
    scene.clock.advance(minutes=5)

    response = scene.decide(tid, "approve", approver, {"comment": "Go ahead"})

    assert response.status_code == 200, response.text
    ticket = response.json()
    assert response.headers["ETag"] == f'"{ticket["version"]}"'
    assert ticket["pending_escalation"] is None
    assert ticket["escalation_level"] == 1
    # The new team's agent takes it over (no rule routes to Engineering:
    # least loaded, first in the list on a tie).
    assert (ticket["assigned_team"], ticket["assignee_id"]) == ("Engineering", "eng-1")
    events = scene.events(tid)
    approved = next(e for e in events if e["event"] == "EscalationApproved")
    assert approved["data"] == {"level": 1, "comment": "Go ahead"}
    assert approved["actor"]["id"] == f"{role}-1"
    escalated = next(e for e in events if e["event"] == "TicketEscalated")
    assert escalated["data"]["rule"] == APPROVAL_RULE
    assert escalated["data"]["team"] == "Engineering"
    assert escalated["data"]["assignment"]["picked"] == "eng-1"
    # The customer learns that it was escalated, not by which rule or why
    # that agent.
    seen = scene.client.get(f"{TICKETS}/{tid}/history", headers=scene.customer)
    theirs = next(e for e in seen.json() if e["event"] == "TicketEscalated")
    assert theirs["data"]["team"] == "Engineering"
    assert "rule" not in theirs["data"] and "assignment" not in theirs["data"]


def test_approving_without_a_body_works_too(scene: Scene) -> None:
    tid = scene.requested(scene.open())
    response = scene.client.post(
        f"{TICKETS}/{tid}/escalation/approve", headers=scene.supervisor
    )
    assert response.status_code == 200, response.text
    assert response.json()["escalation_level"] == 1


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize("role", ["agent", "customer", "service"])
def test_only_supervisors_and_admins_decide(
    scene: Scene, decision: str, role: str
) -> None:
    tid = scene.requested(scene.open())
    # The ticket's own customer is asked as well as a stranger would be.
    caller = scene.auth_for(
        scene.tenant, "cust-1" if role == "customer" else f"{role}-1", role
    )
    before = scene.get(tid)

    response = scene.decide(tid, decision, caller, {"comment": "me"})

    problem = assert_problem(response, 403)
    assert problem["type"].endswith("/forbidden")
    after = scene.get(tid)
    assert after["version"] == before["version"]
    assert after["pending_escalation"] == before["pending_escalation"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_nothing_pending_is_a_conflict_naming_the_state(
    scene: Scene, decision: str
) -> None:
    tid = scene.open()
    before = scene.get(tid)["version"]

    problem = assert_problem(scene.decide(tid, decision), 409)

    assert problem["type"].endswith("/command-refused")
    assert problem["ticket_status"] == "new"
    assert problem["command"] == f"{decision} escalation"
    assert "no escalation awaits approval" in problem["detail"]
    assert scene.get(tid)["version"] == before


def test_a_decided_request_cannot_be_decided_again(scene: Scene) -> None:
    tid = scene.requested(scene.open())
    assert scene.decide(tid, "approve").status_code == 200
    for decision in ("approve", "reject"):
        assert_problem(scene.decide(tid, decision), 409)


def test_a_resolved_ticket_is_not_escalated(scene: Scene) -> None:
    tid = scene.requested(scene.open())
    resolve = scene.client.post(
        f"{TICKETS}/{tid}/resolve", json={"resolution": "Fixed"}, headers=scene.agent
    )
    assert resolve.status_code == 200, resolve.text

    problem = assert_problem(scene.decide(tid, "approve"), 409)

    assert problem["ticket_status"] == "resolved"
    assert scene.get(tid)["escalation_level"] == 0


def test_if_match_guards_the_decision(scene: Scene) -> None:
    tid = scene.requested(scene.open())
    version = scene.get(tid)["version"]

    stale = scene.decide(tid, "approve", if_match=f'"{version - 1}"')
    problem = assert_problem(stale, 412)
    assert problem["current_version"] == version
    assert scene.get(tid)["pending_escalation"] is not None

    fresh = scene.decide(tid, "approve", if_match=f'"{version}"')
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["escalation_level"] == 1


# -- rejecting ---------------------------------------------------------------


def test_a_rejected_level_is_not_requested_again(scene: Scene) -> None:
    tid = scene.requested(scene.open())

    response = scene.decide(tid, "reject", body={"comment": "Support can do it"})

    assert response.status_code == 200, response.text
    ticket = response.json()
    assert ticket["pending_escalation"] is None
    assert (ticket["escalation_level"], ticket["assigned_team"]) == (0, None)
    rejected = [e for e in scene.events(tid) if e["event"] == "EscalationRejected"]
    assert [e["data"] for e in rejected] == [
        {"level": 1, "comment": "Support can do it"}
    ]
    # Later firings of the same rule leave the ticket alone.
    for hours in (2, 24):
        scene.clock.set(START + timedelta(hours=hours))
        assert scene.fire(tid) is None
    events = [e["event"] for e in scene.events(tid)]
    assert events.count("EscalationRequested") == 1
    assert "TicketEscalated" not in events
    assert scene.get(tid)["pending_escalation"] is None
    assert_problem(scene.decide(tid, "reject"), 409)


# -- without approval ----------------------------------------------------------


def test_a_rule_without_approval_escalates_a_ticket_untouched_for_an_hour(
    scene: Scene,
) -> None:
    tid = scene.open(priority="urgent")
    scene.clock.set(START + timedelta(minutes=30))
    note = scene.client.post(
        f"{TICKETS}/{tid}/comments",
        json={"body": "Looking", "internal": True},
        headers=scene.agent,
    )
    assert note.status_code == 201, note.text

    # An hour after creation, but only half an hour after the last touch.
    scene.clock.set(START + timedelta(minutes=61))
    assert scene.fire(tid, "urgent_untouched") is None
    scene.clock.set(START + timedelta(minutes=91))
    assert scene.fire(tid, "urgent_untouched") is not None

    ticket = scene.get(tid)
    assert ticket["pending_escalation"] is None
    assert ticket["escalation_level"] == 1
    assert (ticket["assigned_team"], ticket["assignee_id"]) == ("Engineering", "eng-1")
    escalated = next(e for e in scene.events(tid) if e["event"] == "TicketEscalated")
    assert escalated["actor"]["kind"] == "automation"
    assert escalated["data"]["rule"] == "urgent_untouched"
    assert "since last update" in escalated["data"]["reason"]


# -- on the business calendar (issue 11, point 11) ---------------------------------

BERLIN_DESK: dict[str, Any] = {
    **SETTINGS,
    "business_hours": {
        "timezone": "Europe/Berlin",
        "week": {
            day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")
        },
    },
    "escalation_rules": [
        {
            "name": "complaint_in_business_hours",
            "conditions": {"priority": "urgent"},
            "level": 1,
            "escalation_time_hours": 1,
            "business_hours": True,
            "escalate_to_team": "Engineering",
        }
    ],
}


def test_a_rule_on_business_hours_counts_from_when_the_desk_opens(
    scene: Scene,
) -> None:
    put_settings(scene.client, scene.auth_for, scene.tenant, BERLIN_DESK)
    # Monday 7 December 2026, 08:30 in Berlin: half an hour before opening.
    opened_at = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)
    scene.clock.set(opened_at)
    tid = scene.open(priority="urgent")

    # 09:30 in Berlin: an hour on the wall clock, half an hour of business.
    scene.clock.set(opened_at + timedelta(hours=1))
    assert scene.fire(tid, "complaint_in_business_hours") is None
    assert scene.get(tid)["escalation_level"] == 0

    # 10:00 in Berlin: the desk's first hour has passed.
    scene.clock.set(opened_at + timedelta(hours=1, minutes=31))
    assert scene.fire(tid, "complaint_in_business_hours") is not None
    ticket = scene.get(tid)
    assert (ticket["escalation_level"], ticket["assigned_team"]) == (1, "Engineering")
