"""Time entries: the time agents spend on a ticket (staff only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dotmac.ticketing.domain.limits import NAME_MAX, REASON_MAX, TIME_ENTRY_MINUTES_MAX
from dotmac.ticketing.schemas.enums import TimeEntryType


class TimeEntryCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"minutes": 25, "billable": True, "type": "support", "note": "Call"}
            ]
        },
    )

    minutes: int = Field(ge=1, le=TIME_ENTRY_MINUTES_MAX)
    billable: bool = True
    type: TimeEntryType = Field(
        default=TimeEntryType.SUPPORT, description="What the time went on."
    )
    note: Annotated[
        str, StringConstraints(max_length=REASON_MAX, pattern=r"^[^\x00]*$")
    ] = ""
    agent_id: (
        Annotated[
            str,
            StringConstraints(
                min_length=1,
                max_length=NAME_MAX,
                pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Whose time: default the caller; another agent's needs a"
        " supervisor or admin.",
    )


class TimeEntryRead(BaseModel):
    id: str
    agent_id: str
    minutes: int
    billable: bool
    type: TimeEntryType
    note: str
    logged_by: str
    logged_at: datetime
