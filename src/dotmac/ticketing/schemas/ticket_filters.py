"""The filters of a ticket list: what ``GET /tickets/`` reads from its query
string and a saved view stores, one validated model for both."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dotmac.ticketing.schemas.enums import TicketCategory, TicketPriority, TicketStatus
from dotmac.ticketing.schemas.queries import Moment, SlaState

#: The list's sort orders (``projections.ticket_queries.SORTS`` implements
#: each; a leading ``-`` is descending).
TicketSort = Literal[
    "created", "-created", "updated", "-updated", "priority", "-priority", "due", "-due"
]
SORT_ORDERS: tuple[str, ...] = get_args(TicketSort)
DEFAULT_SORT: TicketSort = "-created"

# ``ok`` (neither warning nor breached) is the value of earlier versions.
SlaStateFilter = SlaState | Literal["ok"]
# No NUL: PostgreSQL text cannot hold it, so it could never match anyway.
SHORT_TEXT_PATTERN = r"^[^\x00]+$"
ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=SHORT_TEXT_PATTERN)
]
SearchText = Annotated[
    str, StringConstraints(min_length=1, max_length=500, pattern=SHORT_TEXT_PATTERN)
]
#: Values one filter may list (a team, agent or customer each).
VALUES_MAX = 100
TAGS_FILTER_MAX = 30

TEAM_DOC = "A team, or `none`: no team."
ASSIGNEE_DOC = "An agent, `me` (the caller) or `none` (unassigned)."
SLA_STATE_DOC = "Running, paused, warning, breached, met, ..."
SLA_BREACHED_DOC = "A current SLA clock breached."
ESCALATION_DOC = "An escalation awaits approval."
UNASSIGNED_DOC = "true: nobody is assigned; false: someone is."
DUE_BEFORE_DOC = "A running SLA clock is due before this time."


class TicketListFilter(BaseModel):
    """Which tickets a list shows; every field narrows it (all must match).

    A list of values matches any of them. The names are the query
    parameters of ``GET /api/v1/tickets/``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: list[TicketStatus] = []
    priority: list[TicketPriority] = []
    category: list[TicketCategory] = []
    assigned_team: Annotated[
        list[ShortText], Field(max_length=VALUES_MAX, description=TEAM_DOC)
    ] = []
    assignee_id: Annotated[
        list[ShortText], Field(max_length=VALUES_MAX, description=ASSIGNEE_DOC)
    ] = []
    customer_id: Annotated[list[ShortText], Field(max_length=VALUES_MAX)] = []
    tags: Annotated[list[ShortText], Field(max_length=TAGS_FILTER_MAX)] = []
    tags_match: Literal["any", "all"] = "any"
    sla_state: Annotated[list[SlaStateFilter], Field(description=SLA_STATE_DOC)] = []
    sla_breached: Annotated[bool | None, Field(description=SLA_BREACHED_DOC)] = None
    escalation_pending: Annotated[bool | None, Field(description=ESCALATION_DOC)] = None
    unassigned: Annotated[bool | None, Field(description=UNASSIGNED_DOC)] = None
    due_before: Annotated[Moment | None, Field(description=DUE_BEFORE_DOC)] = None
    created_from: Moment | None = None
    created_to: Moment | None = None
    updated_from: Moment | None = None
    updated_to: Moment | None = None
    q: Annotated[SearchText | None, Field(description="Full-text search.")] = None
