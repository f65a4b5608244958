"""HTTP routes of bulk actions: ``POST /tickets/bulk`` starts a job,
``GET /jobs/{job_id}`` shows its progress and each ticket's outcome."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from dotmac.ticketing.domain.limits import BULK_TICKETS_MAX
from dotmac.ticketing.schemas.bulk import (
    BulkCounts,
    BulkItemRead,
    BulkJobCreate,
    BulkJobRead,
)
from dotmac.ticketing.service.api.deps import Bulk, Caller
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.query_parameters import (
    refuse_unknown_query_parameters,
)
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    PROJECTION,
    RESOURCE,
)
from dotmac.ticketing.service.api.routers import tickets_router
from dotmac.ticketing.service.bulk import BulkJobView

router = tickets_router()

jobs = APIRouter(
    prefix="/jobs",
    tags=["jobs"],
    route_class=ProblemRoute,
    responses={**AUTHENTICATED, **PARAMETERS},
    dependencies=[Depends(refuse_unknown_query_parameters)],
)


@router.post(
    "/bulk",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Apply one action to many tickets (staff): starts a job",
    description=(
        "The tickets are `ids` (at most 10,000) or a `filter` (the filters"
        " of `GET /tickets/`), resolved now from the read model and kept"
        " with the job. The `action` is one ticket command with the body of"
        " its own route. Answers the job at once (`Location`: `GET"
        " /jobs/{id}`); each ticket's outcome follows there. A ticket of"
        " another tenant, or none, is refused as not found and never"
        " changed. The same `Idempotency-Key` answers the same job."
    ),
    responses={**BODY, **PROJECTION},
)
def start_bulk_job(
    body: BulkJobCreate,
    ctx: Caller,
    bulk: Bulk,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Retrying with the same key returns the same job.",
        ),
    ] = None,
) -> BulkJobRead:
    job, replayed = bulk.start(ctx, body, idempotency_key=idempotency_key)
    response.headers["Location"] = str(
        request.url_for("get_job", job_id=str(job.job_id))
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return job_read(bulk.get(ctx, job.job_id, limit=0))


@jobs.get("/{job_id}", summary="A bulk job: progress and outcomes", responses=RESOURCE)
def get_job(
    job_id: UUID,
    ctx: Caller,
    bulk: Bulk,
    outcome: Annotated[
        Literal["pending", "done", "conflict_retried", "refused"] | None,
        Query(description="Only the items with this outcome."),
    ] = None,
    after: Annotated[
        int,
        Query(ge=0, le=BULK_TICKETS_MAX, description="Items after this position."),
    ] = 0,
    limit: Annotated[int, Query(ge=0, le=BULK_TICKETS_MAX)] = 1000,
) -> BulkJobRead:
    return job_read(bulk.get(ctx, job_id, outcome=outcome, after=after, limit=limit))


async def _only_post(request: Request) -> Response:
    raise StarletteHTTPException(405)


# Without this, GET and PUT /tickets/bulk would reach the routes of
# /tickets/{ticket_id} and be refused as a malformed id (422), not 405. A
# plain route: neither documented nor an API route (problems.allowed_methods).
router.add_route(
    # A plain route gets no router prefix of its own.
    f"{router.prefix}/bulk",
    _only_post,
    methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
    include_in_schema=False,
)


def job_read(view: BulkJobView) -> BulkJobRead:
    job = view.job
    return BulkJobRead(
        id=job.job_id,
        state=job.state,  # type: ignore[arg-type]
        action=job.action,
        selection=job.selection,
        total=job.total,
        counts=BulkCounts(**view.counts),
        created_by=job.created_by,
        created_at=job.created_at,
        finished_at=job.finished_at,
        items=[BulkItemRead(**item) for item in view.items],
        next_after=view.next_after,
    )
