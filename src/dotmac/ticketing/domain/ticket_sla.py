"""The ticket's SLA clocks: it records what they decide (``domain.sla_clocks``).

Functions of a :class:`~domain.ticket.Ticket`, which takes each as its method
(``ticket.check_sla(...)``): ``domain/ticket.py`` keeps to the ticket's lifecycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from dotmac.ticketing.domain import sla
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.domain.provenance import Provenance, event_id
from dotmac.ticketing.domain.sla import SLA_CLOCKS, SLAPolicy
from dotmac.ticketing.domain.sla_clocks import (
    SlaClock,
    SlaClocks,
    clock_deadline,
    explain,
)

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket


def recalculate_sla(
    ticket: Ticket, policy: SLAPolicy, *, provenance: Provenance, at: datetime
) -> list[str]:
    """Re-derive every running clock's due time under ``policy``.

    The start and the recorded pauses stay; only the targets (and the
    policy snapshot) change. Returns the targets whose due time moved.
    """
    # Decided once, before the first SLARecalculated replaces the
    # ticket's snapshot: otherwise only the first running clock would
    # record the new policy and the others would keep explaining the old.
    changes = ticket._clocks().recalculations(
        policy, priority=ticket.priority.value, recorded_policy=ticket.sla_policy
    )
    for change in changes:
        ticket._trigger(
            ticket.SLARecalculated,
            ticket._clock_provenance(provenance),
            at,
            target=change.target,
            target_minutes=change.target_minutes,
            due_at=change.deadline.due_at,
            warning_at=change.deadline.warning_at,
            policy=policy.snapshot(),
            explanation=dict(change.explanation),
        )
    return [change.target for change in changes]


def check_sla(ticket: Ticket, *, provenance: Provenance, at: datetime) -> list[str]:
    """Record the warnings and breaches due by ``at`` (the timers' command).

    Idempotent and safe to call late or early: a clock that stopped (a
    ticket answered in time) or moved its due time later records
    nothing, and each warning and breach is recorded once. Returns the
    names of the events recorded.
    """
    if ticket.sla_policy is None:
        return []
    calendar = ticket._policy_or_fail().business_calendar()
    recorded: list[str] = []
    for alert in ticket._clocks().alerts_due(at, calendar):
        if alert.kind == "warning":
            ticket._trigger(
                ticket.SLAWarning,
                provenance,
                at,
                target=alert.target,
                due_at=alert.due_at,
                business_minutes_left=alert.minutes,
            )
            recorded.append("SLAWarning")
        else:
            ticket._trigger(
                ticket.SLABreached,
                provenance,
                at,
                target=alert.target,
                due_at=alert.due_at,
                business_minutes_used=alert.minutes,
            )
            recorded.append("SLABreached")
    return recorded


def sla_report(ticket: Ticket, now: datetime) -> dict[str, dict[str, Any]]:
    """Per target: state, due time, business minutes used and left, pauses."""
    policy = ticket._policy()
    if policy is None:
        return {}
    return ticket._clocks().report(policy.business_calendar(), now)


def sla_due_times(ticket: Ticket) -> dict[str, datetime | None]:
    """Each running clock's due time (None while paused), for timers."""
    return ticket._clocks().due_times()


def _start_clock(
    ticket: Ticket,
    target: str,
    policy: SLAPolicy,
    provenance: Provenance,
    at: datetime,
) -> None:
    priority = ticket.priority.value
    deadline = clock_deadline(policy, priority, target, at, [])
    ticket._trigger(
        ticket.SLAStarted,
        ticket._clock_provenance(provenance),
        at,
        target=target,
        target_minutes=policy.minutes(priority, target),
        due_at=deadline.due_at,
        warning_at=deadline.warning_at,
        policy=policy.snapshot(),
        explanation=explain(policy, priority, target, at, [], deadline),
    )
    # A clock may start in a status that pauses it (a reopened ticket
    # going straight to pending, say).
    ticket._follow_sla(provenance, at)


def _start_clocks(
    ticket: Ticket, policy: SLAPolicy, provenance: Provenance, at: datetime
) -> None:
    """A new ticket's clocks: a first response and a resolution are owed."""
    for target in (sla.FIRST_RESPONSE, sla.RESOLUTION):
        ticket._start_clock(target, policy, provenance, at)


def _stop_clocks_resolved(ticket: Ticket, provenance: Provenance, at: datetime) -> None:
    """A resolution meets its goal; nothing more is owed on a resolved ticket."""
    ticket._stop_clock(sla.RESOLUTION, provenance, at, goal_reached=True)
    ticket._stop_clock(sla.FIRST_RESPONSE, provenance, at, goal_reached=False)
    ticket._stop_clock(sla.NEXT_REPLY, provenance, at, goal_reached=False)


def _restart_resolution(ticket: Ticket, provenance: Provenance, at: datetime) -> None:
    """A reopened ticket owes a new resolution, measured afresh."""
    policy = ticket._policy()
    if policy is not None:
        ticket._start_clock(sla.RESOLUTION, policy, provenance, at)


def _stop_clocks_closed(ticket: Ticket, provenance: Provenance, at: datetime) -> None:
    """A ticket closed without resolution (merged away) owes nothing more."""
    for target in sla.TARGETS:
        ticket._stop_clock(target, provenance, at, goal_reached=False)


def _stop_clock(
    ticket: Ticket,
    target: str,
    provenance: Provenance,
    at: datetime,
    *,
    goal_reached: bool,
) -> None:
    clock = ticket._clocks().get(target)
    if clock is None or not clock.running:
        return
    used = clock.minutes_used(ticket._policy_or_fail().business_calendar(), at)
    ticket._trigger(
        ticket.SLAStopped,
        ticket._clock_provenance(provenance),
        at,
        target=target,
        outcome=clock.outcome_if_stopped(at, goal_reached=goal_reached),
        business_minutes_used=round(used, 3),
    )


def _follow_sla(ticket: Ticket, provenance: Provenance, at: datetime) -> None:
    """Pause or resume each running clock as the new status asks."""
    policy = ticket._policy()
    if policy is None:
        return
    moves = ticket._clocks().follow_status(
        policy, status=ticket.status.value, priority=ticket.priority.value, at=at
    )
    for move in moves:
        if move.kind == "pause":
            ticket._trigger(
                ticket.SLAPaused,
                ticket._clock_provenance(provenance),
                at,
                target=move.target,
                status=ticket.status.value,
            )
            continue
        assert move.deadline is not None and move.explanation is not None
        ticket._trigger(
            ticket.SLAResumed,
            ticket._clock_provenance(provenance),
            at,
            target=move.target,
            due_at=move.deadline.due_at,
            warning_at=move.deadline.warning_at,
            paused_minutes=move.paused_minutes,
            explanation=dict(move.explanation),
        )


def _follow_reply(ticket: Ticket, provenance: Provenance, at: datetime) -> None:
    """A public comment stops or starts the reply clocks."""
    if provenance.actor.is_agent:
        ticket._stop_clock(sla.FIRST_RESPONSE, provenance, at, goal_reached=True)
        ticket._stop_clock(sla.NEXT_REPLY, provenance, at, goal_reached=True)
        return
    policy = ticket._policy()
    customer_speaks = provenance.actor.id == ticket.customer_id
    if (
        policy is not None
        and customer_speaks
        and ticket.status in ACTIVE_STATUSES
        # Before the first reply, the first-response clock covers it.
        and ticket.first_response_at is not None
        and not ticket._clocks().is_running(sla.NEXT_REPLY)
    ):
        ticket._start_clock(sla.NEXT_REPLY, policy, provenance, at)


def _policy(ticket: Ticket) -> SLAPolicy | None:
    return (
        None
        if ticket.sla_policy is None
        else SLAPolicy.from_snapshot(ticket.sla_policy)
    )


def _policy_or_fail(ticket: Ticket) -> SLAPolicy:
    policy = ticket._policy()
    assert policy is not None, "a clock runs only under a policy"
    return policy


def _clocks(ticket: Ticket) -> SlaClocks:
    return ticket.sla_clocks or SlaClocks()


def _set_clock(ticket: Ticket, target: str, clock: SlaClock) -> None:
    ticket.sla_clocks = ticket._clocks().with_clock(target, clock)


def _clock_provenance(ticket: Ticket, provenance: Provenance) -> Provenance:
    """SLA clocks start, pause, resume and stop by the system's rules, not
    by the person whose command moved the ticket: their events are the
    ``sla`` automation's, caused by the event just recorded, in the same
    request (correlation id)."""
    if provenance.actor.kind == "automation":
        return provenance
    return provenance.acting_as(
        SLA_CLOCKS, causation_id=event_id(ticket.id, ticket.version)
    )
