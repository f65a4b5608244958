"""Saved views: a named ticket list (filters and sort), personal or shared."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dotmac.ticketing.domain.limits import NAME_MAX, TEAM_MAX
from dotmac.ticketing.schemas.ticket_filters import (
    DEFAULT_SORT,
    TicketListFilter,
    TicketSort,
)

#: personal: its owner's only; team: the team's members (the tenant
#: settings' ``teams[].agents``) and admins; tenant: all the tenant's staff.
ViewSharing = Literal["personal", "team", "tenant"]
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"


class ViewCreate(BaseModel):
    """A saved view: the list's filters and sort under a name."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "My open tickets",
                    "filters": {
                        "status": ["open", "in_progress"],
                        "assignee_id": ["me"],
                    },
                    "sort": "-priority",
                },
                {
                    "name": "Network: breached",
                    "filters": {"assigned_team": ["network"], "sla_breached": True},
                    "shared": "team",
                    "team": "network",
                },
            ]
        },
    )

    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=NAME_MAX, pattern=NOT_BLANK
        ),
    ]
    filters: TicketListFilter = Field(
        default_factory=TicketListFilter,
        description="The filters of GET /tickets/, by their parameter names.",
    )
    sort: TicketSort = DEFAULT_SORT
    shared: ViewSharing = Field(
        default="personal",
        description=(
            "personal: yours only; team: the members of `team` and admins;"
            " tenant: all the tenant's staff (supervisors and admins share so)."
        ),
    )
    team: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True,
                min_length=1,
                max_length=TEAM_MAX,
                pattern=NOT_BLANK,
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="The team a `team` view is for (one of the tenant's teams).",
    )


class ViewRead(BaseModel):
    id: UUID
    name: str
    filters: TicketListFilter
    sort: TicketSort
    shared: ViewSharing
    team: str | None
    owner_id: str
    created_at: datetime
    updated_at: datetime
    count: int | None = Field(
        description="Tickets the view matches now (the read model); null in the"
        " answer of a save (which never waits on the read model) and while the"
        " read model is first being built."
    )
