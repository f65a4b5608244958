"""Triggers as values: event kinds, causation chains, time conditions."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import pytest

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.enums import TicketStatus
from dotmac.ticketing.domain.triggers import (
    EVENT_KINDS,
    TimeCondition,
    Trigger,
    depth_after,
    event_kinds,
    parse_cause,
    trigger_cause,
)
from dotmac.ticketing.schemas.triggers import EventKind
from tests.unit.test_ticket import AGENT, T0, create

OFFICE = BusinessCalendar.from_config(
    {
        "timezone": "UTC",
        "week": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    }
)


def test_the_contract_names_the_same_kinds() -> None:
    assert get_args(EventKind) == EVENT_KINDS


@pytest.mark.parametrize(
    ("event", "role", "internal", "kinds"),
    [
        ("TicketCreated", "customer", False, {"created"}),
        ("TicketUpdated", "agent", False, {"updated"}),
        ("PriorityChanged", "agent", False, {"updated", "priority_changed"}),
        ("StatusChanged", "agent", False, {"updated", "status_changed"}),
        ("TicketResolved", "agent", False, {"resolved", "status_changed"}),
        ("CommentAdded", "customer", False, {"customer_comment"}),
        ("CommentAdded", "agent", False, {"agent_comment"}),
        ("CommentAdded", "agent", True, {"internal_note"}),
        ("SLABreached", "automation", False, {"sla_breach"}),
        ("SLARecalculated", "automation", False, set()),
        ("WorkflowStepCompleted", "automation", False, set()),
    ],
)
def test_event_kinds(event: str, role: str, internal: bool, kinds: set[str]) -> None:
    assert event_kinds(event, actor_role=role, internal=internal) == kinds


def test_the_causation_names_trigger_depth_and_cause() -> None:
    cause = trigger_cause("t-1", 3, "0b6c:12")
    assert parse_cause(cause) is not None
    assert (parse_cause(cause).trigger_id, parse_cause(cause).depth) == ("t-1", 3)  # type: ignore[union-attr]
    assert parse_cause(cause).cause == "0b6c:12"  # type: ignore[union-attr]
    assert depth_after(cause) == 4
    assert depth_after(None) == depth_after("0b6c:12") == depth_after("macro:m") == 1
    assert parse_cause("trigger:broken") is None


def test_a_trigger_never_runs_on_its_own_change() -> None:
    trigger = Trigger("t-1", "acme", "t", frozenset({"updated"}), None, {}, ())
    assert trigger.runs_on(frozenset({"updated"}), None)
    assert trigger.runs_on(frozenset({"updated"}), trigger_cause("t-2", 1, "x:1"))
    assert not trigger.runs_on(frozenset({"updated"}), trigger_cause("t-1", 1, "x:1"))
    assert not trigger.runs_on(frozenset({"created"}), None)


def test_a_time_condition_counts_from_when_the_wait_began() -> None:
    friday_3pm = T0 + timedelta(days=4, hours=6)  # T0 is a Monday, 09:00
    ticket = create()
    pending = TimeCondition(TicketStatus.PENDING, 4, business_hours=True)
    assert pending.due_at(ticket, OFFICE) is None  # not pending
    ticket.change_status(TicketStatus.PENDING, provenance=AGENT, at=friday_3pm)
    # Two office hours on Friday, two on Monday.
    assert pending.due_at(ticket, OFFICE) == friday_3pm + timedelta(days=2, hours=20)
    by_clock = TimeCondition(TicketStatus.PENDING, 4)
    assert by_clock.due_at(ticket, OFFICE) == friday_3pm + timedelta(hours=4)
    # An agent's note does not restart the wait.
    ticket.add_comment(
        "chasing", internal=True, provenance=AGENT, at=friday_3pm + timedelta(hours=1)
    )
    assert by_clock.due_at(ticket, OFFICE) == friday_3pm + timedelta(hours=4)
    assert TimeCondition.from_document(pending.as_document()) == pending
