"""The ticket's sub-processes decide: SLA clocks, the workflow run, escalation rules.

Each is a frozen value (``domain.sla_clocks``, ``domain.workflow_run``) or a
decision of the ticket (``Ticket.judge_escalation_rule``) that the services
used to make in their closures.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.sla_clocks import ClockPause, SlaClock, SlaClocks
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workflow import RetryPolicy, WorkflowResult
from dotmac.ticketing.domain.workflow_run import WorkflowRun

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALWAYS = BusinessCalendar.from_config("24x7")
AGENT = Provenance("acme", Actor("agent-1", "agent"))
RULES = Provenance("acme", Actor.automation("escalation-rules"))


def clock(**overrides: Any) -> SlaClock:
    fields: dict[str, Any] = {
        "target_minutes": 60.0,
        "started_at": T0,
        "pauses": (),
        "due_at": T0 + timedelta(minutes=60),
        "warning_at": T0 + timedelta(minutes=45),
        "explanation": {},
    }
    return SlaClock(**{**fields, **overrides})


def test_a_clock_is_frozen_and_its_events_replace_it() -> None:
    running = clock()
    with pytest.raises(FrozenInstanceError):
        running.warned = True  # type: ignore[misc]
    paused = running.with_pause(T0 + timedelta(minutes=10))
    assert paused.paused and not running.paused
    # Points still ahead become unknown while paused; the running one keeps them.
    assert (paused.due_at, paused.warning_at) == (None, None)
    assert running.due_at == T0 + timedelta(minutes=60)


def test_the_clocks_say_which_warnings_and_breaches_are_due() -> None:
    clocks = SlaClocks().with_clock("first_response", clock())
    assert clocks.alerts_due(T0 + timedelta(minutes=30), ALWAYS) == []
    warning, breach = clocks.alerts_due(T0 + timedelta(minutes=61), ALWAYS)
    assert (warning.kind, warning.minutes) == ("warning", 0.0)
    assert (breach.kind, breach.minutes) == ("breach", 61.0)
    warned = clocks.with_clock("first_response", clock().with_warning())
    assert [a.kind for a in warned.alerts_due(T0 + timedelta(hours=2), ALWAYS)] == [
        "breach"
    ]


def test_a_restarted_clock_keeps_its_place_and_the_stored_shape_round_trips() -> None:
    clocks = (
        SlaClocks()
        .with_clock("first_response", clock())
        .with_clock("resolution", clock(pauses=(ClockPause(T0, T0),)))
        .with_clock("first_response", clock(target_minutes=5.0))
    )
    assert [target for target, _ in clocks] == ["first_response", "resolution"]
    assert clocks["first_response"].target_minutes == 5.0
    assert SlaClocks.from_state(clocks.to_state()) == clocks


def run_at_lookup() -> WorkflowRun:
    return WorkflowRun.started("billing", ["lookup", "apply"], at=T0, version=2)


def test_the_run_decides_how_a_steps_result_is_recorded() -> None:
    run = run_at_lookup()
    retry = RetryPolicy(max_attempts=2, backoff_seconds=30)
    failed = WorkflowResult(success=False, step_name="lookup", retryable=True)
    verdict = run.decide("lookup", 1, failed, retry=retry, at=T0)
    assert verdict is not None
    assert (verdict.kind, verdict.retry_at) == ("fail", T0 + timedelta(seconds=30))
    last = run.decide("lookup", 2, failed, retry=retry, at=T0)
    assert last is None  # attempt 2 is not the current run
    done = WorkflowResult(success=True, step_name="lookup")
    verdict = run.decide("lookup", 1, done, retry=retry, at=T0)
    assert verdict is not None
    assert (verdict.kind, verdict.next_step) == ("complete", "apply")
    waits = WorkflowResult(success=True, step_name="lookup", requires_action=True)
    waiting = run.decide("lookup", 1, waits, retry=retry, at=T0)
    assert waiting is not None and waiting.kind == "wait"
    # A step no longer current is not recorded again.
    assert run.decide("apply", 1, done, retry=retry, at=T0) is None


def test_the_run_round_trips_its_stored_shape() -> None:
    run = run_at_lookup().cancelled(T0, "lookup")
    state = run.to_state()
    assert state["cancelled_step"] == "lookup"
    assert "cancelled_step" not in run_at_lookup().to_state()
    assert WorkflowRun.from_state(state) == run


def ticket() -> Ticket:
    return Ticket.create(
        ticket_id=uuid4(),
        number=1,
        title="VPN down",
        description="",
        category="general",  # type: ignore[arg-type]
        priority="high",  # type: ignore[arg-type]
        channel="email",  # type: ignore[arg-type]
        customer_id="cust-1",
        customer_email=None,
        tags=[],
        custom_fields={},
        provenance=AGENT,
        at=T0,
    )


RULE: dict[str, Any] = {
    "name": "stale",
    "level": 1,
    "escalate_to_team": "tier-2",
    "escalation_time_hours": 1,
    "measured_from": "created",
}


@pytest.mark.parametrize(
    ("written", "event"),
    [
        (RULE, "TicketEscalated"),
        ({**RULE, "requires_approval": True}, "EscalationRequested"),
    ],
)
def test_an_escalation_rule_due_escalates_or_asks_for_approval(
    written: dict[str, Any], event: str
) -> None:
    (rule,) = parse({"escalation_rules": [written]}).escalation_rules
    t = ticket()
    early = t.judge_escalation_rule(
        rule, rule_name="stale", calendar=ALWAYS, now=T0 + timedelta(minutes=30)
    )
    assert early.action == "none"
    at = T0 + timedelta(hours=2)
    verdict = t.judge_escalation_rule(rule, rule_name="stale", calendar=ALWAYS, now=at)
    t.collect_events()
    t.apply_escalation_rule(
        rule, verdict, assignee_id=None, assignment=None, provenance=RULES, at=at
    )
    assert [type(e).__name__ for e in t.collect_events()] == [event]


def test_a_removed_escalation_rule_does_nothing() -> None:
    t = ticket()
    verdict = t.judge_escalation_rule(
        None, rule_name="gone", calendar=ALWAYS, now=T0 + timedelta(days=1)
    )
    assert (verdict.action, verdict.reason) == ("none", "no rule 'gone' any more")
    t.collect_events()
    t.apply_escalation_rule(
        None, verdict, assignee_id=None, assignment=None, provenance=RULES, at=T0
    )
    assert t.collect_events() == []
