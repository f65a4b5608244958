"""Response models of the query side: ticket lists and projection status."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.enums import TicketCategory, TicketChannel, TicketPriority, TicketStatus


class SlaSummary(BaseModel):
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    state: str = Field(description="ok, warning or breached")


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
