"""SLA clocks and escalation requests on the Ticket aggregate (no database).

Most tests run on an office calendar: Europe/Berlin, Monday to Friday
08:00-18:00, closed on Good Friday and Easter Monday 2026. Times in the
tests are Berlin wall-clock times unless they say UTC.
"""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.application import Application, project_aggregate
from eventsourcing.domain import DomainEventProtocol
from hypothesis import given, settings
from hypothesis import strategies as st

from dotmac.ticketing.domain import sla
from dotmac.ticketing.domain.calendar import WEEKDAYS, BusinessCalendar
from dotmac.ticketing.domain.deadlines import TimerDeadline, ticket_deadlines
from dotmac.ticketing.domain.errors import CommandRefused
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import SLAPolicy, policy_for
from dotmac.ticketing.domain.sla_clocks import SlaClocks
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.ticket import Ticket

BERLIN = ZoneInfo("Europe/Berlin")
TENANT = "acme"
AGENT = Provenance(TENANT, Actor("agent-1", "agent"))
SUPERVISOR = Provenance(TENANT, Actor("sup-1", "supervisor"))
CUSTOMER = Provenance(TENANT, Actor("cust-1", "customer"))
TIMER = Provenance(TENANT, Actor.automation("sla-timer"))
RULES = Provenance(TENANT, Actor.automation("escalation-rules"))

OFFICE_CONFIG: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "week": {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-04-03", "2026-04-06"],
}
OFFICE = BusinessCalendar.from_config(OFFICE_CONFIG)
SETTINGS: dict[str, Any] = {
    "sla_config": {
        "high": {"response": 240, "resolution": 1440, "next_reply": 60},
        "normal": {"response": 1440, "resolution": 4320},
    },
    "business_hours": OFFICE_CONFIG,
}
VERSION = 3
#: Monday 2 March 2026, 09:00 (CET, 08:00 UTC): an ordinary working morning.
MONDAY_9 = datetime(2026, 3, 2, 9, tzinfo=BERLIN)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def policy(document: dict[str, Any] | None = None, version: int = VERSION) -> SLAPolicy:
    facts = TicketFacts("general", "high", "email", (), {}, "VPN down", "")
    return policy_for(parse(SETTINGS if document is None else document), version, facts)


def with_pause_on(pause_on: dict[str, list[str]]) -> SLAPolicy:
    return policy(
        {**SETTINGS, "sla_config": {**SETTINGS["sla_config"], "pause_on": pause_on}}
    )


def create(
    at: datetime = MONDAY_9,
    priority: str = "high",
    sla_policy: SLAPolicy | None = None,
) -> Ticket:
    return Ticket.create(
        ticket_id=uuid4(),
        number=1,
        title="VPN down",
        description="",
        category="general",  # type: ignore[arg-type]
        priority=priority,  # type: ignore[arg-type]
        channel="email",  # type: ignore[arg-type]
        customer_id="cust-1",
        customer_email="c@example.com",
        tags=[],
        custom_fields={},
        provenance=AGENT,
        at=at,
        sla_policy=sla_policy or policy(),
    )


def events(ticket: Ticket, name: str | None = None, since: int = 0) -> list[Any]:
    """The ticket's new events (of one kind), from position ``since`` on."""
    return [
        e
        for e in ticket.pending_events[since:]
        if name is None or type(e).__name__ == name
    ]


def sla_names(ticket: Ticket, since: int) -> list[tuple[str, str]]:
    return [
        (type(e).__name__, e.target)
        for e in events(ticket, since=since)
        if type(e).__name__.startswith("SLA")
    ]


def reply(ticket: Ticket, at: datetime, who: Provenance = AGENT) -> None:
    ticket.add_comment("An answer", internal=False, provenance=who, at=at)


def note(ticket: Ticket, at: datetime) -> None:
    ticket.add_comment("For us only", internal=True, provenance=AGENT, at=at)


def status(ticket: Ticket, new: str, at: datetime) -> None:
    ticket.change_status(new, provenance=AGENT, at=at)  # type: ignore[arg-type]


# -- due times on creation ----------------------------------------------------------


def test_a_ticket_created_outside_business_hours_before_a_holiday() -> None:
    # Thursday evening before Easter: Good Friday, the weekend and Easter
    # Monday are closed, so the clocks start on Tuesday 08:00.
    created = berlin(2026, 4, 2, 19, 30)
    ticket = create(created)
    report = ticket.sla_report(created)
    assert set(report) == {"first_response", "resolution"}
    first, resolution = report["first_response"], report["resolution"]
    assert first["due_at"] == berlin(2026, 4, 7, 12)
    assert first["warning_at"] == berlin(2026, 4, 7, 11, 12)  # 80 % of 240
    # 1440 minutes: Tuesday 600, Wednesday 600, Thursday 240.
    assert resolution["due_at"] == berlin(2026, 4, 9, 12)
    assert resolution["warning_at"] == berlin(2026, 4, 8, 17, 12)
    for row in report.values():
        assert row["state"] == "running"
        assert row["started_at"] == created
        assert row["business_minutes_used"] == 0
        assert row["pauses"] == []
    assert first["business_minutes_left"] == 240

    def used(now: datetime) -> float:
        return float(ticket.sla_report(now)["first_response"]["business_minutes_used"])

    # Nothing is used until Tuesday's opening, then the clock runs.
    assert used(berlin(2026, 4, 6, 12)) == 0
    assert used(berlin(2026, 4, 7, 8)) == 0
    assert used(berlin(2026, 4, 7, 9)) == 60


def test_each_started_clock_records_its_policy_and_why() -> None:
    ticket = create()
    started = events(ticket, "SLAStarted")
    assert [e.target for e in started] == ["first_response", "resolution"]
    assert ticket.sla_policy == policy().snapshot()
    first = started[0]
    assert first.target_minutes == 240
    assert first.policy == policy().snapshot()
    assert first.explanation["policy"] == "default"
    assert first.explanation["settings_version"] == VERSION
    assert first.explanation["calendar"] == OFFICE_CONFIG
    assert first.explanation["target_minutes"] == 240
    assert first.explanation["paused"] == []
    assert datetime.fromisoformat(first.explanation["due_at"]) == berlin(2026, 3, 2, 13)


def test_without_a_policy_no_clock_runs() -> None:
    ticket = Ticket.create(
        ticket_id=uuid4(),
        number=1,
        title="t",
        description="",
        category="general",  # type: ignore[arg-type]
        priority="high",  # type: ignore[arg-type]
        channel="email",  # type: ignore[arg-type]
        customer_id="cust-1",
        customer_email=None,
        tags=[],
        custom_fields={},
        provenance=AGENT,
        at=MONDAY_9,
    )
    reply(ticket, MONDAY_9)
    assert ticket.sla_report(MONDAY_9) == {}
    assert ticket.check_sla(provenance=TIMER, at=MONDAY_9 + timedelta(days=30)) == []
    assert events(ticket, "SLAStarted") == []


@pytest.mark.parametrize(
    ("created", "first_due", "resolution_due"),
    [
        # Spring forward on Sunday 29 March: Friday is CET (+1), Monday CEST
        # (+2). Urgent is 60 / 480: the reply is due at Friday's closing time
        # (not Monday 08:00), the resolution Monday 15:00 local, 13:00 UTC.
        (berlin(2026, 3, 27, 17), utc(2026, 3, 27, 17), utc(2026, 3, 30, 13)),
        # Fall back on Sunday 25 October: CEST (+2) to CET (+1).
        (berlin(2026, 10, 23, 17), utc(2026, 10, 23, 16), utc(2026, 10, 26, 14)),
    ],
)
def test_due_times_across_a_dst_change(
    created: datetime, first_due: datetime, resolution_due: datetime
) -> None:
    report = create(created, priority="urgent").sla_report(created)
    assert report["first_response"]["due_at"] == first_due
    assert report["resolution"]["due_at"] == resolution_due
    # Wall-clock hours stay 08:00-18:00 on both sides of the change.
    assert resolution_due.astimezone(BERLIN).hour == 15


def test_business_time_on_the_dst_day_itself_is_real_elapsed_time() -> None:
    # Open around the clock every day (a holiday keeps it a real calendar).
    config = {
        "timezone": "Europe/Berlin",
        "week": {d: ["00:00", "24:00"] for d in WEEKDAYS},
        "holidays": ["2026-12-25"],
    }
    document = {**SETTINGS, "business_hours": config}
    created = berlin(2026, 3, 28, 23)  # Saturday, 22:00 UTC
    ticket = create(created, sla_policy=policy(document))
    due = ticket.sla_report(created)["first_response"]["due_at"]
    # 240 business minutes are four real hours: 02:00 UTC, 04:00 CEST,
    # although the wall clock moved on by five.
    assert due == utc(2026, 3, 29, 2)
    assert due.astimezone(BERLIN).hour == 4


# -- pausing -----------------------------------------------------------------------


def paused_over_a_weekend() -> Ticket:
    """A normal ticket (1440 / 4320), answered, pending Fri 17:00-Mon 09:00."""
    ticket = create(MONDAY_9, priority="normal")
    ticket.assign(assignee_id="agent-1", provenance=AGENT, at=MONDAY_9)
    reply(ticket, berlin(2026, 3, 2, 10))
    status(ticket, "pending", berlin(2026, 3, 6, 17))
    status(ticket, "in_progress", berlin(2026, 3, 9, 9))
    return ticket


def test_pending_pauses_resolution_and_resuming_after_a_weekend_extends_it() -> None:
    ticket = create(MONDAY_9, priority="normal")
    ticket.assign(assignee_id="agent-1", provenance=AGENT, at=MONDAY_9)
    reply(ticket, berlin(2026, 3, 2, 10))
    before = ticket.sla_report(MONDAY_9)["resolution"]["due_at"]
    # 4320 minutes from Monday 09:00: 540 + 6 x 600, and 180 on Wednesday.
    assert before == berlin(2026, 3, 11, 11)

    mark = len(ticket.pending_events)
    status(ticket, "pending", berlin(2026, 3, 6, 17))
    assert sla_names(ticket, mark) == [("SLAPaused", "resolution")]
    saturday = ticket.sla_report(berlin(2026, 3, 7, 12))["resolution"]
    assert saturday["state"] == "paused"
    assert saturday["due_at"] is None
    # Monday to Friday 17:00: 540 + 4 x 600 - 60 paused on Friday = 2880.
    assert saturday["business_minutes_used"] == 2880
    assert saturday["pauses"] == [{"start": berlin(2026, 3, 6, 17), "end": None}]

    mark = len(ticket.pending_events)
    status(ticket, "in_progress", berlin(2026, 3, 9, 9))
    [resumed] = events(ticket, "SLAResumed", mark)
    # Friday 17-18 and Monday 08-09 were paused: two business hours.
    assert resumed.paused_minutes == 120
    assert resumed.due_at == berlin(2026, 3, 11, 13)
    assert OFFICE.business_minutes_between(before, resumed.due_at) == 120
    assert resumed.explanation["paused"] == [
        {
            "start": berlin(2026, 3, 6, 17).isoformat(),
            "end": berlin(2026, 3, 9, 9).isoformat(),
            "business_minutes": 120.0,
        }
    ]
    after = ticket.sla_report(berlin(2026, 3, 9, 10))["resolution"]
    assert after["state"] == "running"
    assert after["business_minutes_used"] == 2880 + 60
    assert after["business_minutes_left"] == 4320 - 2940


def test_a_clock_stopped_while_paused_closes_the_pause() -> None:
    ticket = create(MONDAY_9)
    status(ticket, "pending", berlin(2026, 3, 2, 10))
    ticket.resolve(
        resolution="done",
        resolution_code="fixed",
        provenance=AGENT,
        at=berlin(2026, 3, 2, 11),
    )
    row = ticket.sla_report(berlin(2026, 3, 3, 9))["resolution"]
    assert row["state"] == "met"
    assert row["pauses"] == [
        {"start": berlin(2026, 3, 2, 10), "end": berlin(2026, 3, 2, 11)}
    ]
    assert row["business_minutes_used"] == 60


def test_pause_on_is_configurable_per_target() -> None:
    ticket = create(sla_policy=with_pause_on({"first_response": ["on_hold"]}))
    mark = len(ticket.pending_events)
    status(ticket, "on_hold", berlin(2026, 3, 2, 10))
    # Only the target that lists on_hold pauses; resolution runs on.
    assert sla_names(ticket, mark) == [("SLAPaused", "first_response")]
    status(ticket, "open", berlin(2026, 3, 2, 11))
    [resumed] = events(ticket, "SLAResumed", mark)
    assert resumed.target == "first_response"
    # 240 minutes from 09:00 with one hour on hold.
    assert resumed.due_at == berlin(2026, 3, 2, 14)
    # Pending still pauses resolution by default, and only resolution.
    mark = len(ticket.pending_events)
    status(ticket, "pending", berlin(2026, 3, 2, 11, 30))
    assert sla_names(ticket, mark) == [("SLAPaused", "resolution")]
    report = ticket.sla_report(berlin(2026, 3, 2, 12))
    assert report["first_response"]["pauses"] == [
        {"start": berlin(2026, 3, 2, 10), "end": berlin(2026, 3, 2, 11)}
    ]
    assert report["first_response"]["business_minutes_used"] == 120
    assert report["resolution"]["state"] == "paused"


def test_a_policy_may_stop_pending_from_pausing() -> None:
    ticket = create(sla_policy=with_pause_on({"resolution": []}))
    mark = len(ticket.pending_events)
    status(ticket, "pending", berlin(2026, 3, 2, 10))
    assert sla_names(ticket, mark) == []


def test_a_clock_that_starts_in_a_pausing_status_is_paused_at_once() -> None:
    ticket = create(sla_policy=with_pause_on({"first_response": ["new"]}))
    assert sla_names(ticket, 0) == [
        ("SLAStarted", "first_response"),
        ("SLAPaused", "first_response"),
        ("SLAStarted", "resolution"),
    ]
    assert ticket.sla_report(MONDAY_9)["first_response"]["state"] == "paused"
    mark = len(ticket.pending_events)
    # Assigning opens the ticket: the reply is owed from now.
    ticket.assign(assignee_id="agent-1", provenance=AGENT, at=berlin(2026, 3, 2, 10))
    [resumed] = events(ticket, "SLAResumed", mark)
    assert resumed.due_at == berlin(2026, 3, 2, 14)


# -- recalculation -----------------------------------------------------------------


def test_a_priority_change_recomputes_due_times_keeping_paused_time() -> None:
    ticket = paused_over_a_weekend()
    mark = len(ticket.pending_events)
    newer = policy(version=4)
    ticket.change_priority(
        "low",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 3, 9, 10),
        sla_policy=newer,
    )
    # The first-response clock stopped at the reply; only resolution moves.
    [recalculated] = events(ticket, "SLARecalculated", mark)
    assert recalculated.target == "resolution"
    assert recalculated.target_minutes == 10080
    # Low is 10080 minutes, and the two paused hours are not lost.
    assert recalculated.due_at == OFFICE.add_business_minutes(MONDAY_9, 10080 + 120)
    assert recalculated.policy == newer.snapshot()
    explanation = recalculated.explanation
    assert explanation["policy"] == "default"
    assert explanation["settings_version"] == 4
    assert explanation["priority"] == "low"
    assert explanation["calendar"] == OFFICE_CONFIG
    assert explanation["target_minutes"] == 10080
    assert explanation["paused"] == [
        {
            "start": berlin(2026, 3, 6, 17).isoformat(),
            "end": berlin(2026, 3, 9, 9).isoformat(),
            "business_minutes": 120.0,
        }
    ]
    assert explanation["due_at"] == recalculated.due_at.isoformat()
    assert ticket.sla_policy == newer.snapshot()
    row = ticket.sla_report(berlin(2026, 3, 9, 10))["resolution"]
    assert row["target_minutes"] == 10080
    assert row["due_at"] == recalculated.due_at


def test_a_priority_change_while_paused_applies_on_resume() -> None:
    ticket = paused_over_a_weekend()
    status(ticket, "pending", berlin(2026, 3, 10, 10))
    mark = len(ticket.pending_events)
    # Without a current policy, the ticket's own snapshot has every priority.
    ticket.change_priority(
        "low",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 3, 10, 11),
    )
    [recalculated] = events(ticket, "SLARecalculated", mark)
    assert recalculated.due_at is None
    assert recalculated.explanation["settings_version"] == VERSION
    assert recalculated.explanation["paused"][-1]["end"] is None
    status(ticket, "in_progress", berlin(2026, 3, 10, 12))
    [resumed] = events(ticket, "SLAResumed", mark)
    assert resumed.paused_minutes == 120 + 120
    assert resumed.due_at == OFFICE.add_business_minutes(MONDAY_9, 10080 + 240)


def test_a_category_with_its_own_policy_moves_the_due_times() -> None:
    document = {
        **SETTINGS,
        "sla_config": {
            **SETTINGS["sla_config"],
            "policies": [
                {
                    "name": "billing",
                    "conditions": {"category": ["billing"]},
                    "targets": {"high": {"response": 60, "resolution": 480}},
                }
            ],
        },
    }
    ticket = create()
    mark = len(ticket.pending_events)
    # Without a policy given, a category change leaves the clocks alone.
    ticket.categorize(
        "account",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 3, 2, 9, 30),
    )
    assert sla_names(ticket, mark) == []
    billing = TicketFacts("billing", "high", "email", (), {}, "VPN down", "")
    ticket.categorize(
        "billing",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 3, 2, 10),
        sla_policy=policy_for(parse(document), 6, billing),
    )
    recalculated = events(ticket, "SLARecalculated", mark)
    assert {e.target: e.due_at for e in recalculated} == {
        "first_response": berlin(2026, 3, 2, 10),
        "resolution": berlin(2026, 3, 2, 17),
    }
    for event in recalculated:
        assert event.explanation["policy"] == "billing"
        assert event.explanation["settings_version"] == 6


def test_recalculating_under_the_same_policy_records_nothing() -> None:
    ticket = create()
    mark = len(ticket.pending_events)
    assert ticket.recalculate_sla(policy(), provenance=AGENT, at=MONDAY_9) == []
    assert events(ticket, since=mark) == []
    moved = ticket.recalculate_sla(policy(version=5), provenance=AGENT, at=MONDAY_9)
    # A new settings version is recorded even when the due times stay.
    assert moved == ["first_response", "resolution"]


# -- replies -----------------------------------------------------------------------


def test_the_first_public_agent_reply_meets_the_first_response() -> None:
    ticket = create()
    mark = len(ticket.pending_events)
    note(ticket, berlin(2026, 3, 2, 10))
    # The customer speaking before any reply owes nothing new.
    reply(ticket, berlin(2026, 3, 2, 10, 30), CUSTOMER)
    # An automation's public message (an auto-acknowledgement) is no answer.
    reply(ticket, berlin(2026, 3, 2, 10, 45), TIMER)
    assert sla_names(ticket, mark) == []
    assert ticket.first_response_at is None

    reply(ticket, berlin(2026, 3, 2, 11))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("first_response", "met")
    assert stopped.business_minutes_used == 120
    assert ticket.first_response_at == berlin(2026, 3, 2, 11)
    row = ticket.sla_report(berlin(2026, 3, 5, 9))["first_response"]
    assert row["state"] == "met"
    assert row["stopped_at"] == berlin(2026, 3, 2, 11)
    assert row["business_minutes_used"] == 120
    assert row["business_minutes_left"] == 120
    # A second reply changes nothing.
    mark = len(ticket.pending_events)
    reply(ticket, berlin(2026, 3, 2, 12))
    assert sla_names(ticket, mark) == []


def test_a_late_first_reply_is_a_breach() -> None:
    ticket = create()
    mark = len(ticket.pending_events)
    reply(ticket, berlin(2026, 3, 2, 14))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("first_response", "breached")
    assert stopped.business_minutes_used == 300
    assert ticket.sla_report(berlin(2026, 3, 2, 15))["first_response"]["state"] == (
        "breached"
    )


def test_the_customer_speaking_after_a_reply_starts_the_next_reply_clock() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 11))
    mark = len(ticket.pending_events)
    reply(ticket, berlin(2026, 3, 2, 11, 30), CUSTOMER)
    [started] = events(ticket, "SLAStarted", mark)
    assert started.target == "next_reply"
    assert started.target_minutes == 60
    assert started.due_at == berlin(2026, 3, 2, 12, 30)
    # More from the customer while waiting does not restart the clock.
    reply(ticket, berlin(2026, 3, 2, 11, 45), CUSTOMER)
    note(ticket, berlin(2026, 3, 2, 12))
    assert sla_names(ticket, mark) == [("SLAStarted", "next_reply")]

    reply(ticket, berlin(2026, 3, 2, 12, 10))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("next_reply", "met")
    assert stopped.business_minutes_used == 40

    # The next customer message starts a fresh clock; answered late, it breaches.
    mark = len(ticket.pending_events)
    reply(ticket, berlin(2026, 3, 2, 14), CUSTOMER)
    row = ticket.sla_report(berlin(2026, 3, 2, 14))["next_reply"]
    assert row["started_at"] == berlin(2026, 3, 2, 14)
    assert row["due_at"] == berlin(2026, 3, 2, 15)
    assert row["state"] == "running"
    reply(ticket, berlin(2026, 3, 2, 15, 30))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("next_reply", "breached")


# -- resolve and reopen ------------------------------------------------------------


def resolve(ticket: Ticket, at: datetime) -> None:
    ticket.resolve(resolution="done", resolution_code="fixed", provenance=AGENT, at=at)


def test_resolve_meets_resolution_and_stops_what_is_no_longer_owed() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    reply(ticket, berlin(2026, 3, 2, 10, 30), CUSTOMER)
    mark = len(ticket.pending_events)
    resolve(ticket, berlin(2026, 3, 2, 11))
    outcomes = {e.target: e.outcome for e in events(ticket, "SLAStopped", mark)}
    assert outcomes == {"resolution": "met", "next_reply": "stopped"}
    report = ticket.sla_report(berlin(2026, 3, 9, 9))
    assert {t: row["state"] for t, row in report.items()} == {
        "first_response": "met",
        "resolution": "met",
        "next_reply": "stopped",
    }


def test_resolving_unanswered_stops_the_first_response() -> None:
    ticket = create()
    mark = len(ticket.pending_events)
    resolve(ticket, berlin(2026, 3, 2, 10))
    outcomes = {e.target: e.outcome for e in events(ticket, "SLAStopped", mark)}
    assert outcomes == {"resolution": "met", "first_response": "stopped"}


def test_a_late_resolution_is_a_breach() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    mark = len(ticket.pending_events)
    # 1440 minutes from Monday 09:00 were due Wednesday 13:00.
    resolve(ticket, berlin(2026, 3, 4, 14))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("resolution", "breached")
    assert stopped.business_minutes_used == 1500


def test_reopen_starts_a_fresh_resolution_clock() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    status(ticket, "pending", berlin(2026, 3, 2, 11))
    resolve(ticket, berlin(2026, 3, 2, 12))
    mark = len(ticket.pending_events)
    reopened = berlin(2026, 3, 5, 9)  # Thursday
    ticket.reopen(reason="still broken", provenance=CUSTOMER, at=reopened)
    assert sla_names(ticket, mark) == [("SLAStarted", "resolution")]
    row = ticket.sla_report(reopened)["resolution"]
    assert row["state"] == "running"
    assert row["started_at"] == reopened
    assert row["stopped_at"] is None
    assert row["pauses"] == []
    assert row["business_minutes_used"] == 0
    # Thursday 540, Friday 600, Monday 300.
    assert row["due_at"] == berlin(2026, 3, 9, 13)
    # What was met stays met.
    assert ticket.sla_report(reopened)["first_response"]["state"] == "met"
    mark = len(ticket.pending_events)
    resolve(ticket, berlin(2026, 3, 9, 14))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("resolution", "breached")


def test_merging_stops_every_clock() -> None:
    ticket, other = create(), create()
    mark = len(ticket.pending_events)
    ticket.merge_into(other, provenance=AGENT, at=berlin(2026, 3, 2, 10))
    outcomes = {e.target: e.outcome for e in events(ticket, "SLAStopped", mark)}
    assert outcomes == {"first_response": "stopped", "resolution": "stopped"}


# -- warnings and breaches (the timers' command) ------------------------------------


def check(ticket: Ticket, at: datetime) -> list[str]:
    return ticket.check_sla(provenance=TIMER, at=at)


def test_warning_and_breach_are_recorded_once_each_and_never_early() -> None:
    ticket = create()
    reply_due, reply_warning = berlin(2026, 3, 2, 13), berlin(2026, 3, 2, 12, 12)
    mark = len(ticket.pending_events)
    assert check(ticket, reply_warning - timedelta(microseconds=1)) == []
    assert events(ticket, since=mark) == []
    assert ticket.sla_report(reply_warning)["first_response"]["state"] == "warning"

    assert check(ticket, reply_warning) == ["SLAWarning"]
    [warning] = events(ticket, "SLAWarning", mark)
    assert warning.target == "first_response"
    assert warning.due_at == reply_due
    assert warning.business_minutes_left == 48
    assert check(ticket, berlin(2026, 3, 2, 12, 30)) == []

    assert check(ticket, reply_due) == ["SLABreached"]
    [breach] = events(ticket, "SLABreached", mark)
    assert (breach.target, breach.due_at) == ("first_response", reply_due)
    assert breach.business_minutes_used == 240
    assert check(ticket, berlin(2026, 3, 2, 17)) == []
    assert ticket.sla_report(berlin(2026, 3, 2, 17))["first_response"]["state"] == (
        "breached"
    )
    # Checks are the system's, not activity on the ticket.
    assert ticket.last_activity_at == MONDAY_9


def test_a_late_check_records_both_warning_and_breach() -> None:
    ticket = create()
    mark = len(ticket.pending_events)
    # Wednesday 14:00: both clocks are past their warning and due times.
    assert check(ticket, berlin(2026, 3, 4, 14)) == [
        "SLAWarning",
        "SLABreached",
        "SLAWarning",
        "SLABreached",
    ]
    assert sla_names(ticket, mark) == [
        ("SLAWarning", "first_response"),
        ("SLABreached", "first_response"),
        ("SLAWarning", "resolution"),
        ("SLABreached", "resolution"),
    ]
    assert check(ticket, berlin(2026, 3, 5, 14)) == []


def test_a_clock_stopped_in_time_records_nothing_even_when_checked_late() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 12, 59))
    resolve(ticket, berlin(2026, 3, 2, 15))
    mark = len(ticket.pending_events)
    assert check(ticket, berlin(2026, 3, 20, 9)) == []
    assert events(ticket, since=mark) == []


def test_a_paused_clock_records_nothing() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    status(ticket, "pending", berlin(2026, 3, 2, 11))
    assert check(ticket, berlin(2026, 3, 20, 9)) == []


def test_a_breach_is_final_even_when_the_due_time_moves_out() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    assert check(ticket, berlin(2026, 3, 4, 14)) == ["SLAWarning", "SLABreached"]
    # Lowering the priority afterwards moves the due time weeks out ...
    ticket.change_priority(
        "low",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 3, 4, 15),
    )
    row = ticket.sla_report(berlin(2026, 3, 4, 15))["resolution"]
    assert row["due_at"] > berlin(2026, 3, 20)
    # ... but the clock stays breached: no second warning, no second breach.
    mark = len(ticket.pending_events)
    assert check(ticket, row["warning_at"]) == []
    assert check(ticket, row["due_at"]) == []
    assert events(ticket, since=mark) == []
    assert row["state"] == "breached"
    assert [d.kind for d in ticket_deadlines(ticket, parse(SETTINGS))] == []
    resolve(ticket, berlin(2026, 3, 5, 9))
    assert events(ticket, "SLAStopped", mark)[0].outcome == "breached"


def test_a_later_warning_point_is_a_new_warning() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    assert check(ticket, berlin(2026, 3, 4, 9)) == ["SLAWarning"]
    ticket.change_priority(
        "normal",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 3, 4, 10),
    )
    warning_at = ticket.sla_report(MONDAY_9)["resolution"]["warning_at"]
    assert warning_at == OFFICE.add_business_minutes(MONDAY_9, 4320 * 0.8)
    assert check(ticket, warning_at - timedelta(minutes=1)) == []
    assert check(ticket, warning_at) == ["SLAWarning"]


def test_a_clock_overdue_before_it_paused_stays_breached() -> None:
    # The timer was late: resolution fell due on Wednesday 13:00 and the
    # ticket went pending at 14:00 before anybody checked.
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    status(ticket, "pending", berlin(2026, 3, 4, 14))
    row = ticket.sla_report(berlin(2026, 3, 4, 15))["resolution"]
    assert row["due_at"] == berlin(2026, 3, 4, 13)
    assert row["state"] == "breached"
    # The timers still see the breach, and the check records it.
    assert TimerDeadline("sla_breach", "resolution", berlin(2026, 3, 4, 13)) in (
        ticket_deadlines(ticket, parse(SETTINGS))
    )
    mark = len(ticket.pending_events)
    resolve(ticket, berlin(2026, 3, 4, 16))
    [stopped] = events(ticket, "SLAStopped", mark)
    assert (stopped.target, stopped.outcome) == ("resolution", "breached")


def test_a_clock_overdue_before_it_paused_is_checked_while_paused() -> None:
    ticket = create()
    reply(ticket, berlin(2026, 3, 2, 10))
    status(ticket, "pending", berlin(2026, 3, 4, 14))
    assert check(ticket, berlin(2026, 3, 4, 15)) == ["SLAWarning", "SLABreached"]
    status(ticket, "open", berlin(2026, 3, 4, 16))
    # Resuming gives back the same (past) due time: nothing to record again.
    assert ticket.sla_report(berlin(2026, 3, 4, 16))["resolution"]["due_at"] == (
        berlin(2026, 3, 4, 13)
    )
    assert check(ticket, berlin(2026, 3, 4, 17)) == []


# -- escalation requests -------------------------------------------------------------


def request(ticket: Ticket, level: int, at: datetime = MONDAY_9) -> bool:
    return ticket.request_escalation(
        level=level,
        team="Engineering",
        rule=f"level_{level}",
        reason=f"rule level_{level}: 1 h since creation",
        provenance=RULES,
        at=at,
    )


def test_an_approved_request_escalates_to_the_rules_level_and_team() -> None:
    ticket = create()
    ticket.assign(assignee_id="agent-1", team="Tier 1", provenance=AGENT, at=MONDAY_9)
    assert request(ticket, 2) is True
    assert ticket.pending_escalation() is not None
    # Asked once is enough: no second request for the same level.
    assert request(ticket, 2) is False
    assert ticket.escalation_level == 0

    mark = len(ticket.pending_events)
    at = berlin(2026, 3, 2, 10)
    level = ticket.approve_escalation(provenance=SUPERVISOR, at=at, comment="go")
    assert level == 2
    approved, escalated = events(ticket, since=mark)
    assert type(approved).__name__ == "EscalationApproved"
    assert (approved.level, approved.comment) == (2, "go")
    assert type(escalated).__name__ == "TicketEscalated"
    assert (escalated.level, escalated.team, escalated.rule) == (
        2,
        "Engineering",
        "level_2",
    )
    assert escalated.reason == "rule level_2: 1 h since creation"
    assert (ticket.escalation_level, ticket.assigned_team) == (2, "Engineering")
    # The old team's agent does not keep a ticket handed to another team.
    assert ticket.assignee_id is None
    assert ticket.pending_escalation() is None
    [decided] = ticket.escalation_requests or []
    assert decided["state"] == "approved"
    assert decided["decided_by"] == "sup-1"
    assert decided["decided_at"] == at
    # A level reached is not asked for again, nor one below it.
    assert request(ticket, 2) is False
    assert request(ticket, 1) is False


def test_a_rejected_level_is_not_requested_again() -> None:
    ticket = create()
    assert request(ticket, 1) is True
    assert ticket.reject_escalation(provenance=SUPERVISOR, at=MONDAY_9) == 1
    assert ticket.rejected_escalation_levels() == {1}
    assert ticket.pending_escalation() is None
    assert ticket.escalation_level == 0
    mark = len(ticket.pending_events)
    assert request(ticket, 1, berlin(2026, 3, 2, 12)) is False
    assert events(ticket, since=mark) == []
    # The next level up may still be asked for.
    assert request(ticket, 2) is True


def test_deciding_with_nothing_pending_is_refused() -> None:
    ticket = create()
    with pytest.raises(CommandRefused):
        ticket.approve_escalation(provenance=SUPERVISOR, at=MONDAY_9)
    with pytest.raises(CommandRefused):
        ticket.reject_escalation(provenance=SUPERVISOR, at=MONDAY_9)
    request(ticket, 1)
    ticket.approve_escalation(provenance=SUPERVISOR, at=MONDAY_9)
    with pytest.raises(CommandRefused):
        ticket.approve_escalation(provenance=SUPERVISOR, at=MONDAY_9)


def test_a_request_overtaken_by_a_manual_escalation_is_approved_without_effect() -> (
    None
):
    ticket = create()
    request(ticket, 1)
    ticket.escalate(
        reason="customer called",
        team="Tier 2",
        provenance=AGENT,
        at=MONDAY_9,
        level=2,
    )
    mark = len(ticket.pending_events)
    assert ticket.approve_escalation(provenance=SUPERVISOR, at=MONDAY_9) == 2
    assert [type(e).__name__ for e in events(ticket, since=mark)] == [
        "EscalationApproved"
    ]


# -- deadlines for the timers ----------------------------------------------------------

ESCALATION_RULES: list[dict[str, Any]] = [
    {
        "name": "untouched",
        "level": 1,
        "measured_from": "last_update",
        "escalation_time_hours": 2,
        "escalate_to_team": "Tier 2",
    },
    {
        "name": "old",
        "level": 2,
        "escalation_time_hours": 4,
        "escalate_to_team": "Engineering",
        "requires_approval": True,
    },
    {
        "name": "before_resolution_due",
        "level": 3,
        "measured_from": "resolution_due",
        "escalation_time_hours": -2,
        "escalate_to_team": "Management",
    },
    {
        "name": "after_reply_due",
        "level": 4,
        "measured_from": "first_response_due",
        "escalation_time_hours": 0.5,
        "escalate_to_team": "Management",
    },
    {
        "name": "critical_only",
        "conditions": {"priority": ["critical"]},
        "level": 1,
        "escalation_time_hours": 1,
        "escalate_to_team": "Engineering",
    },
]
DOCUMENT = {**SETTINGS, "escalation_rules": ESCALATION_RULES}


def rows(ticket: Ticket) -> set[tuple[str, str, datetime]]:
    return {
        (d.kind, d.key, d.due_at) for d in ticket_deadlines(ticket, parse(DOCUMENT))
    }


def test_deadlines_of_a_new_ticket() -> None:
    ticket = create()
    assert rows(ticket) == {
        ("sla_warning", "first_response", berlin(2026, 3, 2, 12, 12)),
        ("sla_breach", "first_response", berlin(2026, 3, 2, 13)),
        ("sla_warning", "resolution", berlin(2026, 3, 4, 8, 12)),
        ("sla_breach", "resolution", berlin(2026, 3, 4, 13)),
        ("escalation", "untouched", berlin(2026, 3, 2, 11)),
        ("escalation", "old", berlin(2026, 3, 2, 13)),
        ("escalation", "before_resolution_due", berlin(2026, 3, 4, 11)),
        ("escalation", "after_reply_due", berlin(2026, 3, 2, 13, 30)),
    }
    # Without escalation rules, only the SLA rows.
    assert {d.kind for d in ticket_deadlines(ticket, parse(SETTINGS))} == {
        "sla_warning",
        "sla_breach",
    }


def test_deadlines_follow_the_ticket() -> None:
    ticket = create()
    # Automations are not activity: the untouched rule still counts from 09:00.
    check(ticket, berlin(2026, 3, 2, 12, 30))
    assert ("escalation", "untouched", berlin(2026, 3, 2, 11)) in rows(ticket)
    # The warning was recorded: only the breach is left of first_response.
    assert ("sla_warning", "first_response", berlin(2026, 3, 2, 12, 12)) not in rows(
        ticket
    )

    # An agent's reply stops first_response (and what is measured from it)
    # and is activity: untouched now counts from 12:40.
    reply(ticket, berlin(2026, 3, 2, 12, 40))
    assert rows(ticket) == {
        ("sla_warning", "resolution", berlin(2026, 3, 4, 8, 12)),
        ("sla_breach", "resolution", berlin(2026, 3, 4, 13)),
        ("escalation", "untouched", berlin(2026, 3, 2, 14, 40)),
        ("escalation", "old", berlin(2026, 3, 2, 13)),
        ("escalation", "before_resolution_due", berlin(2026, 3, 4, 11)),
    }

    # A pending request and a rejected level are not scheduled again; the
    # levels at or below the ticket's are done.
    request(ticket, 2, berlin(2026, 3, 2, 13))
    assert "old" not in {key for _, key, _ in rows(ticket)}
    ticket.reject_escalation(provenance=SUPERVISOR, at=berlin(2026, 3, 2, 13, 5))
    assert "old" not in {key for _, key, _ in rows(ticket)}
    ticket.escalate(
        reason="by hand",
        team="Tier 1",
        provenance=AGENT,
        at=berlin(2026, 3, 2, 13, 10),
        level=1,
    )
    assert {key for kind, key, _ in rows(ticket) if kind == "escalation"} == {
        "before_resolution_due"
    }
    # A rule whose team holds the ticket would change nothing: not scheduled.
    ticket.assign(team="Management", provenance=AGENT, at=berlin(2026, 3, 2, 13, 20))
    assert {key for kind, key, _ in rows(ticket) if kind == "escalation"} == set()
    ticket.assign(team="Tier 1", provenance=AGENT, at=berlin(2026, 3, 2, 13, 25))

    # Paused: no resolution deadlines, nothing measured from its due time.
    status(ticket, "pending", berlin(2026, 3, 2, 14))
    assert rows(ticket) == set()
    status(ticket, "open", berlin(2026, 3, 2, 15))
    assert ("sla_breach", "resolution", berlin(2026, 3, 4, 14)) in rows(ticket)
    resolve(ticket, berlin(2026, 3, 2, 16))
    assert rows(ticket) == set()


# -- any sequence of commands ----------------------------------------------------------

PAUSE_ON_CHOICES: list[dict[str, list[str]]] = [
    {},
    {"first_response": ["on_hold"], "next_reply": ["pending"]},
    {"resolution": ["pending", "on_hold"]},
]
STEPS = st.sampled_from(
    [
        "pending",
        "on_hold",
        "open",
        "in_progress",
        "agent_reply",
        "customer_reply",
        "note",
        "priority",
        "check",
        "resolve",
        "reopen",
    ]
)
PRIORITIES = ["low", "normal", "high", "urgent", "critical"]


def take_step(ticket: Ticket, step: str, at: datetime, priority: str) -> None:
    if step in ("pending", "on_hold", "open", "in_progress"):
        status(ticket, step, at)
    elif step == "agent_reply":
        reply(ticket, at)
    elif step == "customer_reply":
        reply(ticket, at, CUSTOMER)
    elif step == "note":
        note(ticket, at)
    elif step == "priority":
        ticket.change_priority(priority, provenance=AGENT, at=at)  # type: ignore[arg-type]
    elif step == "check":
        check(ticket, at)
    elif step == "resolve":
        resolve(ticket, at)
    else:
        ticket.reopen(reason="again", provenance=CUSTOMER, at=at)


def clock_states(ticket: Ticket) -> dict[str, dict[str, Any]]:
    """The ticket's clocks in their stored shape (``SlaClocks.to_state``)."""
    return (ticket.sla_clocks or SlaClocks()).to_state()


def assert_clocks_agree(ticket: Ticket, at: datetime) -> None:
    """Every running clock is what the pure arithmetic says of its history."""
    assert ticket.sla_policy is not None
    current = SLAPolicy.from_snapshot(ticket.sla_policy)
    calendar = current.business_calendar()
    report = ticket.sla_report(at)
    for target, clock in clock_states(ticket).items():
        used = report[target]["business_minutes_used"]
        if clock["stopped_at"] is not None:
            if clock["outcome"] == "met":
                assert used <= clock["target_minutes"] + 1e-3
            continue
        pauses = clock["pauses"]
        paused = bool(pauses) and pauses[-1]["end"] is None
        assert paused == current.pauses(target, ticket.status.value)
        expected = sla.deadline(
            current,
            priority=ticket.priority.value,
            target=target,
            started_at=clock["started_at"],
            pauses=pauses,
        )
        assert (clock["due_at"], clock["warning_at"]) == (
            expected.due_at,
            expected.warning_at,
        )
        assert clock["target_minutes"] == current.minutes(ticket.priority.value, target)
        exact = sla.business_minutes_used(calendar, clock["started_at"], at, pauses)
        assert abs(used - exact) <= 1e-3


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 30 * 86_400),
    st.sampled_from(PAUSE_ON_CHOICES),
    st.lists(
        st.tuples(STEPS, st.integers(0, 2 * 86_400), st.sampled_from(PRIORITIES)),
        max_size=14,
    ),
)
def test_any_history_keeps_the_clocks_consistent(
    offset: int, pause_on: dict[str, list[str]], steps: list[tuple[str, int, str]]
) -> None:
    # Late March to late April 2026: a DST change and the Easter holidays.
    at = utc(2026, 3, 20) + timedelta(seconds=offset)
    ticket = create(at, sla_policy=with_pause_on(pause_on))
    for step, gap, priority in steps:
        at += timedelta(seconds=gap)
        try:
            take_step(ticket, step, at, priority)
        except CommandRefused:
            continue  # not allowed in this state (reopen an open ticket, say)
        assert_clocks_agree(ticket, at)
        if step == "check":
            # Whatever was due by the check is recorded (and a breach stays
            # recorded when a priority change moves the due time out). A
            # clock paused with its due time unknown waits for its resume.
            for clock in clock_states(ticket).values():
                if clock["stopped_at"] is not None or clock["due_at"] is None:
                    continue
                assert clock["breached"] or clock["due_at"] > at
                assert clock["warned"] or clock["warning_at"] > at
    # Each run of a clock breaches and stops at most once.
    runs: dict[str, dict[str, int]] = {}
    for event in events(ticket):
        name = type(event).__name__
        if name == "SLAStarted":
            runs[event.target] = {}
        elif name in ("SLABreached", "SLAStopped"):
            counts = runs[event.target]
            counts[name] = counts.get(name, 0) + 1
            assert counts[name] == 1
    replayed = project_aggregate(None, list(ticket.pending_events))
    assert isinstance(replayed, Ticket)
    assert replayed.sla_report(at) == ticket.sla_report(at)


# -- replay ---------------------------------------------------------------------------


def busy_ticket() -> Ticket:
    """A ticket that has been through every SLA and escalation event."""
    ticket = create(berlin(2026, 4, 2, 19, 30), priority="normal")
    ticket.assign(
        assignee_id="agent-1", team="Tier 1", provenance=AGENT, at=berlin(2026, 4, 7, 8)
    )
    note(ticket, berlin(2026, 4, 7, 8, 30))
    reply(ticket, berlin(2026, 4, 7, 9))
    reply(ticket, berlin(2026, 4, 7, 10), CUSTOMER)
    status(ticket, "pending", berlin(2026, 4, 10, 17))
    status(ticket, "in_progress", berlin(2026, 4, 13, 9))
    ticket.change_priority(
        "high",  # type: ignore[arg-type]
        provenance=AGENT,
        at=berlin(2026, 4, 13, 10),
        sla_policy=policy(version=4),
    )
    check(ticket, berlin(2026, 4, 13, 11))
    request(ticket, 1, berlin(2026, 4, 13, 11))
    ticket.approve_escalation(provenance=SUPERVISOR, at=berlin(2026, 4, 13, 12))
    request(ticket, 2, berlin(2026, 4, 13, 12))
    ticket.reject_escalation(provenance=SUPERVISOR, at=berlin(2026, 4, 13, 13))
    reply(ticket, berlin(2026, 4, 13, 13))
    resolve(ticket, berlin(2026, 4, 13, 14))
    ticket.reopen(reason="not yet", provenance=CUSTOMER, at=berlin(2026, 4, 14, 9))
    status(ticket, "pending", berlin(2026, 4, 14, 10))
    return ticket


REPORT_TIMES = [berlin(2026, 4, 14, 12), berlin(2026, 5, 4, 9)]


def test_the_busy_ticket_has_every_kind_of_sla_event() -> None:
    kinds = {type(e).__name__ for e in busy_ticket().pending_events}
    assert {
        "SLAStarted",
        "SLARecalculated",
        "SLAPaused",
        "SLAResumed",
        "SLAStopped",
        "SLAWarning",
        "SLABreached",
        "EscalationRequested",
        "EscalationApproved",
        "EscalationRejected",
        "TicketEscalated",
    } <= kinds


def test_a_ticket_replayed_from_its_events_has_the_same_sla_report() -> None:
    ticket = busy_ticket()
    events_: list[DomainEventProtocol[Any]] = list(ticket.collect_events())
    replayed = project_aggregate(None, events_)
    assert isinstance(replayed, Ticket)
    for now in REPORT_TIMES:
        assert replayed.sla_report(now) == ticket.sla_report(now)
    assert vars(replayed) == vars(ticket)


def test_a_stored_ticket_and_its_snapshot_have_the_same_sla_report() -> None:
    # Through the library's JSON transcoder, in memory: datetimes nested in
    # the clocks and explanations must come back as datetimes.
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "IS_SNAPSHOTTING_ENABLED": "y"}
    )
    ticket = busy_ticket()
    expected = {now: ticket.sla_report(now) for now in REPORT_TIMES}
    app.save(ticket)
    stored: Ticket = app.repository.get(ticket.id)
    assert isinstance(stored, Ticket)
    for now in REPORT_TIMES:
        assert stored.sla_report(now) == expected[now]
    assert stored.escalation_requests == ticket.escalation_requests
    assert ticket_deadlines(stored, parse(DOCUMENT)) == ticket_deadlines(
        ticket, parse(DOCUMENT)
    )

    app.take_snapshot(ticket.id)
    from_snapshot: Ticket = app.repository.get(ticket.id)
    assert isinstance(from_snapshot, Ticket)
    for now in REPORT_TIMES:
        assert from_snapshot.sla_report(now) == expected[now]


def test_a_ticket_loaded_from_a_snapshot_goes_on_working() -> None:
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "IS_SNAPSHOTTING_ENABLED": "y"}
    )
    ticket = busy_ticket()
    app.save(ticket)
    app.take_snapshot(ticket.id)
    from_snapshot: Ticket = app.repository.get(ticket.id)
    assert isinstance(from_snapshot, Ticket)
    # The reopened clock resumes and stops.
    status(from_snapshot, "in_progress", berlin(2026, 4, 15, 9))
    resolve(from_snapshot, berlin(2026, 4, 15, 10))
    assert from_snapshot.sla_report(berlin(2026, 4, 16, 9))["resolution"]["state"] == (
        "met"
    )
