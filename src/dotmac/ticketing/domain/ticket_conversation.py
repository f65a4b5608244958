"""The ticket's conversation: comments and attachments, and the customer's answer
ending a wait on them; merges, which carry a conversation over, and links.

Functions of a :class:`~domain.ticket.Ticket`, which takes each as its method
(``ticket.check_sla(...)``): ``domain/ticket.py`` keeps to the ticket's lifecycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from dotmac.ticketing.domain.customer_replies import (
    CUSTOMER_REPLY,
    DEFAULT_REPLY_POLICY,
    CustomerReplyPolicy,
    is_customer_answer,
)
from dotmac.ticketing.domain.enums import (
    LinkRelation,
    TicketStatus,
)
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.lifecycle import (
    Command,
    ensure_allowed,
    ensure_status_change,
)
from dotmac.ticketing.domain.limits import (
    COMMENT_MAX,
    FILENAME_MAX,
)
from dotmac.ticketing.domain.merging import (
    TICKET_MERGE,
    MergedSource,
    MergePolicy,
    carried_comments,
)
from dotmac.ticketing.domain.provenance import Provenance, event_id
from dotmac.ticketing.domain.ticket_validation import _valid_text

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket


def add_comment(
    ticket: Ticket,
    body: str,
    *,
    internal: bool,
    provenance: Provenance,
    at: datetime,
    comment_id: str | None = None,
    replies: CustomerReplyPolicy = DEFAULT_REPLY_POLICY,
    acknowledgment: bool = False,
    solution: bool = False,
) -> str:
    """Add a comment; the first public agent reply is the first response.

    The customer's public comment ends a wait on them as ``replies`` (the
    tenant's policy) says: the ticket reopens and paused clocks resume.
    ``acknowledgment`` marks an automation's public acknowledgment of
    the new ticket (see ``CommentAdded.acknowledgment``); ``solution``
    an agent's public reply that solves the problem
    (``CommentAdded.solution``).
    """
    ensure_allowed(Command.COMMENT, ticket.status)
    body = _valid_text("body", body, COMMENT_MAX, required=True, strip=False)
    if internal and provenance.actor.role == "customer":
        raise InvalidCommand("internal", "customers cannot write internal notes")
    if acknowledgment and (internal or provenance.actor.kind != "automation"):
        raise InvalidCommand(
            "acknowledgment", "only an automation's public comment acknowledges"
        )
    if solution and (internal or not provenance.actor.is_agent):
        raise InvalidCommand(
            "solution",
            "only an agent's public reply is a solution (not an internal note)",
        )
    comment_id = comment_id or uuid4().hex
    is_first_response = (
        not internal and ticket.first_response_at is None and provenance.actor.is_agent
    )
    ticket._trigger(
        ticket.CommentAdded,
        provenance,
        at,
        comment_id=comment_id,
        body=body,
        internal=internal,
        is_first_response=is_first_response,
        acknowledgment=acknowledgment,
        solution=solution,
    )
    if not internal:
        ticket._end_wait_on_answer(
            replies,
            provenance,
            at,
            cause={"event": "CommentAdded", "comment_id": comment_id},
        )
        ticket._follow_reply(provenance, at)
    return comment_id


def add_attachment(
    ticket: Ticket,
    *,
    attachment_id: str,
    filename: str,
    content_type: str,
    size: int,
    sha256: str,
    provenance: Provenance,
    at: datetime,
    replies: CustomerReplyPolicy = DEFAULT_REPLY_POLICY,
) -> None:
    """Record a stored file's metadata (the bytes live outside the stream).

    The customer's attachment is an answer too (see :meth:`add_comment`).
    """
    ensure_allowed(Command.ATTACH, ticket.status)
    filename = _valid_text("filename", filename, FILENAME_MAX, required=True)
    if size < 0:
        raise InvalidCommand("size", "must not be negative")
    if len(sha256) != 64:
        raise InvalidCommand("sha256", "must be 64 hexadecimal digits")
    ticket._trigger(
        ticket.AttachmentAdded,
        provenance,
        at,
        attachment_id=attachment_id,
        filename=filename,
        content_type=content_type or "application/octet-stream",
        size=size,
        sha256=sha256,
    )
    ticket._end_wait_on_answer(
        replies,
        provenance,
        at,
        cause={"event": "AttachmentAdded", "attachment_id": attachment_id},
    )


def _end_wait_on_answer(
    ticket: Ticket,
    replies: CustomerReplyPolicy,
    provenance: Provenance,
    at: datetime,
    *,
    cause: dict[str, Any],
) -> None:
    """The customer answered a ticket waiting on them: reopen it.

    Called right after the answer's event, so ``cause`` (and the change's
    causation id) names that event's version. The change is an
    automation's, in the same request (same correlation id), saved with
    the answer; the clocks the waiting state paused resume with it.
    """
    if not is_customer_answer(provenance.actor, ticket.customer_id):
        return
    if ticket.status == TicketStatus.RESOLVED:
        if replies.reopens(ticket.resolved_at, at):
            ticket._reopen(
                "the customer answered", ticket._answer_provenance(provenance), at
            )
        return
    status = replies.status_after_answer(ticket.status)
    if status is None or not ensure_status_change(ticket.status, status):
        return
    automation = ticket._answer_provenance(provenance)
    ticket._trigger(
        ticket.StatusChanged,
        automation,
        at,
        status=status.value,
        previous_status=ticket.status.value,
        reason="the customer answered",
        cause={**cause, "version": ticket.version, "customer_id": ticket.customer_id},
    )
    ticket._follow_sla(automation, at)


def _answer_provenance(ticket: Ticket, provenance: Provenance) -> Provenance:
    """The ``customer-reply`` automation, caused by the answer just recorded."""
    return provenance.acting_as(
        CUSTOMER_REPLY, causation_id=event_id(ticket.id, ticket.version)
    )


def merge_into(
    ticket: Ticket,
    target: Ticket,
    *,
    provenance: Provenance,
    at: datetime,
    confirm_cross_customer: bool = False,
    policy: MergePolicy | None = None,
) -> None:
    """Fold this ticket into ``target``: this one closes, both link, and
    the target receives this one's description and comments.

    Two customers' tickets merge only when ``confirm_cross_customer``
    says so and the tenant's ``policy`` allows it (``domain.merging``).
    """
    ensure_allowed(Command.MERGE, ticket.status)
    ensure_allowed(Command.MERGE, target.status)
    if target.id == ticket.id:
        raise InvalidCommand("into", "a ticket cannot be merged into itself")
    if target.tenant_id != ticket.tenant_id:
        raise CommandRefused(Command.MERGE.value, ticket.status.value, "unknown")
    cross_customer = (policy or MergePolicy()).check(
        source_customer_id=ticket.customer_id,
        target_customer_id=target.customer_id,
        confirmed=confirm_cross_customer,
        status=ticket.status.value,
    )
    ticket._trigger(
        ticket.TicketMerged,
        provenance,
        at,
        into_ticket_id=str(target.id),
        into_number=target.number,
        into_assignee_id=target.assignee_id,
        cross_customer=cross_customer,
    )
    merged_at = event_id(ticket.id, ticket.version)
    # Linked before the close: a closed ticket takes no links.
    ticket.link(target.id, LinkRelation.MERGED_INTO, provenance=provenance, at=at)
    ticket._trigger(ticket.TicketClosed, provenance, at, reason="merged")
    ticket._stop_clocks_closed(provenance, at)
    ticket._cancel_workflow("the ticket was merged", provenance, at)
    target._receive_merge(
        ticket, cross_customer, provenance, at, causation_id=merged_at
    )


def _receive_merge(
    ticket: Ticket,
    source: Ticket,
    cross_customer: bool,
    provenance: Provenance,
    at: datetime,
    *,
    causation_id: str,
) -> None:
    """Link back to the merged ticket and carry its conversation over.

    The carried comments are the ``ticket-merge`` automation's, caused
    by the source's ``TicketMerged``: they are not a reply of the
    merging agent (no first response, no SLA goal reached, no answer
    of the customer ending a wait).
    """
    ticket.link(source.id, LinkRelation.MERGED_FROM, provenance=provenance, at=at)
    carrier = provenance.acting_as(TICKET_MERGE, causation_id=causation_id)
    carried = carried_comments(
        MergedSource(
            number=source.number,
            title=source.title,
            description=source.description,
            opened_at=source.created_on,
            opened_by=source.created_by,
            comments=source.comments,
            attachments=source.attachments,
        ),
        cross_customer=cross_customer,
    )
    for comment in carried:
        ticket._trigger(
            ticket.CommentAdded,
            carrier,
            at,
            comment_id=uuid4().hex,
            body=comment.body,
            internal=comment.internal,
            is_first_response=False,
            merged_from=str(source.id),
        )


def link(
    ticket: Ticket,
    other_id: UUID,
    relation: LinkRelation,
    *,
    provenance: Provenance,
    at: datetime,
) -> bool:
    ensure_allowed(Command.LINK, ticket.status)
    if other_id == ticket.id:
        raise InvalidCommand("ticket_id", "a ticket cannot link to itself")
    link = {"ticket_id": str(other_id), "relation": LinkRelation(relation).value}
    if link in ticket.links:
        return False
    ticket._trigger(
        ticket.TicketLinked,
        provenance,
        at,
        linked_ticket_id=link["ticket_id"],
        relation=link["relation"],
    )
    return True
