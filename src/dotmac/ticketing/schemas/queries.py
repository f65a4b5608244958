"""Response models of the query side: ticket lists and projection status."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from dotmac.ticketing.schemas.enums import (
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)

# RFC 3339, the ``date-time`` of the schema: a full date, T, a time, a zone.
# Without this check pydantic also reads "0.5" as seconds since 1970.
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt].+")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime) or (
        isinstance(value, str) and _RFC3339.fullmatch(value)
    ):
        return value
    raise ValueError("expected an RFC 3339 time with a zone: 2026-01-31T12:00:00Z")


# A moment in a query: an RFC 3339 date-time with a zone, nothing else.
Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]

SlaState = Literal["running", "paused", "warning", "breached", "met", "stopped", "none"]
SlaTarget = Literal["first_response", "resolution", "next_reply"]

# Customers see states and times (a warning reads as running), as on the
# ticket itself (``schemas.sla``).
STAFF_ONLY = "Staff only: null for customers."


class SlaTargetSummary(BaseModel):
    """One SLA target's current clock (a reopen or a new reply restarts it)."""

    state: SlaState = Field(
        description=(
            "running, paused, warning (the timers recorded the warning point;"
            " customers see running), breached (recorded by the timers, or"
            " stopped late), met, or stopped (ended without its goal)."
        )
    )
    due_at: datetime | None = Field(description="Null while paused.")
    warning_at: datetime | None = Field(description=STAFF_ONLY)
    paused_since: datetime | None
    stopped_at: datetime | None
    breached_at: datetime | None = Field(
        description="When the breach was recorded. " + STAFF_ONLY
    )
    business_minutes: float | None = Field(
        description="Business minutes the clock ran, once stopped. " + STAFF_ONLY
    )


class SlaSummary(BaseModel):
    state: SlaState = Field(
        description=(
            "The ticket's SLA state: the worst of its running clocks (breached,"
            " warning, running, paused); with none running, the worst outcome"
            " (breached, met, stopped); none without any SLA clock. Customers"
            " see warning as running."
        )
    )
    next_due_at: datetime | None = Field(
        description="The earliest due time of a running clock (the `due` sort)."
    )
    breached: bool = Field(description="A current clock of the ticket breached.")
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    next_reply_due_at: datetime | None
    policy: str | None = Field(
        description="The SLA policy measured against. " + STAFF_ONLY
    )
    settings_version: int | None = Field(
        description="The tenant settings version the policy was taken from. "
        + STAFF_ONLY
    )
    targets: dict[SlaTarget, SlaTargetSummary] = Field(
        description="The targets whose clock started."
    )


class PendingEscalation(BaseModel):
    """An escalation a rule asked for, awaiting a supervisor's approval."""

    level: int
    team: str
    requested_at: datetime


class TicketSummary(BaseModel):
    """A ticket as lists show it (from the read model)."""

    id: UUID
    number: int
    version: int
    title: str
    status: TicketStatus
    priority: TicketPriority
    category: TicketCategory
    channel: TicketChannel
    customer_id: str
    assigned_team: str | None
    assignee_id: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    escalation_level: int
    pending_escalation: PendingEscalation | None = Field(
        description="Staff only: null for customers."
    )
    reopen_count: int
    comment_count: int
    attachment_count: int
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    sla: SlaSummary


class TicketPage(BaseModel):
    items: list[TicketSummary]
    next: str | None = Field(
        description="Cursor of the next page (pass as `cursor`); null at the end."
    )


class ProjectionStatusRead(BaseModel):
    name: str
    code_version: int
    active_schema: str | None
    active_version: int | None
    position: int
    head: int
    lag: int
    rebuilding_schema: str | None
    rebuild_position: int | None
