"""HTTP routes of the query side: the ticket list and the dashboard."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Query, Response
from fastapi.exceptions import RequestValidationError

from dotmac.ticketing.projections.dashboard import dashboard
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.projections.tables import TARGET_PREFIX
from dotmac.ticketing.projections.ticket_queries import MAX_LIMIT, list_tickets
from dotmac.ticketing.schemas import (
    DashboardRead,
    TicketCategory,
    TicketPage,
    TicketPriority,
    TicketStatus,
    TicketSummary,
)
from dotmac.ticketing.schemas.queries import (
    Moment,
    PendingEscalation,
    SlaState,
    SlaSummary,
    SlaTargetSummary,
)
from dotmac.ticketing.schemas.ticket_filters import (
    ASSIGNEE_DOC,
    DEFAULT_SORT,
    DUE_BEFORE_DOC,
    ESCALATION_DOC,
    SHORT_TEXT_PATTERN,
    SLA_BREACHED_DOC,
    SLA_STATE_DOC,
    TAGS_FILTER_MAX,
    TEAM_DOC,
    UNASSIGNED_DOC,
    VALUES_MAX,
    SlaStateFilter,
    TicketListFilter,
    TicketSort,
)
from dotmac.ticketing.service.api.deps import Caller, Projection, ReadWait
from dotmac.ticketing.service.api.responses import PROJECTION
from dotmac.ticketing.service.api.routers import tickets_router
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied
from dotmac.ticketing.service.ticket_lists import ticket_filter

# No NUL: PostgreSQL text cannot hold it, so it could never match anyway.
ShortText = Annotated[
    str, Query(min_length=1, max_length=200, pattern=SHORT_TEXT_PATTERN)
]
DEFAULT_DASHBOARD_RANGE = timedelta(days=30)


def read_your_writes(
    response: Response,
    read_model: Projection,
    max_wait: ReadWait,
    min_position: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    x_min_position: Annotated[int | None, Header(ge=0, le=2**62)] = None,
) -> int | None:
    """Wait (bounded) until the read model has a given position.

    Clients pass the ``position`` a command returned as ``min_position`` (or
    the ``X-Min-Position`` header) to read their own writes.
    """
    wanted = min_position if min_position is not None else x_min_position
    if wanted is not None and not read_model.wait_for(wanted, max_wait):
        response.headers["X-Projection-Stale"] = "true"
    response.headers["X-Projection-Position"] = str(read_model.position())
    return wanted


Fresh = Annotated[int | None, Depends(read_your_writes)]

router = tickets_router()


def list_filters(
    status: Annotated[list[TicketStatus], Query()] = [],  # noqa: B006
    priority: Annotated[list[TicketPriority], Query()] = [],  # noqa: B006
    category: Annotated[list[TicketCategory], Query()] = [],  # noqa: B006
    assigned_team: Annotated[
        list[ShortText], Query(max_length=VALUES_MAX, description=TEAM_DOC)
    ] = [],  # noqa: B006
    assignee_id: Annotated[
        list[ShortText], Query(max_length=VALUES_MAX, description=ASSIGNEE_DOC)
    ] = [],  # noqa: B006
    customer_id: Annotated[list[ShortText], Query(max_length=VALUES_MAX)] = [],  # noqa: B006
    tags: Annotated[list[ShortText], Query(max_length=TAGS_FILTER_MAX)] = [],  # noqa: B006
    tags_match: Literal["any", "all"] = "any",
    sla_state: Annotated[list[SlaStateFilter], Query(description=SLA_STATE_DOC)] = [],  # noqa: B006
    sla_breached: Annotated[bool | None, Query(description=SLA_BREACHED_DOC)] = None,
    escalation_pending: Annotated[
        bool | None, Query(description=ESCALATION_DOC)
    ] = None,
    unassigned: Annotated[bool | None, Query(description=UNASSIGNED_DOC)] = None,
    due_before: Annotated[Moment | None, Query(description=DUE_BEFORE_DOC)] = None,
    created_from: Moment | None = None,
    created_to: Moment | None = None,
    updated_from: Moment | None = None,
    updated_to: Moment | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=500, pattern=SHORT_TEXT_PATTERN)
    ] = None,
) -> TicketListFilter:
    """The list's filters from the query string: the model a saved view
    stores (``schemas.ticket_filters``), with the same constraints."""
    return TicketListFilter(
        status=status,
        priority=priority,
        category=category,
        assigned_team=assigned_team,
        assignee_id=assignee_id,
        customer_id=customer_id,
        tags=tags,
        tags_match=tags_match,
        sla_state=sla_state,
        sla_breached=sla_breached,
        escalation_pending=escalation_pending,
        unassigned=unassigned,
        due_before=due_before,
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_from,
        updated_to=updated_to,
        q=q,
    )


ListFilters = Annotated[TicketListFilter, Depends(list_filters)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.get("/", summary="List and search tickets", responses=PROJECTION)
def list_all(
    ctx: Caller,
    _fresh: Fresh,
    read_model: Projection,
    filters: ListFilters,
    sort: TicketSort = DEFAULT_SORT,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TicketPage:
    return ticket_page(read_model, ctx, filters, sort=sort, limit=limit, cursor=cursor)


def ticket_page(
    read_model: ReadModel,
    ctx: RequestContext,
    filters: TicketListFilter,
    *,
    sort: str,
    limit: int,
    cursor: str | None,
) -> TicketPage:
    """One page of the list ``filters`` and ``sort`` make, as ``ctx`` sees it."""
    where = ticket_filter(filters, ctx)
    page = list_tickets(read_model, where, sort=sort, limit=limit, cursor=cursor)
    return TicketPage(
        items=[summary(row, staff=ctx.is_staff) for row in page.items],
        next=page.next,
    )


@router.get(
    "/analytics/dashboard",
    summary="Analytics dashboard (staff)",
    responses=PROJECTION,
)
def analytics_dashboard(
    ctx: Caller,
    _fresh: Fresh,
    read_model: Projection,
    start: Annotated[
        Moment | None,
        Query(alias="from", description="Inclusive; default 30 days ago."),
    ] = None,
    end: Annotated[
        Moment | None,
        Query(alias="to", description="Exclusive; default now."),
    ] = None,
    team: ShortText | None = None,
) -> DashboardRead:
    if not ctx.is_staff:
        raise PermissionDenied("the dashboard is for staff")
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_DASHBOARD_RANGE
    if start >= end:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "from"),
                    "msg": "from must be before to",
                    "type": "value_error",
                }
            ]
        )
    try:
        figures = dashboard(
            read_model, tenant_id=ctx.tenant_id, start=start, end=end, team=team
        )
    except ValueError as error:  # a range the dashboard refuses (too long)
        raise RequestValidationError(
            [{"loc": ("query", "from"), "msg": str(error), "type": "value_error"}]
        ) from None
    return figures


def summary(row: dict[str, Any], *, staff: bool) -> TicketSummary:
    return TicketSummary(
        id=row["ticket_id"],
        number=row["number"],
        version=row["version"],
        title=row["title"],
        status=row["status"],
        priority=row["priority"],
        category=row["category"],
        channel=row["channel"],
        customer_id=row["customer_id"],
        assigned_team=row["assigned_team"],
        assignee_id=row["assignee_id"],
        tags=row["tags"],
        custom_fields=row["custom_fields"],
        escalation_level=row["escalation_level"],
        pending_escalation=(
            None
            if row["escalation_pending_level"] is None or not staff
            else PendingEscalation(
                level=row["escalation_pending_level"],
                team=row["escalation_pending_team"],
                requested_at=row["escalation_requested_at"],
            )
        ),
        reopen_count=row["reopen_count"],
        comment_count=row["comment_count" if staff else "public_comment_count"],
        attachment_count=row["attachment_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        first_response_at=row["first_response_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        sla=sla_summary(row, staff=staff),
    )


def sla_summary(row: dict[str, Any], *, staff: bool) -> SlaSummary:
    """The list's SLA summary from the ticket row's clock columns.

    Customers get what the single-ticket read shows them (``schemas.sla``):
    states and due, pause and stop times; a warning reads as running, and
    the staff-only fields are null.
    """

    def shown(state: SlaState) -> SlaState:
        return "running" if state == "warning" and not staff else state

    def staff_only(value: Any) -> Any:
        return value if staff else None

    targets = {
        target: SlaTargetSummary(
            state=shown(row[f"{prefix}_state"]),
            due_at=row[f"{prefix}_due_at"],
            warning_at=staff_only(row[f"{prefix}_warning_at"]),
            paused_since=row[f"{prefix}_paused_at"],
            stopped_at=row[f"{prefix}_stopped_at"],
            breached_at=staff_only(row[f"{prefix}_breached_at"]),
            business_minutes=staff_only(row[f"{prefix}_business_minutes"]),
        )
        for target, prefix in TARGET_PREFIX.items()
        if row[f"{prefix}_state"] is not None
    }
    return SlaSummary(
        state=shown(row["sla_state"]),
        next_due_at=row["sla_next_due_at"],
        breached=row["sla_breached"],
        response_due_at=row["sla_response_due_at"],
        resolution_due_at=row["sla_resolution_due_at"],
        next_reply_due_at=row["sla_next_reply_due_at"],
        policy=staff_only(row["sla_policy"]),
        settings_version=staff_only(row["sla_settings_version"]),
        targets=targets,  # type: ignore[arg-type]
    )
