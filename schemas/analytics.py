"""Response model of the analytics dashboard.

Mirrors ``projections.dashboard.Dashboard`` field for field, so the
endpoint answers ``DashboardRead.model_validate(dashboard(...))``. The
definitions of the figures are in that module's docstring.
"""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import TicketCategory, TicketPriority, TicketStatus


class _Read(BaseModel):
    # Built from the dashboard's dataclasses by attribute.
    model_config = ConfigDict(from_attributes=True)


class TeamCountRead(_Read):
    team: str | None = Field(description="Team name; null for no team.")
    count: int


class DayCountRead(_Read):
    day: date = Field(description="UTC day.")
    created: int
    resolved: int


class DurationStatsRead(_Read):
    count: int = Field(description="Tickets that have this duration.")
    mean: float | None = Field(description="Minutes; null when count is 0.")
    median: float | None
    p90: float | None


class SlaComplianceRead(_Read):
    with_target: int = Field(description="Tickets in range with a due time.")
    met: int
    breached: int = Field(description="Done late, or overdue and not done.")
    pending: int = Field(description="Not done, not yet due.")
    pct: float | None = Field(
        description="met / (met + breached) × 100; null when none is decided."
    )


class ReopenRateRead(_Read):
    reopened: int = Field(description="Tickets reopened at least once.")
    resolved: int = Field(description="Tickets resolved at least once.")
    pct: float | None = Field(description="reopened / resolved × 100.")


class EscalationsRead(_Read):
    total: int = Field(description="Escalations made in the range.")
    by_team: list[TeamCountRead] = Field(description="By the team escalated to.")


class AgentRowRead(_Read):
    assignee_id: str
    assigned: int
    resolved: int
    median_resolution_minutes: float | None


class DashboardRead(_Read):
    """A tenant's figures for tickets created in ``[start, end)``."""

    tenant_id: str
    start: datetime
    end: datetime
    team: str | None = Field(description="The assigned_team filter, if any.")
    created: int = Field(description="Tickets created in the range.")
    by_status: dict[TicketStatus, int]
    by_priority: dict[TicketPriority, int]
    by_category: dict[TicketCategory, int]
    by_team: list[TeamCountRead] = Field(description="By current assigned team.")
    per_day: list[DayCountRead] = Field(
        description="Every UTC day the range touches, created and resolved."
    )
    per_day_source: Literal["daily_metrics", "tickets"] = Field(
        description=(
            "daily_metrics (no team filter): resolved counts resolution events."
            " tickets (team filter): resolved counts tickets by latest resolution."
        )
    )
    open_backlog: int = Field(description="Active tickets now, whenever created.")
    first_response_minutes: DurationStatsRead
    resolution_minutes: DurationStatsRead
    sla_response: SlaComplianceRead
    sla_resolution: SlaComplianceRead
    breaches: int = Field(description="Tickets whose SLA state is breached.")
    escalations: EscalationsRead
    reopen_rate: ReopenRateRead
    agents: list[AgentRowRead] = Field(description="Per current assignee.")
