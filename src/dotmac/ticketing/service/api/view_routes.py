"""HTTP routes of saved views: named ticket lists, their counts and pages."""

from uuid import UUID

from fastapi import APIRouter, Depends, Response, status

from dotmac.ticketing.schemas import TicketPage
from dotmac.ticketing.schemas.views import ViewCreate, ViewRead
from dotmac.ticketing.service.api.deps import Caller, Projection, Views
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.query_parameters import (
    refuse_unknown_query_parameters,
)
from dotmac.ticketing.service.api.query_routes import (
    Cursor,
    Fresh,
    Limit,
    ticket_page,
)
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    PROJECTION,
    RESOURCE,
)
from dotmac.ticketing.service.views import SavedView

router = APIRouter(
    prefix="/views",
    tags=["views"],
    route_class=ProblemRoute,
    responses={**AUTHENTICATED, **PARAMETERS},
    dependencies=[Depends(refuse_unknown_query_parameters)],
)


def _read(view: SavedView, count: int | None) -> ViewRead:
    return ViewRead(
        id=view.id,
        name=view.name,
        filters=view.filters,
        sort=view.sort,  # type: ignore[arg-type]
        shared=view.shared,  # type: ignore[arg-type]
        team=view.team,
        owner_id=view.owner_id,
        created_at=view.created_at,
        updated_at=view.updated_at,
        count=count,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Save a view (staff)",
    responses=BODY,
)
def create_view(
    body: ViewCreate, ctx: Caller, views: Views, response: Response
) -> ViewRead:
    # Not counted: saving never waits on (or fails with) the read model.
    view = views.create(ctx, body)
    response.headers["Location"] = str(view.id)
    return _read(view, None)


@router.get(
    "", summary="The views the caller sees, with their counts", responses=PROJECTION
)
def list_views(ctx: Caller, _fresh: Fresh, views: Views) -> list[ViewRead]:
    visible = views.visible(ctx)
    counts = views.counts(ctx, [view.filters for view in visible])
    return [_read(view, count) for view, count in zip(visible, counts, strict=True)]


@router.get(
    "/{view_id}", summary="A view, with its count", responses={**RESOURCE, **PROJECTION}
)
def get_view(view_id: UUID, ctx: Caller, _fresh: Fresh, views: Views) -> ViewRead:
    view = views.get(ctx, view_id)
    (count,) = views.counts(ctx, [view.filters])
    return _read(view, count)


@router.put(
    "/{view_id}",
    summary="Replace a view (its owner or an admin)",
    responses={**RESOURCE, **BODY},
)
def replace_view(
    view_id: UUID, body: ViewCreate, ctx: Caller, views: Views
) -> ViewRead:
    return _read(views.replace(ctx, view_id, body), None)


@router.delete(
    "/{view_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a view (its owner or an admin)",
    responses=RESOURCE,
)
def delete_view(view_id: UUID, ctx: Caller, views: Views) -> Response:
    views.delete(ctx, view_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{view_id}/tickets",
    summary="The view's tickets, a page at a time (the list's cursors)",
    responses={**RESOURCE, **PROJECTION},
)
def view_tickets(
    view_id: UUID,
    ctx: Caller,
    _fresh: Fresh,
    views: Views,
    read_model: Projection,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TicketPage:
    view = views.get(ctx, view_id)
    return ticket_page(
        read_model, ctx, view.filters, sort=view.sort, limit=limit, cursor=cursor
    )
