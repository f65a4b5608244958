"""Response model of the analytics dashboard.

Mirrors ``projections.dashboard.Dashboard`` field for field, so the
endpoint answers ``DashboardRead.model_validate(dashboard(...))``. The
definitions of the figures are in that module's docstring.
"""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dotmac.ticketing.schemas.enums import TicketCategory, TicketPriority, TicketStatus


class _Read(BaseModel):
    # The dashboard query (projections/dashboard.py) builds these directly.
    model_config = ConfigDict(frozen=True)


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
    """One SLA target's clocks that stopped in the range."""

    met: int = Field(description="Goal reached by the due time.")
    breached: int = Field(description="Goal reached late, or stopped after a breach.")
    stopped: int = Field(
        description="Ended without the goal (resolved unanswered, merged away)."
    )
    pct: float | None = Field(
        description="met / (met + breached) × 100; null when none is decided."
    )


class LevelCountRead(_Read):
    level: int
    count: int


class ReopenRateRead(_Read):
    reopened: int = Field(description="Tickets reopened at least once.")
    resolved: int = Field(description="Tickets resolved at least once.")
    pct: float | None = Field(description="reopened / resolved × 100.")


class EscalationsRead(_Read):
    total: int = Field(description="Escalations made in the range.")
    by_team: list[TeamCountRead] = Field(description="By the team escalated to.")
    by_level: list[LevelCountRead] = Field(description="By the level reached.")
    automatic: int = Field(
        description="Made by an escalation rule (with or without approval)."
    )


class EscalationRequestsRead(_Read):
    requested: int = Field(description="Approvals rules asked for in the range.")
    approved: int = Field(description="Approved in the range.")
    rejected: int = Field(description="Rejected in the range.")
    pending: int = Field(description="Awaiting a supervisor now (active tickets).")


class AgentRowRead(_Read):
    assignee_id: str
    assigned: int
    resolved: int
    median_resolution_minutes: float | None


class SatisfactionScoreRead(_Read):
    responses: int = Field(description="Ratings given in the range.")
    average: float | None = Field(description="Mean rating, 1-5.")
    csat_pct: float | None = Field(
        description="Ratings of 4 or 5 / ratings × 100 (CSAT); null without any."
    )


class TeamSatisfactionRead(SatisfactionScoreRead):
    team: str = Field(description="The ticket's current team.")


class AgentSatisfactionRead(SatisfactionScoreRead):
    assignee_id: str = Field(description="The ticket's current assignee.")


class SatisfactionRead(SatisfactionScoreRead):
    """Customers' ratings given in the range (a ticket's latest rating)."""

    by_team: list[TeamSatisfactionRead]
    by_agent: list[AgentSatisfactionRead]


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
    sla_response: SlaComplianceRead = Field(
        description="First-response clocks that stopped in the range."
    )
    sla_resolution: SlaComplianceRead = Field(
        description="Resolution clocks that stopped in the range (one per resolve)."
    )
    sla_next_reply: SlaComplianceRead = Field(
        description="Next-reply clocks that stopped in the range."
    )
    first_response_business_minutes: DurationStatsRead = Field(
        description=(
            "Business minutes to the first public agent reply, of the"
            " first-response clocks that reached it in the range."
        )
    )
    resolution_business_minutes: DurationStatsRead = Field(
        description=(
            "Business minutes to resolution (from creation or the last reopen),"
            " of the resolution clocks that reached it in the range."
        )
    )
    next_reply_business_minutes: DurationStatsRead = Field(
        description="Business minutes from a customer's reply to the agent's."
    )
    breaches: int = Field(description="SLA breaches recorded in the range.")
    warnings: int = Field(description="SLA warnings recorded in the range.")
    open_breached: int = Field(
        description="Active tickets now with a running SLA clock breached."
    )
    open_at_risk: int = Field(
        description="Active tickets now with a running clock warned, none breached."
    )
    escalations: EscalationsRead
    escalation_requests: EscalationRequestsRead
    reopen_rate: ReopenRateRead
    agents: list[AgentRowRead] = Field(description="Per current assignee.")
    satisfaction: SatisfactionRead = Field(
        description="Satisfaction ratings (CSAT) given in the range."
    )
