"""HTTP routes of the ticket use cases.

Views only translate: HTTP in, one ``TicketService`` call, HTTP out. What
they need (the caller, the service, the version ``If-Match`` expects) is
declared in ``deps.py``; a command runs through ``commands.TicketCommand``.
"""

from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import File, Path, Request, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from dotmac.ticketing.schemas import (
    AttachmentRead,
    CommentCreate,
    CommentRead,
    HistoryEntryRead,
    SatisfactionRate,
    TicketAssign,
    TicketCreate,
    TicketEscalate,
    TicketLink,
    TicketMerge,
    TicketRead,
    TicketReopen,
    TicketResolve,
    TicketStatusChange,
    TicketUpdate,
)
from dotmac.ticketing.schemas.sla import TicketSLARead
from dotmac.ticketing.schemas.tickets import EscalationDecision
from dotmac.ticketing.schemas.time_entries import TimeEntryCreate, TimeEntryRead
from dotmac.ticketing.service.api.commands import Command, VersionedCommand
from dotmac.ticketing.service.api.deps import (
    AsOf,
    AttachmentLimit,
    Caller,
    IdempotencyKey,
    Tickets,
)
from dotmac.ticketing.service.api.presenters import (
    attachment_read,
    comment_read,
    sla_read,
    ticket_read,
    time_entry_read,
)
from dotmac.ticketing.service.api.problems import PayloadTooLarge
from dotmac.ticketing.service.api.responses import (
    BODY,
    RESOURCE,
    VERSIONED,
    WRITE,
)
from dotmac.ticketing.service.api.routers import tickets_router
from dotmac.ticketing.service.api.versions import etag, invalid, parse_as_of

# The answers of a route that names a ticket, of a command with a body, and
# of one that honours If-Match too.
_READ = RESOURCE
_COMMAND = {**RESOURCE, **BODY, **WRITE}
_VERSIONED_COMMAND = {**_COMMAND, **VERSIONED}
_VERSIONED_ACTION = {**RESOURCE, **WRITE, **VERSIONED}

router = tickets_router()


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    summary="Open a ticket",
    responses={**BODY, **WRITE},
)
def create_ticket(
    body: TicketCreate,
    command: Command,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> TicketRead:
    result = command.tickets.create_ticket(
        command.ctx, idempotency_key=idempotency_key, **body.model_dump()
    )
    command.response.headers["Location"] = f"{request.url.path}{result.ticket.id}"
    if result.replayed:
        command.response.headers["Idempotent-Replayed"] = "true"
    return command.answer(result)


@router.get("/{ticket_id}", summary="A ticket, now or as it was", responses=_READ)
def get_ticket(
    ticket_id: UUID,
    ctx: Caller,
    tickets: Tickets,
    response: Response,
    as_of: AsOf = None,
) -> TicketRead:
    moment = parse_as_of(as_of)
    ticket = tickets.get_ticket(ctx, ticket_id, as_of=moment)
    response.headers["ETag"] = etag(ticket.version)
    # The SLA as it stood then: at the moment asked for, or when the
    # version asked for was written.
    return ticket_read(
        ticket,
        now=tickets.seen_at(ticket, moment),
        bouncing=tickets.customer_email_bouncing(ticket),
        staff=ctx.is_staff,
        hidden=tickets.hidden_tickets(ctx, ticket),
    )


@router.get(
    "/{ticket_id}/sla",
    summary="SLA clocks: state, due times, business minutes and why",
    responses=_READ,
    description=(
        "Per target (first_response, resolution, next_reply): its state, "
        "due and warning times, business minutes used and left, pauses "
        "and the recorded explanation (policy, settings version, "
        "calendar, target minutes, paused intervals), computed now. The "
        "ticket's customer sees each target's state and times only."
    ),
)
def sla(
    ticket_id: UUID, ctx: Caller, tickets: Tickets, as_of: AsOf = None
) -> TicketSLARead:
    report = tickets.sla(ctx, ticket_id, as_of=parse_as_of(as_of))
    return sla_read(report, staff=ctx.is_staff)


@router.put(
    "/{ticket_id}", summary="Change fields (partial)", responses=_VERSIONED_COMMAND
)
def update_ticket(
    ticket_id: UUID, body: TicketUpdate, command: VersionedCommand
) -> TicketRead:
    return command.run(
        command.tickets.update_ticket,
        ticket_id,
        **body.model_dump(exclude_unset=True),
    )


@router.post(
    "/{ticket_id}/assign",
    summary="Assign to a person and/or team",
    responses=_VERSIONED_COMMAND,
)
def assign(
    ticket_id: UUID, body: TicketAssign, command: VersionedCommand
) -> TicketRead:
    return command.run(
        command.tickets.assign, ticket_id, assignee_id=body.assignee_id, team=body.team
    )


@router.post(
    "/{ticket_id}/unassign",
    summary="Remove the assignee",
    responses=_VERSIONED_ACTION,
)
def unassign(ticket_id: UUID, command: VersionedCommand) -> TicketRead:
    return command.run(command.tickets.unassign, ticket_id)


@router.post(
    "/{ticket_id}/status",
    summary="Move between active states",
    responses=_VERSIONED_COMMAND,
)
def change_status(
    ticket_id: UUID, body: TicketStatusChange, command: VersionedCommand
) -> TicketRead:
    return command.run(
        command.tickets.change_status, ticket_id, body.status, reason=body.reason
    )


@router.post(
    "/{ticket_id}/escalate",
    summary="Escalate a level",
    responses=_VERSIONED_COMMAND,
)
def escalate(
    ticket_id: UUID, body: TicketEscalate, command: VersionedCommand
) -> TicketRead:
    return command.run(
        command.tickets.escalate, ticket_id, reason=body.reason, team=body.team
    )


@router.post(
    "/{ticket_id}/escalation/approve",
    summary="Approve the pending escalation (supervisor or admin)",
    description=(
        "The ticket escalates as the rule asked: its level and team, with "
        "an agent of the new team where one has room. 409 when no "
        "escalation awaits approval."
    ),
    responses=_VERSIONED_COMMAND,
)
def approve_escalation(
    ticket_id: UUID,
    command: VersionedCommand,
    body: EscalationDecision | None = None,
) -> TicketRead:
    return command.run(
        command.tickets.approve_escalation,
        ticket_id,
        comment=body.comment if body else "",
    )


@router.post(
    "/{ticket_id}/escalation/reject",
    summary="Reject the pending escalation (supervisor or admin)",
    description=(
        "The rule does not ask for the same level again. 409 when no "
        "escalation awaits approval."
    ),
    responses=_VERSIONED_COMMAND,
)
def reject_escalation(
    ticket_id: UUID,
    command: VersionedCommand,
    body: EscalationDecision | None = None,
) -> TicketRead:
    return command.run(
        command.tickets.reject_escalation,
        ticket_id,
        comment=body.comment if body else "",
    )


@router.post("/{ticket_id}/resolve", summary="Resolve", responses=_VERSIONED_COMMAND)
def resolve(
    ticket_id: UUID, body: TicketResolve, command: VersionedCommand
) -> TicketRead:
    return command.run(
        command.tickets.resolve,
        ticket_id,
        resolution=body.resolution,
        resolution_code=body.resolution_code,
    )


@router.post(
    "/{ticket_id}/reopen",
    summary="Reopen a resolved ticket",
    responses=_VERSIONED_COMMAND,
)
def reopen(
    ticket_id: UUID,
    command: VersionedCommand,
    body: TicketReopen | None = None,
) -> TicketRead:
    return command.run(
        command.tickets.reopen, ticket_id, reason=body.reason if body else ""
    )


@router.post(
    "/{ticket_id}/close",
    summary="Close a resolved ticket",
    responses=_VERSIONED_ACTION,
)
def close(ticket_id: UUID, command: VersionedCommand) -> TicketRead:
    return command.run(command.tickets.close, ticket_id)


@router.post(
    "/{ticket_id}/satisfaction",
    summary="Rate a resolved ticket (its customer)",
    responses=_COMMAND,
)
def rate_satisfaction(
    ticket_id: UUID, body: SatisfactionRate, command: Command
) -> TicketRead:
    return command.run(
        command.tickets.rate_satisfaction,
        ticket_id,
        rating=body.rating,
        comment=body.comment,
    )


@router.post(
    "/{ticket_id}/merge",
    summary="Merge into another ticket",
    description=(
        "This ticket closes as merged; both tickets link to each other"
        " (merged_into, merged_from) and the other one receives this one's"
        " description and comments, quoted (public stay public, internal"
        " notes stay internal). Tickets of two different customers answer"
        " 409 cross-customer-merge unless confirm_cross_customer is true"
        " (and the tenant's merges.cross_customer is not refuse); then"
        " everything carried is internal. docs/tickets.md, Merging."
    ),
    responses=_COMMAND,
)
def merge(ticket_id: UUID, body: TicketMerge, command: Command) -> TicketRead:
    return command.run(
        command.tickets.merge,
        ticket_id,
        into=body.into,
        confirm_cross_customer=body.confirm_cross_customer,
    )


@router.post("/{ticket_id}/links", summary="Link to another ticket", responses=_COMMAND)
def link(ticket_id: UUID, body: TicketLink, command: Command) -> TicketRead:
    return command.run(
        command.tickets.link, ticket_id, other_id=body.ticket_id, relation=body.relation
    )


@router.post(
    "/{ticket_id}/comments",
    status_code=status.HTTP_201_CREATED,
    summary="Add a public reply or an internal note",
    responses=_VERSIONED_COMMAND,
)
def add_comment(
    ticket_id: UUID,
    body: CommentCreate,
    command: VersionedCommand,
    request: Request,
) -> CommentRead:
    result = command.tickets.add_comment(
        command.ctx,
        ticket_id,
        body=body.body,
        internal=body.internal,
        solution=body.solution,
        expected_version=command.expected_version,
    )
    response = command.response
    response.headers["ETag"] = etag(result.ticket.version)
    if result.position is not None:
        response.headers["X-Event-Position"] = str(result.position)
    if result.ticket.id != ticket_id:
        # The customer wrote on a ticket that was done: the comment is
        # on its follow-up (see TicketService.add_comment).
        response.headers["Location"] = str(
            request.url_for("get_ticket", ticket_id=str(result.ticket.id))
        )
    return comment_read(result.ticket.comments[-1])


@router.get("/{ticket_id}/comments", summary="Comments, oldest first", responses=_READ)
def list_comments(
    ticket_id: UUID, ctx: Caller, tickets: Tickets, as_of: AsOf = None
) -> list[CommentRead]:
    comments = tickets.comments(ctx, ticket_id, as_of=parse_as_of(as_of))
    return [comment_read(c) for c in comments]


@router.post(
    "/{ticket_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (multipart/form-data, field 'file')",
    responses=_COMMAND,
)
async def add_attachment(
    ticket_id: UUID,
    command: Command,
    limit: AttachmentLimit,
    # At least one byte: an empty part (what a form sends for no file,
    # or for null) is refused, not stored as an empty attachment.
    file: Annotated[UploadFile, File(json_schema_extra={"minLength": 1})],
) -> AttachmentRead:
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(limit)
    if not content:
        raise invalid("body", "file", "a file with at least one byte")
    result, attachment_id = await run_in_threadpool(
        command.tickets.add_attachment,
        command.ctx,
        ticket_id,
        filename=file.filename or "attachment",
        content_type=file.content_type or "application/octet-stream",
        content=content,
    )
    command.response.headers["ETag"] = etag(result.ticket.version)
    meta = result.ticket.find_attachment(attachment_id)
    assert meta is not None
    return attachment_read(meta)


@router.get(
    "/{ticket_id}/attachments",
    summary="The ticket's files, oldest first (metadata; download each by id)",
    responses=_READ,
)
def list_attachments(
    ticket_id: UUID, ctx: Caller, tickets: Tickets, as_of: AsOf = None
) -> list[AttachmentRead]:
    ticket = tickets.get_ticket(ctx, ticket_id, as_of=parse_as_of(as_of))
    return [attachment_read(a) for a in ticket.attachments]


@router.get(
    "/{ticket_id}/attachments/{attachment_id}",
    summary="Download a file",
    response_class=Response,
    responses={
        # Served with the media type it was uploaded with.
        200: {"content": {"*/*": {"schema": {"type": "string"}}}},
        **_READ,
    },
)
def get_attachment(
    ticket_id: UUID,
    attachment_id: Annotated[str, Path(max_length=64)],
    ctx: Caller,
    tickets: Tickets,
) -> Response:
    meta, content = tickets.attachment(ctx, ticket_id, attachment_id)
    filename = quote(meta["filename"])
    return Response(
        content,
        media_type=meta["content_type"],
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
            "X-Content-Type-Options": "nosniff",
            "X-Content-SHA256": meta["sha256"],
        },
    )


@router.post(
    "/{ticket_id}/time-entries",
    status_code=status.HTTP_201_CREATED,
    summary="Log time spent on the ticket (staff)",
    responses=_COMMAND,
)
def log_time(ticket_id: UUID, body: TimeEntryCreate, command: Command) -> TimeEntryRead:
    result, entry_id = command.tickets.log_time(
        command.ctx,
        ticket_id,
        minutes=body.minutes,
        billable=body.billable,
        work_type=body.type,
        note=body.note,
        agent_id=body.agent_id,
    )
    response = command.response
    response.headers["ETag"] = etag(result.ticket.version)
    if result.position is not None:
        response.headers["X-Event-Position"] = str(result.position)
    entry = result.ticket.find_time_entry(entry_id)
    assert entry is not None
    return time_entry_read(entry)


@router.get(
    "/{ticket_id}/time-entries",
    summary="The time logged on the ticket, oldest first (staff)",
    responses=_READ,
)
def list_time_entries(
    ticket_id: UUID, ctx: Caller, tickets: Tickets, as_of: AsOf = None
) -> list[TimeEntryRead]:
    entries = tickets.time_entries(ctx, ticket_id, as_of=parse_as_of(as_of))
    return [time_entry_read(e) for e in entries]


@router.delete(
    "/{ticket_id}/time-entries/{entry_id}",
    summary="Take back a time entry (its agent, a supervisor or an admin)",
    responses={**RESOURCE, **WRITE},
)
def remove_time_entry(
    ticket_id: UUID,
    entry_id: Annotated[str, Path(max_length=64)],
    command: Command,
) -> TicketRead:
    return command.run(command.tickets.remove_time_entry, ticket_id, entry_id)


@router.get(
    "/{ticket_id}/history", summary="Every event, oldest first", responses=_READ
)
def history(
    ticket_id: UUID, ctx: Caller, tickets: Tickets, as_of: AsOf = None
) -> list[HistoryEntryRead]:
    return tickets.history(ctx, ticket_id, as_of=parse_as_of(as_of))
