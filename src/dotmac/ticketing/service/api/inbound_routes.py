"""Inbound e-mail: the raw-message endpoint, dead letters and bounces.

``POST /inbound/email`` is for mail providers' inbound webhooks and MTAs
(role ``service``, or an admin): the body is the message itself
(``message/rfc822``). The mailboxes a tenant configures are read by the
``mail-in`` worker instead (``consumers.mail_in``).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dotmac.ticketing.schemas.inbound_mail import (
    BounceRead,
    DeadLetterRead,
    InboundReceipt,
)
from dotmac.ticketing.service.api.deps import Admin, Core, User, request_context
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import AUTHENTICATED, PARAMETERS
from dotmac.ticketing.service.auth import Role
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied
from dotmac.ticketing.store import inbound_mail as rows

router = APIRouter(
    prefix="/inbound",
    tags=["inbound e-mail"],
    route_class=ProblemRoute,
    responses=AUTHENTICATED,
)

RFC822 = "message/rfc822"


def _mail_sender(request: Request, user: User) -> RequestContext:
    if not user.has_any(Role.SERVICE, Role.ADMIN):
        raise PermissionDenied("inbound e-mail is posted by services and admins")
    return request_context(request, user.tenant_id, user)


MailSender = Annotated[RequestContext, Depends(_mail_sender)]


@router.post(
    "/email",
    status_code=202,
    summary="Take one e-mail message (message/rfc822) for the tenant",
    description="The raw message, as received, in the body with"
    f" `Content-Type: {RFC822}`. It becomes a ticket, a comment on the ticket"
    " it answers, or nothing (machine mail), at most once: the same message"
    " again is answered as before with `replayed: true`. A message that"
    " cannot be read is kept as a dead letter (202, outcome `dead-letter`).",
    responses={
        **PARAMETERS,
        415: {"description": f"The body is not {RFC822}."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {RFC822: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_email(request: Request, ctx: MailSender, core: Core) -> InboundReceipt:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != RFC822:
        raise HTTPException(
            415, f"expected Content-Type {RFC822}, got {media or 'none'}"
        )
    raw = await request.body()
    receipt = await run_in_threadpool(
        core.inbound.receive, ctx.tenant_id, raw, source="endpoint"
    )
    return InboundReceipt(**receipt.__dict__)


@router.get(
    "/dead-letters",
    summary="Messages that could not become a ticket or comment, newest first",
    responses=PARAMETERS,
)
def dead_letters(
    admin: Admin,
    core: Core,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeadLetterRead]:
    with core.app.transaction() as cur:
        found = rows.dead_letters(cur, admin.tenant_id, limit=limit)
    return [DeadLetterRead(**row) for row in found]


@router.get(
    "/dead-letters/{message_key}/raw",
    summary="A dead letter's bytes, as received",
    responses={**PARAMETERS, 404: {"description": "No such dead letter."}},
    response_class=Response,
)
def dead_letter_raw(
    admin: Admin,
    core: Core,
    message_key: Annotated[
        str, Path(max_length=80, pattern=r"^(mid|sha256):[0-9a-f]{1,64}$")
    ],
) -> Response:
    with core.app.transaction() as cur:
        raw = rows.dead_letter_raw(cur, admin.tenant_id, message_key)
    if raw is None:
        raise HTTPException(404, f"no dead letter {message_key}")
    return Response(raw, media_type=RFC822)


@router.get(
    "/bounces",
    summary="Addresses whose mail bounced (no e-mail goes to them)",
    responses=PARAMETERS,
)
def list_bounces(
    admin: Admin, core: Core, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[BounceRead]:
    with core.app.transaction() as cur:
        found = rows.bounces(cur, admin.tenant_id, limit=limit)
    return [BounceRead(**row) for row in found]


@router.delete(
    "/bounces/{address}",
    status_code=204,
    summary="Mail the address again",
    responses={**PARAMETERS, 404: {"description": "The address does not bounce."}},
)
def clear_bounce(
    admin: Admin,
    core: Core,
    address: Annotated[str, Path(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")],
) -> None:
    with core.app.transaction() as cur:
        cleared = rows.clear_bounce(cur, admin.tenant_id, address.strip().lower())
    if not cleared:
        raise HTTPException(404, f"{address} does not bounce")
