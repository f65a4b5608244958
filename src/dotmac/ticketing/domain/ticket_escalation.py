"""Escalations of the ticket: made by a person or a rule, or asked of a supervisor.

Functions of a :class:`~domain.ticket.Ticket`, which takes each as its method
(``ticket.check_sla(...)``): ``domain/ticket.py`` keeps to the ticket's lifecycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.deadlines import facts_of
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.domain.errors import CommandRefused
from dotmac.ticketing.domain.escalation_change import escalation_change
from dotmac.ticketing.domain.escalation_rules import (
    EscalationVerdict,
    escalation_threshold,
    evaluate_escalation,
)
from dotmac.ticketing.domain.lifecycle import (
    Command,
    ensure_allowed,
    status_after_assignment,
)
from dotmac.ticketing.domain.limits import (
    REASON_MAX,
    TEAM_MAX,
)
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.tenant_config import EscalationRule
from dotmac.ticketing.domain.ticket_validation import (
    _optional_text,
    _valid_text,
)

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket


def escalate(
    ticket: Ticket,
    *,
    reason: str,
    provenance: Provenance,
    at: datetime,
    team: str | None = None,
    level: int | None = None,
    rule: str | None = None,
    assignee_id: str | None = None,
    assignment: dict[str, Any] | None = None,
) -> int:
    """Raise the escalation level; a new team takes the ticket over.

    A person escalates one level up; a rule names its level. An agent of
    the new team picked by assignment (``assignee_id``, with why in
    ``assignment``) takes it; otherwise it waits in that team's queue.
    An escalation that leaves the ticket with whoever holds it (the same
    team and agent, ``domain.escalation_change``) records nothing and
    returns the level the ticket is at.
    """
    ensure_allowed(Command.ESCALATE, ticket.status)
    reason = _valid_text("reason", reason, REASON_MAX, required=True)
    team = _optional_text("team", team, TEAM_MAX)
    new_level = ticket.escalation_level + 1 if level is None else level
    if new_level <= ticket.escalation_level:
        raise CommandRefused(
            f"escalate to level {new_level}",
            ticket.status.value,
            f"already at level {ticket.escalation_level}",
        )
    change = escalation_change(
        current_team=ticket.assigned_team,
        current_assignee=ticket.assignee_id,
        team=team,
        assignee_id=assignee_id,
    )
    if not change.changes:
        return ticket.escalation_level
    ticket._trigger(
        ticket.TicketEscalated,
        provenance,
        at,
        level=new_level,
        team=change.team,
        reason=reason,
        assignee_id=change.assignee_id,
        rule=rule,
        assignment=assignment,
    )
    ticket._open_once_assigned(provenance, at, reason="assigned by escalation")
    return new_level


def _open_once_assigned(
    ticket: Ticket, provenance: Provenance, at: datetime, *, reason: str
) -> None:
    """A new ticket someone now holds is open, as a manual assignment makes it."""
    if ticket.assignee_id is None:
        return
    status = status_after_assignment(ticket.status)
    if status == ticket.status:
        return
    ticket._trigger(
        ticket.StatusChanged,
        provenance,
        at,
        status=status.value,
        previous_status=ticket.status.value,
        reason=reason,
    )
    ticket._follow_sla(provenance, at)


def request_escalation(
    ticket: Ticket,
    *,
    level: int,
    team: str,
    rule: str,
    reason: str,
    provenance: Provenance,
    at: datetime,
) -> bool:
    """Ask a supervisor to approve a rule's escalation; False if moot.

    A level already reached, awaiting approval or rejected once is not
    asked for again: a rejection stands for that level.
    """
    ensure_allowed(Command.ESCALATE, ticket.status)
    if level <= ticket.escalation_level or any(
        r["level"] == level and r["state"] in ("pending", "rejected")
        for r in ticket._requests()
    ):
        return False
    ticket._trigger(
        ticket.EscalationRequested,
        provenance,
        at,
        level=level,
        team=_valid_text("team", team, TEAM_MAX, required=True),
        rule=rule,
        reason=_valid_text("reason", reason, REASON_MAX, required=True),
    )
    return True


def pending_escalation(ticket: Ticket) -> dict[str, Any] | None:
    """The escalation request awaiting a supervisor, if any."""
    pending = [r for r in ticket._requests() if r["state"] == "pending"]
    return pending[-1] if pending else None


def rejected_escalation_levels(ticket: Ticket) -> set[int]:
    return {r["level"] for r in ticket._requests() if r["state"] == "rejected"}


def approve_escalation(
    ticket: Ticket,
    *,
    provenance: Provenance,
    at: datetime,
    comment: str = "",
    assignee_id: str | None = None,
    assignment: dict[str, Any] | None = None,
) -> int:
    """Approve the pending request: the ticket escalates as the rule said."""
    request = ticket._pending_or_refuse("approve escalation")
    comment = _valid_text("comment", comment, REASON_MAX)
    ticket._trigger(
        ticket.EscalationApproved,
        provenance,
        at,
        level=request["level"],
        comment=comment,
    )
    if request["level"] <= ticket.escalation_level:
        # A person escalated further meanwhile: the approval is recorded
        # but there is nothing left to raise.
        return ticket.escalation_level
    return ticket.escalate(
        reason=request["reason"],
        team=request["team"],
        level=request["level"],
        rule=request["rule"],
        assignee_id=assignee_id,
        assignment=assignment,
        provenance=provenance,
        at=at,
    )


def reject_escalation(
    ticket: Ticket, *, provenance: Provenance, at: datetime, comment: str = ""
) -> int:
    """Reject the pending request; its level is not asked for again."""
    request = ticket._pending_or_refuse("reject escalation")
    ticket._trigger(
        ticket.EscalationRejected,
        provenance,
        at,
        level=request["level"],
        comment=_valid_text("comment", comment, REASON_MAX),
    )
    return int(request["level"])


def _pending_or_refuse(ticket: Ticket, command: str) -> dict[str, Any]:
    ensure_allowed(Command.ESCALATE, ticket.status)
    request = ticket.pending_escalation()
    if request is None:
        raise CommandRefused(
            command, ticket.status.value, "no escalation awaits approval"
        )
    return request


def _requests(ticket: Ticket) -> list[dict[str, Any]]:
    if ticket.escalation_requests is None:
        ticket.escalation_requests = []
    return ticket.escalation_requests


def _decide_request(
    ticket: Ticket,
    event: Ticket.EscalationApproved | Ticket.EscalationRejected,
    state: str,
) -> None:
    for request in reversed(ticket._requests()):
        if request["level"] == event.level and request["state"] == "pending":
            request.update(
                state=state,
                decided_at=event.timestamp,
                decided_by=event.actor["id"],
                comment=event.comment,
            )
            return


def judge_escalation_rule(
    ticket: Ticket,
    rule: EscalationRule | None,
    *,
    rule_name: str,
    calendar: BusinessCalendar,
    now: datetime,
) -> EscalationVerdict:
    """Whether the tenant's escalation ``rule`` holds for the ticket as it is now.

    ``rule`` None: the rule named ``rule_name`` was removed since its timer
    was set. ``calendar`` is what a business-hours rule counts on
    (``escalation_rules.escalation_calendar``).
    """
    if rule is None:
        return EscalationVerdict("none", f"no rule {rule_name!r} any more")
    pending = ticket.pending_escalation()
    return evaluate_escalation(
        rule,
        facts_of(ticket),
        active=ticket.status in ACTIVE_STATUSES,
        current_level=ticket.escalation_level,
        rejected_levels=ticket.rejected_escalation_levels(),
        pending_levels=[] if pending is None else [pending["level"]],
        threshold=escalation_threshold(
            rule,
            created_at=ticket.created_on,
            last_activity_at=ticket.last_activity_at or ticket.created_on,
            due_times=ticket.sla_due_times(),
            calendar=calendar,
        ),
        now=now,
        current_team=ticket.assigned_team,
    )


def apply_escalation_rule(
    ticket: Ticket,
    rule: EscalationRule | None,
    verdict: EscalationVerdict,
    *,
    assignee_id: str | None,
    assignment: dict[str, Any] | None,
    provenance: Provenance,
    at: datetime,
) -> None:
    """Do what ``verdict`` (:func:`judge_escalation_rule`) says of ``rule``:
    escalate to its team (``assignee_id`` of it taking the ticket, if
    picked), ask a supervisor's approval, or nothing."""
    if rule is None or verdict.action == "none":
        return
    if verdict.action == "request_approval":
        ticket.request_escalation(
            level=rule.level,
            team=rule.escalate_to_team,
            rule=rule.name,
            reason=verdict.reason,
            provenance=provenance,
            at=at,
        )
        return
    ticket.escalate(
        reason=verdict.reason,
        team=rule.escalate_to_team,
        level=rule.level,
        rule=rule.name,
        assignee_id=assignee_id,
        assignment=assignment,
        provenance=provenance,
        at=at,
    )
