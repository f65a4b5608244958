"""HTTP routes of the ticket use cases.

Views only translate: HTTP in, one ``TicketService`` call, HTTP out. The
router takes its caller-identifying dependencies as arguments so that a
host application can mount it behind its own authentication.
"""

import re
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import (
    APIRouter,
    Depends,
    File,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from dotmac.ticketing.projections.read_model import ReadModel
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
from dotmac.ticketing.schemas.queries import Moment
from dotmac.ticketing.schemas.sla import TicketSLARead
from dotmac.ticketing.schemas.tickets import EscalationDecision
from dotmac.ticketing.service.api.presenters import (
    attachment_read,
    comment_read,
    history_read,
    sla_read,
    ticket_read,
)
from dotmac.ticketing.service.api.problems import (
    PayloadTooLarge,
    ProblemRoute,
    Unauthorized,
)
from dotmac.ticketing.service.api.query_parameters import (
    refuse_unknown_query_parameters,
)
from dotmac.ticketing.service.api.query_routes import add_query_routes
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    RESOURCE,
    VERSIONED,
    WRITE,
)
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.logging import bind_request_context
from dotmac.ticketing.service.tickets import CommandResult, TicketService
from dotmac.ticketing.service.workflows import WorkflowService

DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024

# An entity tag as the ETag carries it ("5", W/"5" or bare 5), or *. The
# schema states the same pattern the parser applies (``parse_if_match``).
IF_MATCH_PATTERN = r'^[ \t]*(\*|(W/)?"[0-9]{1,12}"|[0-9]{1,12})[ \t]*$'
IfMatch = Annotated[
    str | None,
    Header(
        description='The version you expect, from the ETag ("5"), or *',
        max_length=64,
        pattern=IF_MATCH_PATTERN,
    ),
]
# ``as_of``: what ``parse_as_of`` accepts, said in the schema's terms.
AS_OF_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": "^[0-9]{1,64}$"},
        {"type": "string", "format": "date-time", "maxLength": 64},
    ]
}

# The answers of a route that names a ticket, of a command with a body, and
# of one that honours If-Match too.
_READ = RESOURCE
_COMMAND = {**RESOURCE, **BODY, **WRITE}
_VERSIONED_COMMAND = {**_COMMAND, **VERSIONED}
_VERSIONED_ACTION = {**RESOURCE, **WRITE, **VERSIONED}


#: ``?as_of=``: the per-ticket reads that can be rebuilt from the events
#: take it; the others refuse it as an unknown parameter (422).
AsOf = Annotated[
    str | None,
    Query(
        max_length=64,
        description="A version number or an RFC 3339 time: as it was then, "
        "rebuilt from the ticket's events.",
    ),
    WithJsonSchema(AS_OF_SCHEMA),
]


def create_ticket_router(
    ticket_service: TicketService,
    *,
    get_current_tenant: Callable[..., Any],
    get_current_user: Callable[..., Any],
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES,
    read_model: ReadModel | None = None,
    read_wait_seconds: float = 5.0,
    workflow_service: WorkflowService | None = None,
) -> APIRouter:
    """The ``/tickets`` routes, bound to a service and to caller dependencies.

    ``get_current_tenant`` returns the caller's tenant id; ``get_current_user``
    returns the caller: an object or mapping with ``sub`` (or ``id``) and
    ``roles``. Both are FastAPI dependencies of the host's choosing. With a
    ``read_model``, ``GET /tickets/`` lists and searches the projection;
    with a ``workflow_service``, ``/tickets/{id}/workflow`` shows and drives
    the ticket's workflow.
    """
    router = APIRouter(
        prefix="/tickets",
        tags=["tickets"],
        route_class=ProblemRoute,
        responses={**AUTHENTICATED, **PARAMETERS},
        dependencies=[Depends(refuse_unknown_query_parameters)],
    )

    async def caller(
        request: Request,
        tenant_id: Annotated[str, Depends(get_current_tenant)],
        user: Annotated[Any, Depends(get_current_user)],
    ) -> RequestContext:
        ctx = request_context(request, tenant_id, user)
        # Async, so the bindings reach every later line of this request.
        bind_request_context(
            tenant_id=ctx.tenant_id, ticket_id=request.path_params.get("ticket_id")
        )
        return ctx

    Caller = Annotated[RequestContext, Depends(caller)]
    if read_model is not None:
        add_query_routes(router, read_model, caller, max_wait=read_wait_seconds)

    def respond(
        response: Response, result: CommandResult, ctx: RequestContext
    ) -> TicketRead:
        response.headers["ETag"] = etag(result.ticket.version)
        return ticket_read(
            result.ticket,
            now=ticket_service.now(),
            position=result.position,
            staff=ctx.is_staff,
            hidden=ticket_service.hidden_tickets(ctx, result.ticket),
        )

    if workflow_service is not None:
        # Imported here: that module uses this one's If-Match helpers.
        from dotmac.ticketing.service.api.workflow_routes import add_workflow_routes

        add_workflow_routes(router, workflow_service, caller, respond)

    @router.post(
        "/",
        status_code=status.HTTP_201_CREATED,
        summary="Open a ticket",
        responses={**BODY, **WRITE},
    )
    def create_ticket(
        body: TicketCreate,
        ctx: Caller,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=200,
                description="Retrying with the same key returns the same ticket.",
            ),
        ] = None,
    ) -> TicketRead:
        result = ticket_service.create_ticket(
            ctx, idempotency_key=idempotency_key, **body.model_dump()
        )
        response.headers["Location"] = f"{request.url.path}{result.ticket.id}"
        if result.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return respond(response, result, ctx)

    @router.get("/{ticket_id}", summary="A ticket, now or as it was", responses=_READ)
    def get_ticket(
        ticket_id: UUID, ctx: Caller, response: Response, as_of: AsOf = None
    ) -> TicketRead:
        moment = parse_as_of(as_of)
        ticket = ticket_service.get_ticket(ctx, ticket_id, as_of=moment)
        response.headers["ETag"] = etag(ticket.version)
        # The SLA as it stood then: at the moment asked for, or when the
        # version asked for was written.
        now = ticket_service.seen_at(ticket, moment)
        return ticket_read(
            ticket,
            now=now,
            staff=ctx.is_staff,
            hidden=ticket_service.hidden_tickets(ctx, ticket),
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
    def sla(ticket_id: UUID, ctx: Caller, as_of: AsOf = None) -> TicketSLARead:
        report = ticket_service.sla(ctx, ticket_id, as_of=parse_as_of(as_of))
        return sla_read(report, staff=ctx.is_staff)

    @router.put(
        "/{ticket_id}", summary="Change fields (partial)", responses=_VERSIONED_COMMAND
    )
    def update_ticket(
        ticket_id: UUID,
        body: TicketUpdate,
        ctx: Caller,
        response: Response,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.update_ticket(
            ctx,
            ticket_id,
            expected_version=parse_if_match(if_match),
            **body.model_dump(exclude_unset=True),
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/assign",
        summary="Assign to a person and/or team",
        responses=_VERSIONED_COMMAND,
    )
    def assign(
        ticket_id: UUID,
        body: TicketAssign,
        ctx: Caller,
        response: Response,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.assign(
            ctx,
            ticket_id,
            assignee_id=body.assignee_id,
            team=body.team,
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/unassign",
        summary="Remove the assignee",
        responses=_VERSIONED_ACTION,
    )
    def unassign(
        ticket_id: UUID, ctx: Caller, response: Response, if_match: IfMatch = None
    ) -> TicketRead:
        result = ticket_service.unassign(
            ctx, ticket_id, expected_version=parse_if_match(if_match)
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/status",
        summary="Move between active states",
        responses=_VERSIONED_COMMAND,
    )
    def change_status(
        ticket_id: UUID,
        body: TicketStatusChange,
        ctx: Caller,
        response: Response,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.change_status(
            ctx,
            ticket_id,
            body.status,
            reason=body.reason,
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/escalate",
        summary="Escalate a level",
        responses=_VERSIONED_COMMAND,
    )
    def escalate(
        ticket_id: UUID,
        body: TicketEscalate,
        ctx: Caller,
        response: Response,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.escalate(
            ctx,
            ticket_id,
            reason=body.reason,
            team=body.team,
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

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
        ctx: Caller,
        response: Response,
        body: EscalationDecision | None = None,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.approve_escalation(
            ctx,
            ticket_id,
            comment=body.comment if body else "",
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

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
        ctx: Caller,
        response: Response,
        body: EscalationDecision | None = None,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.reject_escalation(
            ctx,
            ticket_id,
            comment=body.comment if body else "",
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/resolve", summary="Resolve", responses=_VERSIONED_COMMAND
    )
    def resolve(
        ticket_id: UUID,
        body: TicketResolve,
        ctx: Caller,
        response: Response,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.resolve(
            ctx,
            ticket_id,
            resolution=body.resolution,
            resolution_code=body.resolution_code,
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/reopen",
        summary="Reopen a resolved ticket",
        responses=_VERSIONED_COMMAND,
    )
    def reopen(
        ticket_id: UUID,
        ctx: Caller,
        response: Response,
        body: TicketReopen | None = None,
        if_match: IfMatch = None,
    ) -> TicketRead:
        result = ticket_service.reopen(
            ctx,
            ticket_id,
            reason=body.reason if body else "",
            expected_version=parse_if_match(if_match),
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/close",
        summary="Close a resolved ticket",
        responses=_VERSIONED_ACTION,
    )
    def close(
        ticket_id: UUID, ctx: Caller, response: Response, if_match: IfMatch = None
    ) -> TicketRead:
        result = ticket_service.close(
            ctx, ticket_id, expected_version=parse_if_match(if_match)
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/satisfaction",
        summary="Rate a resolved ticket (its customer)",
        responses=_COMMAND,
    )
    def rate_satisfaction(
        ticket_id: UUID, body: SatisfactionRate, ctx: Caller, response: Response
    ) -> TicketRead:
        result = ticket_service.rate_satisfaction(
            ctx, ticket_id, rating=body.rating, comment=body.comment
        )
        return respond(response, result, ctx)

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
    def merge(
        ticket_id: UUID, body: TicketMerge, ctx: Caller, response: Response
    ) -> TicketRead:
        result = ticket_service.merge(
            ctx,
            ticket_id,
            into=body.into,
            confirm_cross_customer=body.confirm_cross_customer,
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/links", summary="Link to another ticket", responses=_COMMAND
    )
    def link(
        ticket_id: UUID, body: TicketLink, ctx: Caller, response: Response
    ) -> TicketRead:
        result = ticket_service.link(
            ctx, ticket_id, other_id=body.ticket_id, relation=body.relation
        )
        return respond(response, result, ctx)

    @router.post(
        "/{ticket_id}/comments",
        status_code=status.HTTP_201_CREATED,
        summary="Add a public reply or an internal note",
        responses=_VERSIONED_COMMAND,
    )
    def add_comment(
        ticket_id: UUID,
        body: CommentCreate,
        ctx: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
    ) -> CommentRead:
        result = ticket_service.add_comment(
            ctx,
            ticket_id,
            body=body.body,
            internal=body.internal,
            solution=body.solution,
            expected_version=parse_if_match(if_match),
        )
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

    @router.get(
        "/{ticket_id}/comments", summary="Comments, oldest first", responses=_READ
    )
    def list_comments(
        ticket_id: UUID, ctx: Caller, as_of: AsOf = None
    ) -> list[CommentRead]:
        comments = ticket_service.comments(ctx, ticket_id, as_of=parse_as_of(as_of))
        return [comment_read(c) for c in comments]

    @router.post(
        "/{ticket_id}/attachments",
        status_code=status.HTTP_201_CREATED,
        summary="Upload a file (multipart/form-data, field 'file')",
        responses=_COMMAND,
    )
    async def add_attachment(
        ticket_id: UUID,
        ctx: Caller,
        response: Response,
        # At least one byte: an empty part (what a form sends for no file,
        # or for null) is refused, not stored as an empty attachment.
        file: Annotated[UploadFile, File(json_schema_extra={"minLength": 1})],
    ) -> AttachmentRead:
        content = await file.read(attachment_max_bytes + 1)
        if len(content) > attachment_max_bytes:
            raise PayloadTooLarge(attachment_max_bytes)
        if not content:
            raise _invalid("body", "file", "a file with at least one byte")
        result, attachment_id = await run_in_threadpool(
            ticket_service.add_attachment,
            ctx,
            ticket_id,
            filename=file.filename or "attachment",
            content_type=file.content_type or "application/octet-stream",
            content=content,
        )
        response.headers["ETag"] = etag(result.ticket.version)
        meta = result.ticket.find_attachment(attachment_id)
        assert meta is not None
        return attachment_read(meta)

    @router.get(
        "/{ticket_id}/attachments",
        summary="The ticket's files, oldest first (metadata; download each by id)",
        responses=_READ,
    )
    def list_attachments(
        ticket_id: UUID, ctx: Caller, as_of: AsOf = None
    ) -> list[AttachmentRead]:
        ticket = ticket_service.get_ticket(ctx, ticket_id, as_of=parse_as_of(as_of))
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
    ) -> Response:
        meta, content = ticket_service.attachment(ctx, ticket_id, attachment_id)
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

    @router.get(
        "/{ticket_id}/history", summary="Every event, oldest first", responses=_READ
    )
    def history(
        ticket_id: UUID, ctx: Caller, as_of: AsOf = None
    ) -> list[HistoryEntryRead]:
        entries = ticket_service.history(ctx, ticket_id, as_of=parse_as_of(as_of))
        return [history_read(e) for e in entries]

    return router


def request_context(request: Request, tenant_id: str, user: Any) -> RequestContext:
    """Build the use-case caller from whatever the host's dependencies gave."""
    request_id = getattr(request.state, "request_id", None) or request.headers.get(
        "x-request-id"
    )
    try:
        return RequestContext.for_user(tenant_id, user, correlation_id=request_id)
    except ValueError as error:
        raise Unauthorized(str(error)) from error


def etag(version: int) -> str:
    return f'"{version}"'


_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_DIGITS = re.compile(r"[0-9]+")


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: "5"`` (or ``5``, ``W/"5"``) → 5; ``*`` or absent → None."""
    if value is None:
        return None
    if _IF_MATCH.fullmatch(value) is None:
        raise _invalid("header", "if-match", 'an entity tag such as "5", or *')
    digits = _DIGITS.search(value)
    return None if digits is None else int(digits.group())


_VERSION = re.compile(r"[0-9]{1,64}")
_MOMENT = TypeAdapter(Moment)


def parse_as_of(value: str | None) -> int | datetime | None:
    """A version number, or an RFC 3339 time with a zone (``AS_OF_SCHEMA``)."""
    if value is None:
        return None
    if _VERSION.fullmatch(value):
        return int(value)
    moment = None
    with suppress(ValidationError):
        moment = _MOMENT.validate_python(value)
    if moment is None:
        raise _invalid(
            "query", "as_of", "a version number or an RFC 3339 time with a zone"
        )
    return moment


def _invalid(where: str, name: str, expected: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": (where, name), "msg": f"expected {expected}", "type": "value_error"}]
    )
