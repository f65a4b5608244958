"""Aggregates into response models: the only place that knows both."""

from __future__ import annotations

from typing import Any

from domain.ticket import Ticket
from schemas import AttachmentRead, CommentRead, HistoryEntryRead, TicketRead
from service.tickets import HistoryEntry


def ticket_read(
    ticket: Ticket, *, position: int | None = None, staff: bool = True
) -> TicketRead:
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
        resolution=ticket.resolution,
        merged_into=ticket.merged_into,
        links=ticket.links,  # type: ignore[arg-type]
        attachments=[attachment_read(a) for a in ticket.attachments],
        comment_count=len(comments),
        satisfaction=ticket.satisfaction,
        sla=None,
    )


def comment_read(comment: dict[str, Any]) -> CommentRead:
    return CommentRead.model_validate(comment)


def attachment_read(attachment: dict[str, Any]) -> AttachmentRead:
    return AttachmentRead.model_validate(attachment)


def history_read(entry: HistoryEntry) -> HistoryEntryRead:
    return HistoryEntryRead(
        version=entry.version,
        event=entry.event,
        at=entry.at,
        actor=entry.actor,
        correlation_id=entry.correlation_id,
        causation_id=entry.causation_id,
        data=entry.data,
    )
