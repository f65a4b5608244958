"""Response models of a ticket's SLA clocks (``GET /tickets/{id}/sla``).

A ticket has up to three targets, each a clock of business minutes on the
tenant's calendar: ``first_response`` and ``resolution`` start when the
ticket is created (resolution again on a reopen), ``next_reply`` at each
public customer comment after the first response.

Who sees what is deliberate. Staff see everything: the policy the ticket is
measured against (its name, settings version, calendar and targets), the
business minutes used and left, the warning point, the pauses and the
recorded explanation of each due time. The ticket's customer sees only what
a customer-facing promise is made of: each target's state and its start,
due and stop times. The internal warning point is not shown to customers,
so their ``warning`` state reads as ``running``; every staff-only field is
null for them.
"""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from dotmac.ticketing.schemas.enums import TicketPriority

SLATargetName = Literal["first_response", "resolution", "next_reply"]
SLAState = Literal["running", "paused", "warning", "breached", "met", "stopped"]

_STAFF_ONLY = "Staff only: null for customers."


class SLAPauseRead(BaseModel):
    """An interval in which the clock stood still (a pausing status)."""

    start: datetime
    end: datetime | None = Field(description="Null while the pause lasts.")


class SLAPausedIntervalRead(SLAPauseRead):
    """A pause as recorded when the due time was set, with its business time."""

    business_minutes: float = Field(
        description="Business minutes of the pause (0 for one still open then)."
    )


class SLAExplanationRead(BaseModel):
    """Why the due time is what it is, as recorded on the event that set it."""

    policy: str = Field(description="The SLA policy's name ('default' or narrowed).")
    settings_version: int = Field(
        description="The tenant settings version the policy was taken from."
    )
    priority: TicketPriority
    target_minutes: float
    warning_percent: float
    calendar: str | dict[str, Any] = Field(
        description="'24x7' or the business calendar: timezone, week, holidays."
    )
    started_at: datetime
    paused: list[SLAPausedIntervalRead]
    due_at: datetime | None
    warning_at: datetime | None


class SLATargetRead(BaseModel):
    """One target's clock, as of the report's ``computed_at``."""

    target: SLATargetName
    state: SLAState = Field(
        description=(
            "running, paused, warning (past the warning point), breached "
            "(past due, or stopped late), met (stopped in time) or stopped "
            "(no longer owed, e.g. resolved without a reply)."
        )
    )
    started_at: datetime
    due_at: datetime | None = Field(
        description="Null while paused: the clock has no due time until it resumes."
    )
    stopped_at: datetime | None
    warning_at: datetime | None = Field(None, description=_STAFF_ONLY)
    target_minutes: float | None = Field(
        None, description="The target in business minutes. " + _STAFF_ONLY
    )
    business_minutes_used: float | None = Field(
        None, description="Running business minutes so far. " + _STAFF_ONLY
    )
    business_minutes_left: float | None = Field(
        None, description="Business minutes to the target (0 once due). " + _STAFF_ONLY
    )
    pauses: list[SLAPauseRead] | None = Field(None, description=_STAFF_ONLY)
    explanation: SLAExplanationRead | None = Field(None, description=_STAFF_ONLY)


class SLAPolicyRead(BaseModel):
    """The policy snapshot a ticket is measured against."""

    name: str
    settings_version: int
    calendar: str | dict[str, Any]
    warning_percent: float
    pause_on: dict[str, list[str]] = Field(
        description="The statuses that pause each target."
    )
    targets: dict[str, dict[str, float]] = Field(
        description="Minutes per priority and target."
    )


class TicketSLARead(BaseModel):
    """Every SLA target of a ticket; a target not started (yet) is null."""

    ticket_id: UUID
    version: int
    priority: TicketPriority
    computed_at: datetime = Field(
        description="The moment states and minutes are computed for (now)."
    )
    policy: SLAPolicyRead | None = Field(
        None, description="Null for tickets without an SLA. " + _STAFF_ONLY
    )
    first_response: SLATargetRead | None = None
    resolution: SLATargetRead | None = None
    next_reply: SLATargetRead | None = None


class SLATargetSummary(BaseModel):
    """A target's state and due time, as shown on the ticket itself."""

    state: SLAState
    due_at: datetime | None


class TicketSLASummary(BaseModel):
    """The ticket's SLA at a glance; ``GET /tickets/{id}/sla`` has the rest."""

    first_response: SLATargetSummary | None = None
    resolution: SLATargetSummary | None = None
    next_reply: SLATargetSummary | None = None
