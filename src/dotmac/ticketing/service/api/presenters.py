"""Aggregates into response models: the only place that knows both."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from dotmac.ticketing.domain.sla import TARGETS
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.schemas import (
    AttachmentRead,
    CommentRead,
    TicketRead,
)
from dotmac.ticketing.schemas.sla import (
    SLAExplanationRead,
    SLAPauseRead,
    SLAPolicyRead,
    SLATargetRead,
    SLATargetSummary,
    TicketSLARead,
    TicketSLASummary,
)
from dotmac.ticketing.schemas.tickets import PendingEscalationRead, Resolution
from dotmac.ticketing.schemas.time_entries import TimeEntryRead
from dotmac.ticketing.service.tickets import SLAReport


def ticket_read(
    ticket: Ticket,
    *,
    now: datetime,
    bouncing: bool,
    position: int | None = None,
    staff: bool = True,
    hidden: Collection[str] = (),
) -> TicketRead:
    """The ticket as ``staff`` or its customer sees it, its SLA as of ``now``.

    ``bouncing``: mail to the customer's address bounces now
    (``TicketService.customer_email_bouncing``). ``hidden``: tickets the
    caller may not see (``TicketService.hidden_tickets``), left out of
    ``links`` and ``merged_into``.
    """
    comments = ticket.comments if staff else ticket.public_comments()
    return TicketRead(
        id=ticket.id,
        number=ticket.number,
        version=ticket.version,
        position=position,
        title=ticket.title,
        description=ticket.description,
        status=ticket.status,
        priority=ticket.priority,
        category=ticket.category,
        channel=ticket.channel,
        customer_id=ticket.customer_id,
        customer_email=ticket.customer_email,
        customer_name=ticket.customer_name,
        customer_email_bouncing=bouncing,
        tags=ticket.tags,
        custom_fields=ticket.custom_fields,
        assigned_team=ticket.assigned_team,
        assignee_id=ticket.assignee_id,
        escalation_level=ticket.escalation_level,
        reopen_count=ticket.reopen_count,
        created_at=ticket.created_on,
        updated_at=ticket.modified_on,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        resolution=Resolution(**ticket.resolution) if ticket.resolution else None,
        merged_into=None if ticket.merged_into in hidden else ticket.merged_into,
        links=[link for link in ticket.links if link["ticket_id"] not in hidden],  # type: ignore[misc]
        attachments=[attachment_read(a) for a in ticket.attachments],
        comment_count=len(comments),
        satisfaction=ticket.satisfaction,
        sla=sla_summary(ticket.sla_report(now), staff=staff),
        pending_escalation=pending_escalation_read(ticket) if staff else None,
    )


def pending_escalation_read(ticket: Ticket) -> PendingEscalationRead | None:
    request = ticket.pending_escalation()
    if request is None:
        return None
    return PendingEscalationRead(
        level=request["level"],
        team=request["team"],
        rule=request["rule"],
        reason=request["reason"],
        requested_at=request["requested_at"],
    )


def sla_summary(
    targets: dict[str, dict[str, Any]], *, staff: bool
) -> TicketSLASummary | None:
    """Each target's state and due time; None for a ticket without an SLA."""
    if not targets:
        return None
    return TicketSLASummary(
        **{
            name: SLATargetSummary(
                state=_shown_state(report["state"], staff), due_at=report["due_at"]
            )
            for name, report in targets.items()
            if name in TARGETS
        }
    )


def sla_read(report: SLAReport, *, staff: bool) -> TicketSLARead:
    """The SLA report; customers get states and times only (see schemas.sla)."""
    ticket = report.ticket
    policy = ticket.sla_policy
    return TicketSLARead(
        ticket_id=ticket.id,
        version=ticket.version,
        priority=ticket.priority,
        computed_at=report.at,
        policy=SLAPolicyRead.model_validate(policy) if staff and policy else None,
        **{
            name: _target_read(name, target, staff=staff)
            for name, target in report.targets.items()
            if name in TARGETS
        },
    )


def _target_read(name: str, target: dict[str, Any], *, staff: bool) -> SLATargetRead:
    fields: dict[str, Any] = {
        "target": name,
        "state": _shown_state(target["state"], staff),
        "started_at": target["started_at"],
        "due_at": target["due_at"],
        "stopped_at": target["stopped_at"],
    }
    if staff:
        explanation = target.get("explanation")
        fields |= {
            "warning_at": target["warning_at"],
            "target_minutes": target["target_minutes"],
            "business_minutes_used": target["business_minutes_used"],
            "business_minutes_left": target["business_minutes_left"],
            "pauses": [SLAPauseRead.model_validate(p) for p in target["pauses"]],
            "explanation": (
                SLAExplanationRead.model_validate(explanation) if explanation else None
            ),
        }
    return SLATargetRead.model_validate(fields)


def _shown_state(state: str, staff: bool) -> Any:
    # The warning point is an internal alert, not part of the customer's
    # promise: to the customer a clock past it is simply still running.
    return "running" if state == "warning" and not staff else state


def comment_read(comment: dict[str, Any]) -> CommentRead:
    return CommentRead.model_validate(comment)


def attachment_read(attachment: dict[str, Any]) -> AttachmentRead:
    return AttachmentRead.model_validate(attachment)


def time_entry_read(entry: dict[str, Any]) -> TimeEntryRead:
    return TimeEntryRead(
        id=entry["id"],
        agent_id=entry["agent_id"],
        minutes=entry["minutes"],
        billable=entry["billable"],
        type=entry["work_type"],
        note=entry["note"],
        logged_by=entry["logged_by"],
        logged_at=entry["logged_at"],
    )
