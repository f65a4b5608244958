"""The moments a ticket needs attention, derived from its current state.

The timers consumer keeps one row per deadline and replaces a ticket's rows
whenever the ticket changes, so the table is always what these pure
functions say of the latest state: warnings and breaches of the running SLA
clocks not yet recorded, and the threshold of each escalation rule that
could still raise the ticket, and the moment the ticket's workflow is to
run a step again (a retry after a failure, or a waiting step's wake-up).
A deadline firing late or twice is harmless:
the ticket re-checks everything against its state when the command runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES, TicketStatus
from dotmac.ticketing.domain.escalation_rules import (
    escalation_calendar,
    escalation_threshold,
    rule_keeps_holder,
)
from dotmac.ticketing.domain.rules import TicketFacts, matches
from dotmac.ticketing.domain.sla_clocks import SlaClocks
from dotmac.ticketing.domain.tenant_config import EscalationRule, TenantConfig
from dotmac.ticketing.domain.triggers import Trigger

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket

DeadlineKind = Literal["sla_warning", "sla_breach", "escalation", "workflow", "trigger"]


@dataclass(frozen=True)
class TimerDeadline:
    """``kind`` and ``key`` name the deadline within its ticket."""

    kind: DeadlineKind
    key: str
    due_at: datetime


def facts_of(ticket: Ticket) -> TicketFacts:
    """What rules see of a ticket."""
    return TicketFacts(
        category=ticket.category.value,
        priority=ticket.priority.value,
        channel=ticket.channel.value,
        tags=tuple(ticket.tags),
        custom_fields=dict(ticket.custom_fields),
        title=ticket.title,
        description=ticket.description,
    )


def sla_deadlines(ticket: Ticket) -> list[TimerDeadline]:
    """The next warning and breach of each running clock, not yet recorded."""
    if ticket.status not in ACTIVE_STATUSES:
        return []
    deadlines = []
    for target, clock in (ticket.sla_clocks or SlaClocks()).running():
        if clock.due_at is None:
            continue
        if not clock.warned and clock.warning_at is not None:
            deadlines.append(TimerDeadline("sla_warning", target, clock.warning_at))
        if not clock.breached:
            deadlines.append(TimerDeadline("sla_breach", target, clock.due_at))
    return deadlines


def escalation_deadlines(
    ticket: Ticket,
    rules: Sequence[EscalationRule],
    calendar: BusinessCalendar | None = None,
) -> list[TimerDeadline]:
    """The threshold of each rule that could still escalate the ticket."""
    if ticket.status not in ACTIVE_STATUSES:
        return []
    facts = facts_of(ticket)
    rejected = ticket.rejected_escalation_levels()
    pending = ticket.pending_escalation()
    due_times = ticket.sla_due_times()
    deadlines = []
    for rule in rules:
        level = rule.level
        if level <= ticket.escalation_level or level in rejected:
            continue
        if pending is not None and pending["level"] == level:
            continue
        if not matches(rule.conditions, facts):
            continue
        if rule_keeps_holder(rule, ticket.assigned_team):
            continue  # it would change nothing; a hand-over recomputes this
        threshold = escalation_threshold(
            rule,
            created_at=ticket.created_on,
            last_activity_at=ticket.last_activity_at or ticket.created_on,
            due_times=due_times,
            calendar=calendar,
        )
        if threshold is not None:
            deadlines.append(TimerDeadline("escalation", rule.name, threshold))
    return deadlines


def workflow_deadlines(ticket: Ticket) -> list[TimerDeadline]:
    """When a failed step is retried, or a waiting step wakes up."""
    wake_at = ticket.workflow_wake_time()
    if wake_at is None or ticket.status == TicketStatus.CLOSED:
        return []
    return [TimerDeadline("workflow", "wake", wake_at)]


def trigger_deadlines(
    ticket: Ticket, triggers: Sequence[Trigger], calendar: BusinessCalendar
) -> list[TimerDeadline]:
    """When each time trigger whose conditions the ticket meets comes due.

    A due time already past is kept: the trigger runs at once, and only
    once per wait (its run is keyed by the due time).
    """
    facts = facts_of(ticket)
    deadlines = []
    for trigger in triggers:
        if trigger.time is None or not matches(trigger.conditions, facts):
            continue
        due_at = trigger.time.due_at(ticket, calendar)
        if due_at is not None:
            deadlines.append(TimerDeadline("trigger", trigger.id, due_at))
    return deadlines


def ticket_deadlines(
    ticket: Ticket, config: TenantConfig, triggers: Sequence[Trigger] = ()
) -> list[TimerDeadline]:
    """Every deadline of the ticket under the tenant's current configuration
    and time triggers."""
    return [
        *trigger_deadlines(
            ticket, triggers, escalation_calendar(config, ticket.assigned_team)
        ),
        *sla_deadlines(ticket),
        *escalation_deadlines(
            ticket,
            config.escalation_rules,
            escalation_calendar(config, ticket.assigned_team),
        ),
        *workflow_deadlines(ticket),
    ]
