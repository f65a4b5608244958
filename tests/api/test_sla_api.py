"""SLA clocks over HTTP, on a Europe/Berlin business calendar and fake time.

The tenant works Monday to Friday, 09:00-17:00 Berlin time (UTC+1 in
December), with Christmas Day off. Every due time below is worked out by
hand in business minutes on that calendar; the service's clock is set to
each moment the story needs (``clock`` fixture), never slept for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor, Headers, ManualClock, put_settings

TICKETS = "/api/v1/tickets"
BERLIN = ZoneInfo("Europe/Berlin")

WORKING_WEEK = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
CALENDAR = {
    "timezone": "Europe/Berlin",
    "week": WORKING_WEEK,
    "holidays": ["2026-12-25"],
}
SETTINGS: dict[str, Any] = {
    "sla_config": {
        "high": {"response": 60, "resolution": 480, "next_reply": 120},
        "urgent": {"response": 30, "resolution": 240},
    },
    "business_hours": CALENDAR,
}


def berlin(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    """A wall-clock moment in Berlin in (December) 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# -- the people -----------------------------------------------------------


class Desk:
    """A tenant's agent and one of its customers, over HTTP."""

    def __init__(self, client: TestClient, auth_for: AuthFor, tenant: str) -> None:
        self.client = client
        self.agent: Headers = auth_for(tenant, "agent-1", "agent")
        self.customer: Headers = auth_for(tenant, "cust-1", "customer")

    def open(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "VPN drops every hour", "customer_id": "cust-1", **fields}
        response = self.client.post(f"{TICKETS}/", json=body, headers=self.agent)
        assert response.status_code == 201, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    def sla(self, ticket_id: str, headers: Headers | None = None) -> dict[str, Any]:
        response = self.client.get(
            f"{TICKETS}/{ticket_id}/sla", headers=headers or self.agent
        )
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    def command(
        self,
        ticket_id: str,
        action: str,
        body: dict[str, Any] | None = None,
        headers: Headers | None = None,
    ) -> dict[str, Any]:
        response = self.client.post(
            f"{TICKETS}/{ticket_id}/{action}", json=body, headers=headers or self.agent
        )
        assert response.is_success, response.text
        result: dict[str, Any] = response.json()
        return result

    def status(self, ticket_id: str, status: str) -> dict[str, Any]:
        return self.command(ticket_id, "status", {"status": status})

    def reply(self, ticket_id: str, body: str, **extra: Any) -> None:
        self.command(ticket_id, "comments", {"body": body, **extra})

    def customer_says(self, ticket_id: str, body: str) -> None:
        self.command(ticket_id, "comments", {"body": body}, headers=self.customer)

    def history(self, ticket_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"{TICKETS}/{ticket_id}/history", headers=self.agent)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        return entries


@pytest.fixture
def desk(client: TestClient, auth_for: AuthFor, tenant: str) -> Desk:
    return Desk(client, auth_for, tenant)


@pytest.fixture
def settings_version(client: TestClient, auth_for: AuthFor, tenant: str) -> int:
    return put_settings(client, auth_for, tenant, SETTINGS)


# -- due times on business time --------------------------------------------


@pytest.mark.parametrize(
    ("created", "warning_at", "response_due", "resolution_due"),
    [
        pytest.param(
            berlin(4, 20),  # Friday evening, after hours
            berlin(7, 9, 48),  # 80 % of 60 minutes, from Monday 09:00
            berlin(7, 10),
            berlin(7, 17),  # 480 minutes: all of Monday
            id="friday-evening",
        ),
        pytest.param(
            berlin(24, 16, 30),  # Thursday before Christmas, 30 minutes left
            berlin(28, 9, 18),  # Friday the 25th is a holiday
            berlin(28, 9, 30),
            berlin(28, 16, 30),
            id="before-a-holiday",
        ),
    ],
)
def test_a_ticket_created_after_hours_is_due_in_business_time(
    desk: Desk,
    clock: ManualClock,
    settings_version: int,
    created: datetime,
    warning_at: datetime,
    response_due: datetime,
    resolution_due: datetime,
) -> None:
    clock.set(created)
    ticket = desk.open(priority="high")

    summary = ticket["sla"]["first_response"]
    assert (summary["state"], moment(summary["due_at"])) == ("running", response_due)
    report = desk.sla(ticket["id"])
    first, resolution = report["first_response"], report["resolution"]
    assert moment(first["due_at"]) == response_due
    assert moment(first["warning_at"]) == warning_at
    assert moment(resolution["due_at"]) == resolution_due
    assert report["next_reply"] is None
    assert (first["state"], first["target_minutes"]) == ("running", 60)
    assert (first["business_minutes_used"], first["business_minutes_left"]) == (0, 60)
    assert moment(first["started_at"]) == created
    assert moment(report["computed_at"]) == created

    explanation = first["explanation"]
    assert explanation["policy"] == "default"
    assert explanation["settings_version"] == settings_version
    assert explanation["calendar"] == CALENDAR
    assert (explanation["priority"], explanation["target_minutes"]) == ("high", 60)
    assert explanation["paused"] == []
    assert moment(explanation["due_at"]) == response_due
    assert report["policy"]["name"] == "default"
    assert report["policy"]["settings_version"] == settings_version
    assert report["policy"]["targets"]["high"]["resolution"] == 480


def test_the_clock_runs_only_in_business_hours(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(4, 20))  # Friday evening
    ticket = desk.open(priority="high")

    clock.set(berlin(5, 12))  # Saturday noon: still nothing used
    first = desk.sla(ticket["id"])["first_response"]
    assert (first["state"], first["business_minutes_used"]) == ("running", 0)

    clock.set(berlin(7, 9, 30))  # Monday, half an hour in
    first = desk.sla(ticket["id"])["first_response"]
    assert (first["business_minutes_used"], first["business_minutes_left"]) == (30, 30)
    assert first["state"] == "running"

    clock.set(berlin(7, 9, 50))  # past the warning point (48 minutes)
    staff = desk.sla(ticket["id"])
    assert staff["first_response"]["state"] == "warning"
    # The warning point is internal: the customer's clock is just running.
    assert desk.sla(ticket["id"], desk.customer)["first_response"]["state"] == (
        "running"
    )

    clock.set(berlin(7, 10, 1))
    report = desk.sla(ticket["id"])
    assert report["first_response"]["state"] == "breached"
    assert report["first_response"]["business_minutes_left"] == 0
    shown = desk.client.get(f"{TICKETS}/{ticket['id']}", headers=desk.agent).json()
    assert shown["sla"]["first_response"]["state"] == "breached"
    assert shown["sla"]["resolution"] == {
        "state": "running",
        "due_at": report["resolution"]["due_at"],
    }


def test_the_customer_sees_states_and_due_times_but_no_policy_internals(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    ticket = desk.open(priority="high")
    clock.set(berlin(7, 9, 10))

    report = desk.sla(ticket["id"], desk.customer)

    assert report["policy"] is None
    first = report["first_response"]
    assert first["state"] == "running"
    assert moment(first["due_at"]) == berlin(7, 10)
    assert moment(first["started_at"]) == berlin(7, 9)
    for internal in (
        "warning_at",
        "target_minutes",
        "business_minutes_used",
        "business_minutes_left",
        "pauses",
        "explanation",
    ):
        assert first[internal] is None, internal
    assert "Europe/Berlin" not in str(report)
    # Nor does the customer's history carry the clocks' events.
    history = desk.client.get(
        f"{TICKETS}/{ticket['id']}/history", headers=desk.customer
    ).json()
    assert [e["event"] for e in history] == ["TicketCreated"]
    assert any(e["event"] == "SLAStarted" for e in desk.history(ticket["id"]))
    # The ticket itself shows the customer the same summary.
    mine = desk.client.get(f"{TICKETS}/{ticket['id']}", headers=desk.customer).json()
    assert moment(mine["sla"]["first_response"]["due_at"]) == berlin(7, 10)
    assert mine["pending_escalation"] is None


# -- pauses ------------------------------------------------------------------


def test_pending_pauses_resolution_and_resuming_after_a_weekend_extends_it(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(3, 10))  # Thursday
    ticket = desk.open(priority="high")
    tid = ticket["id"]
    # 420 minutes on Thursday, 60 on Friday.
    assert moment(desk.sla(tid)["resolution"]["due_at"]) == berlin(4, 10)
    clock.set(berlin(3, 10, 30))
    desk.reply(tid, "Which client version do you use?")

    clock.set(berlin(3, 16))  # 360 business minutes used
    desk.status(tid, "pending")
    paused = desk.sla(tid)["resolution"]
    assert (paused["state"], paused["due_at"]) == ("paused", None)
    assert paused["pauses"] == [{"start": paused["pauses"][0]["start"], "end": None}]
    assert moment(paused["pauses"][0]["start"]) == berlin(3, 16)

    clock.set(berlin(5, 11))  # Saturday: still paused, nothing used
    during = desk.sla(tid)["resolution"]
    assert (during["state"], during["business_minutes_used"]) == ("paused", 360)

    clock.set(berlin(7, 11))  # Monday: the customer answered
    resumed = desk.status(tid, "in_progress")
    report = desk.sla(tid)["resolution"]
    # Paused: Thursday 16-17, Friday 9-17, Monday 9-11 = 660 business
    # minutes; the 120 minutes left run from Monday 11:00.
    assert moment(report["due_at"]) == berlin(7, 13)
    assert resumed["sla"]["resolution"]["state"] == "running"
    assert (report["business_minutes_used"], report["business_minutes_left"]) == (
        360,
        120,
    )
    assert [moment(p["start"]) for p in report["pauses"]] == [berlin(3, 16)]
    assert moment(report["pauses"][0]["end"]) == berlin(7, 11)
    paused_intervals = report["explanation"]["paused"]
    assert len(paused_intervals) == 1
    assert paused_intervals[0]["business_minutes"] == 660
    events = {e["event"]: e["data"] for e in desk.history(tid)}
    assert events["SLAPaused"] == {"target": "resolution", "status": "pending"}
    assert events["SLAResumed"]["paused_minutes"] == 660
    # Pending does not pause the reply clocks: the first response stood.
    assert desk.sla(tid)["first_response"]["state"] == "met"


def test_pause_on_can_pause_on_hold_too(
    desk: Desk,
    clock: ManualClock,
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
) -> None:
    config = {
        **SETTINGS["sla_config"],
        "pause_on": {"resolution": ["pending", "on_hold"]},
    }
    put_settings(client, auth_for, tenant, {**SETTINGS, "sla_config": config})
    clock.set(berlin(7, 9))  # Monday
    tid = desk.open(priority="high")["id"]

    clock.set(berlin(7, 9, 30))
    desk.status(tid, "on_hold")
    held = desk.sla(tid)
    assert (held["resolution"]["state"], held["resolution"]["due_at"]) == (
        "paused",
        None,
    )
    assert held["policy"]["pause_on"]["resolution"] == ["pending", "on_hold"]
    # Only the resolution clock pauses.
    assert held["first_response"]["state"] == "running"

    clock.set(berlin(8, 9, 30))  # Tuesday: a whole business day later
    desk.status(tid, "open")
    resolution = desk.sla(tid)["resolution"]
    # 30 minutes used before the hold; 450 left from Tuesday 09:30.
    assert moment(resolution["due_at"]) == berlin(8, 17)
    assert resolution["explanation"]["paused"][0]["business_minutes"] == 480


def test_a_clock_overdue_before_a_pause_stays_breached(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    """No timer recorded the breach (it runs late, or not at all): pausing
    afterwards must not turn an overdue clock into a paused or met one."""
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(8, 10))  # resolution was due on Monday at 17:00
    desk.status(tid, "pending")
    assert desk.sla(tid)["resolution"]["state"] == "breached"
    desk.command(tid, "resolve", {"resolution": "Fixed, late"})
    assert desk.sla(tid)["resolution"]["state"] == "breached"


def test_on_hold_does_not_pause_without_configuration(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(7, 10))
    desk.status(tid, "on_hold")
    resolution = desk.sla(tid)["resolution"]
    assert (resolution["state"], moment(resolution["due_at"])) == (
        "running",
        berlin(7, 17),
    )


# -- recalculation -----------------------------------------------------------


def test_a_priority_change_recomputes_due_times_and_says_why(
    desk: Desk,
    clock: ManualClock,
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    settings_version: int,
) -> None:
    clock.set(berlin(7, 9))  # Monday
    tid = desk.open(priority="high", category="billing")["id"]
    assert moment(desk.sla(tid)["resolution"]["due_at"]) == berlin(7, 17)
    # Meanwhile the tenant narrows its policy for billing tickets.
    narrowed = {
        **SETTINGS["sla_config"],
        "policies": [
            {
                "name": "billing",
                "conditions": {"category": "billing"},
                "targets": {"urgent": {"response": 20, "resolution": 120}},
            }
        ],
    }
    new_version = put_settings(
        client, auth_for, tenant, {**SETTINGS, "sla_config": narrowed}
    )
    assert new_version > settings_version

    clock.set(berlin(7, 10))
    response = client.put(
        f"{TICKETS}/{tid}", json={"priority": "urgent"}, headers=desk.agent
    )
    assert response.status_code == 200, response.text

    report = desk.sla(tid)
    # Same start (Monday 09:00), new targets: 20 and 120 business minutes.
    first, resolution = report["first_response"], report["resolution"]
    assert moment(resolution["due_at"]) == berlin(7, 11)
    assert moment(first["due_at"]) == berlin(7, 9, 20)
    assert first["state"] == "breached"  # 09:20 has passed: time is not reset
    assert resolution["target_minutes"] == 120
    explanation = resolution["explanation"]
    assert explanation["policy"] == "billing"
    assert explanation["settings_version"] == new_version
    assert (explanation["priority"], explanation["target_minutes"]) == ("urgent", 120)
    assert report["policy"]["name"] == "billing"
    recalculated = [e for e in desk.history(tid) if e["event"] == "SLARecalculated"]
    assert {e["data"]["target"] for e in recalculated} == {
        "first_response",
        "resolution",
    }
    for event in recalculated:
        assert event["data"]["explanation"]["policy"] == "billing"
        assert event["data"]["explanation"]["settings_version"] == new_version
    assert response.json()["sla"]["resolution"]["due_at"] == resolution["due_at"]


# -- reply clocks ------------------------------------------------------------


def test_the_first_public_agent_reply_meets_the_first_response(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(7, 9, 10))
    desk.reply(tid, "Looking at the logs", internal=True)
    desk.customer_says(tid, "Any news?")
    first = desk.sla(tid)["first_response"]
    assert (first["state"], first["stopped_at"]) == ("running", None)
    # Before the first reply, the first-response clock covers the customer.
    assert desk.sla(tid)["next_reply"] is None

    clock.set(berlin(7, 9, 40))
    desk.reply(tid, "We found it: a certificate expired.")

    first = desk.sla(tid)["first_response"]
    assert first["state"] == "met"
    assert moment(first["stopped_at"]) == berlin(7, 9, 40)
    assert first["business_minutes_used"] == 40
    ticket = desk.client.get(f"{TICKETS}/{tid}", headers=desk.agent).json()
    assert moment(ticket["first_response_at"]) == berlin(7, 9, 40)


def test_a_late_first_reply_is_breached(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(7, 11))
    desk.reply(tid, "Sorry for the wait.")
    first = desk.sla(tid)["first_response"]
    assert (first["state"], first["business_minutes_used"]) == ("breached", 120)


def test_a_customer_comment_starts_next_reply_and_an_agent_reply_stops_it(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(7, 9, 15))
    desk.reply(tid, "Please restart the client.")

    clock.set(berlin(7, 16, 30))
    desk.customer_says(tid, "Restarted, still broken.")
    waiting = desk.sla(tid)["next_reply"]
    # 120 minutes: 30 today, 90 on Tuesday morning.
    assert (waiting["state"], moment(waiting["due_at"])) == (
        "running",
        berlin(8, 10, 30),
    )
    assert moment(waiting["started_at"]) == berlin(7, 16, 30)
    assert waiting["explanation"]["target_minutes"] == 120

    clock.set(berlin(8, 9, 30))
    desk.reply(tid, "Escalating to the VPN team.")
    answered = desk.sla(tid)["next_reply"]
    assert (answered["state"], answered["business_minutes_used"]) == ("met", 60)

    clock.set(berlin(8, 12))
    desk.customer_says(tid, "Thanks, waiting.")
    again = desk.sla(tid)["next_reply"]
    assert (again["state"], moment(again["due_at"])) == ("running", berlin(8, 14))
    started = [
        e["data"]["target"] for e in desk.history(tid) if e["event"] == "SLAStarted"
    ]
    assert started.count("next_reply") == 2


# -- resolution ----------------------------------------------------------------


def test_resolving_in_time_meets_the_resolution(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(7, 9, 45))
    resolved = desk.command(tid, "resolve", {"resolution": "New certificate"})

    report = desk.sla(tid)
    assert report["resolution"]["state"] == "met"
    assert moment(report["resolution"]["stopped_at"]) == berlin(7, 9, 45)
    assert report["resolution"]["business_minutes_used"] == 45
    # Never answered publicly, but not yet due either: no longer owed,
    # neither met nor breached.
    assert report["first_response"]["state"] == "stopped"
    assert resolved["sla"]["resolution"]["state"] == "met"
    # A stopped clock stays as it stopped, however late it is read.
    clock.set(berlin(14, 9))
    assert desk.sla(tid)["resolution"]["state"] == "met"


def test_resolving_late_is_breached_and_reopening_restarts_the_clock(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    tid = desk.open(priority="high")["id"]
    clock.set(berlin(8, 10))  # Tuesday: 540 business minutes, due Monday 17:00
    desk.command(tid, "resolve", {"resolution": "Worked around it"})
    late = desk.sla(tid)["resolution"]
    assert (late["state"], late["business_minutes_used"]) == ("breached", 540)

    clock.set(berlin(9, 15))  # Wednesday afternoon
    reopened = desk.command(tid, "reopen", {"reason": "Broken again"})

    report = desk.sla(tid)["resolution"]
    assert report["state"] == "running"
    assert moment(report["started_at"]) == berlin(9, 15)
    assert report["stopped_at"] is None
    # 480 minutes from Wednesday 15:00: 120 today, 360 on Thursday.
    assert moment(report["due_at"]) == berlin(10, 15)
    assert report["business_minutes_used"] == 0
    assert reopened["sla"]["resolution"]["state"] == "running"
    events = [e["event"] for e in desk.history(tid)]
    assert "SLAStarted" in events[events.index("TicketReopened") :]


def test_a_ticket_read_as_of_an_earlier_version_shows_the_sla_then(
    desk: Desk, clock: ManualClock, settings_version: int
) -> None:
    clock.set(berlin(7, 9))
    ticket = desk.open(priority="high")
    clock.set(berlin(7, 12))
    desk.reply(ticket["id"], "Done soon.")
    then = desk.client.get(
        f"{TICKETS}/{ticket['id']}",
        params={"as_of": str(ticket["version"])},
        headers=desk.agent,
    ).json()
    # At creation the first response was running, not breached as it is now.
    assert then["sla"]["first_response"]["state"] == "running"
    now = desk.client.get(f"{TICKETS}/{ticket['id']}", headers=desk.agent).json()
    assert now["sla"]["first_response"]["state"] == "breached"
