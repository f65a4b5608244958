"""When an escalation rule fires, and what it does then.

An escalation rule of the tenant's configuration document (read here in its
typed form, ``domain.tenant_config.EscalationRule``)::

    {"name": "critical_escalation", "conditions": {"priority": ["critical"]},
     "level": 1, "escalation_time_hours": 1, "measured_from": "last_update",
     "escalate_to_team": "Engineering", "requires_approval": false}

fires ``escalation_time_hours`` after its anchor: the ticket's creation, its
last update, or one of its SLA due times. Measured from a due time the hours
may be negative ("two hours *before* resolution is due"). The hours are
wall-clock hours by default (how long a customer has been waiting; the SLA
due times a rule may be anchored to are already in business time). A rule
with ``business_hours`` counts them on a business calendar instead, the
ticket's team's own when it has one (:func:`escalation_calendar`): a
complaint at 08:30 with a one-hour rule escalates at 10:00 on a desk that
opens at 09:00.

:func:`escalation_threshold` computes the instant (the timers schedule it);
:func:`evaluate_escalation` decides, when that instant comes, whether the
rule still applies. Levels only go up: a ticket at level 2 is not escalated
to level 1 again, and a level that was rejected or awaits approval is not
asked for twice.

Pure: standard library and the typed configuration only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dotmac.ticketing.domain.calendar import ALWAYS_OPEN, BusinessCalendar
from dotmac.ticketing.domain.rules import TicketFacts, matches
from dotmac.ticketing.domain.tenant_config import (
    EscalationRule,
    TenantConfig,
    calendar_of,
)

__all__ = [
    "MEASURED_FROM",
    "EscalationVerdict",
    "escalation_calendar",
    "escalation_threshold",
    "evaluate_escalation",
    "rule_keeps_holder",
]

#: The anchors a rule may be measured from; the first is the default.
MEASURED_FROM: tuple[str, ...] = (
    "created",
    "last_update",
    "first_response_due",
    "resolution_due",
)

# The SLA due time each due-time anchor reads from ``due_times``.
_DUE_TIME_KEYS = {
    "first_response_due": "first_response",
    "resolution_due": "resolution",
}


def escalation_calendar(config: TenantConfig, team: str | None) -> BusinessCalendar:
    """The calendar business-hour rules count on: the team's, else the tenant's."""
    for configured in config.teams:
        if configured.name == team and configured.business_hours:
            return configured.business_hours.calendar()
    return calendar_of(config.business_hours.config or ALWAYS_OPEN)


def escalation_threshold(
    rule: EscalationRule,
    *,
    created_at: datetime,
    last_activity_at: datetime,
    due_times: Mapping[str, datetime | None],
    calendar: BusinessCalendar | None = None,
) -> datetime | None:
    """The instant the rule fires; None while its SLA due time is unset.

    A due time is None when its target is stopped (met) or paused, and then
    a rule measured from it has nothing to count from. A ``business_hours``
    rule counts on ``calendar`` (required for one).
    """
    measured_from = rule.measured_from
    if measured_from == "created":
        anchor: datetime | None = created_at
    elif measured_from == "last_update":
        anchor = last_activity_at
    elif measured_from in _DUE_TIME_KEYS:
        anchor = due_times.get(_DUE_TIME_KEYS[measured_from])
    else:
        raise ValueError(f"unknown escalation anchor {measured_from!r}")
    if anchor is None:
        return None
    hours = rule.escalation_time_hours
    if rule.business_hours:
        if calendar is None:
            raise ValueError(f"rule {rule.name!r} counts business hours")
        return calendar.add_business_minutes(anchor, hours * 60)
    return anchor + timedelta(hours=hours)


@dataclass(frozen=True)
class EscalationVerdict:
    """What to do about one rule now, and why (shown in the ticket's history)."""

    action: Literal["escalate", "request_approval", "none"]
    reason: str


def evaluate_escalation(
    rule: EscalationRule,
    facts: TicketFacts,
    *,
    active: bool,
    current_level: int,
    rejected_levels: Collection[int],
    pending_levels: Collection[int],
    threshold: datetime | None,
    now: datetime,
    current_team: str | None = None,
) -> EscalationVerdict:
    """Whether ``rule`` escalates the ticket at ``now``.

    The checks run from the cheapest, most final reason not to act down to
    the clock, so the reason given is the most telling one. A rule whose
    team holds the ticket (``current_team``) would change nothing
    (``domain.escalation_change``): it neither escalates nor asks a
    supervisor to approve.
    """
    level = rule.level
    if not active:
        return _none("ticket is no longer active (resolved or closed)")
    # The ticket may have changed since the threshold was scheduled.
    if not matches(rule.conditions, facts):
        return _none("conditions no longer match")
    if level <= current_level:
        return _none(f"already at level {current_level}")
    if level in rejected_levels:
        return _none(f"level {level} rejected")
    if level in pending_levels:
        return _none(f"level {level} awaiting approval")
    if rule_keeps_holder(rule, current_team):
        return _none(f"team {current_team} holds the ticket already")
    if threshold is None:
        return _none("no threshold: the SLA target is stopped or paused")
    if now < threshold:
        return _none(f"not yet due (threshold {threshold.isoformat()})")
    if rule.requires_approval:
        return EscalationVerdict(
            "request_approval", f"{_describe(rule, threshold)}; approval required"
        )
    return EscalationVerdict("escalate", _describe(rule, threshold))


def rule_keeps_holder(rule: EscalationRule, current_team: str | None) -> bool:
    """Would the rule escalate to the team that holds the ticket already?

    Its escalation changes nothing then: within the same team the agent
    keeps the ticket (``domain.escalation_change``).
    """
    return current_team is not None and rule.escalate_to_team == current_team


def _none(reason: str) -> EscalationVerdict:
    return EscalationVerdict("none", reason)


def _describe(rule: EscalationRule, threshold: datetime) -> str:
    """E.g. ``rule late: 2 h before resolution due (threshold 2026-...)``."""
    hours = rule.escalation_time_hours
    measured_from = rule.measured_from
    if measured_from == "created":
        span = f"{hours:g} h since creation"
    elif measured_from == "last_update":
        span = f"{hours:g} h since last update"
    else:
        due = measured_from.removesuffix("_due").replace("_", " ")
        side = "before" if hours < 0 else "after"
        span = f"{abs(hours):g} h {side} {due} due"
    return f"rule {rule.name}: {span} (threshold {threshold.isoformat()})"
