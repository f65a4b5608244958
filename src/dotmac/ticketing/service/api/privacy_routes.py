"""Privacy: erase and export a customer's data; the record of requests.

Admins only. The customer is named by their id in the tenant (the
``customer_id`` of their tickets); another tenant's customer does not exist
here (404).
"""

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic_core import to_json

from dotmac.ticketing.schemas.privacy import ErasureReceipt, PrivacyRequestRead
from dotmac.ticketing.schemas.queries import Moment
from dotmac.ticketing.service.api.deps import Caller, Core
from dotmac.ticketing.service.api.presenters import attachment_read, ticket_read
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import AUTHENTICATED, PARAMETERS
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.privacy import SubjectData

router = APIRouter(
    prefix="/privacy",
    tags=["privacy"],
    route_class=ProblemRoute,
    responses=AUTHENTICATED,
)

_API = "/api/v1"
SubjectId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
_SUBJECT = {
    **PARAMETERS,
    403: {"description": "Not an admin."},
    404: {"description": "The tenant holds nothing about this customer."},
}


@router.post(
    "/subjects/{customer_id}/erase",
    summary="Erase everything personal about a customer",
    description="Destroys the keys of the customer's personal data, so every"
    ' past event, snapshot and file of their tickets reads `"[erased]"` in'
    " its personal fields; records a SubjectErased event on each ticket"
    " (published, so subscribers forget too); clears notifications, deliveries,"
    " inbound mail and bounces; and sends nothing to the address again. The"
    " facts stay: counts, times, states and SLA figures are unchanged."
    " Idempotent: asked again, it erases what was added since, else nothing"
    " (`already_erased`).",
    responses=_SUBJECT,
)
async def erase_subject(
    ctx: Caller, core: Core, customer_id: SubjectId
) -> ErasureReceipt:
    receipt = await run_in_threadpool(core.privacy.erase_subject, ctx, customer_id)
    return ErasureReceipt.model_validate(receipt)


@router.get(
    "/subjects/{customer_id}/export",
    summary="Everything held about a customer, as one JSON document (streamed)",
    description="`subject`, `exported_at`, `tickets` (each: `ticket` as"
    " GET /tickets/{id} shows it to staff, its whole `history`, and"
    " `attachments` with links to their bytes), `in_app_notifications` and"
    " `deliveries` (what was sent to the customer, by channel). The export is"
    " recorded at GET /privacy/requests.",
    responses={
        **_SUBJECT,
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
    },
    response_class=StreamingResponse,
)
async def export_subject(
    ctx: Caller, core: Core, customer_id: SubjectId
) -> StreamingResponse:
    data = await run_in_threadpool(core.privacy.export_subject, ctx, customer_id)
    return StreamingResponse(
        _export_document(core, ctx, customer_id, data),
        media_type="application/json",
        headers={"Content-Disposition": _attachment(f"export-{customer_id}.json")},
    )


@router.get(
    "/requests",
    summary="Every erasure and export of the tenant, newest first",
    responses={**PARAMETERS, 403: {"description": "Not an admin."}},
)
def list_requests(
    ctx: Caller,
    core: Core,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        Moment | None, Query(description="Only requests made before this moment.")
    ] = None,
) -> list[PrivacyRequestRead]:
    rows = core.privacy.requests(ctx, limit=limit, before=before)
    return [PrivacyRequestRead.model_validate(row) for row in rows]


def _export_document(
    core: Ticketing, ctx: RequestContext, customer_id: str, data: SubjectData
) -> Iterator[bytes]:
    """The export, a ticket at a time (a customer may have thousands)."""
    now = core.tickets.now()
    head = {"subject": {"tenant_id": ctx.tenant_id, "customer_id": customer_id}}
    yield to_json(head)[:-1] + b',"exported_at":' + to_json(now) + b',"tickets":['
    for index, ticket in enumerate(data.tickets):
        entry = {
            "ticket": ticket_read(
                ticket, now=now, bouncing=core.tickets.customer_email_bouncing(ticket)
            ).model_dump(mode="json"),
            "history": [
                e.model_dump(mode="json") for e in core.tickets.history(ctx, ticket.id)
            ],
            "attachments": [
                {
                    **attachment_read(a).model_dump(mode="json"),
                    "url": f"{_API}/tickets/{ticket.id}/attachments/{a['id']}",
                }
                for a in ticket.attachments
            ],
        }
        yield (b"," if index else b"") + to_json(entry)
    yield b'],"in_app_notifications":' + to_json(data.in_app)
    yield b',"deliveries":' + to_json(data.deliveries) + b"}"


def _attachment(filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return f'attachment; filename="{safe[:100]}"'
