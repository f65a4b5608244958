"""What-if replays over HTTP: the request and the job's state and result."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument


class SimulationRequest(BaseModel):
    """A proposed settings document and the period whose tickets replay."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "settings": {
                        "sla_config": {
                            "high": {"response": 30, "resolution": 240},
                            "warning_percent": 80,
                        }
                    },
                    "period_start": "2026-11-01T00:00:00Z",
                    "period_end": "2026-12-01T00:00:00Z",
                }
            ]
        },
    )

    settings: TenantSettingsDocument = Field(
        description="A whole settings document, validated as PUT /settings"
        " validates it (SLA targets and policies, business hours, teams,"
        " assignment and escalation rules). Nothing is stored."
    )
    period_start: AwareDatetime = Field(
        description="The tickets created from this instant on replay."
    )
    period_end: AwareDatetime = Field(
        description="...up to this one (excluded); at most 93 days after the start."
    )


class SimulationProgress(BaseModel):
    tickets_done: int
    tickets_total: int | None = Field(
        description="Known once the simulation has listed the period's tickets."
    )
    events_read: int


class SimulationRead(BaseModel):
    """A simulation's state; ``result`` once it is done."""

    id: UUID
    state: Literal["queued", "running", "done", "failed"]
    period_start: datetime
    period_end: datetime
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    progress: SimulationProgress
    result: dict[str, Any] | None = Field(
        description="`actual` (what the stored events recorded) beside"
        " `proposed` (the same facts under the proposal), each with `sla`"
        " (per target, per priority: `clocks`, `met`, `breached`, `warned`,"
        " `open`, `compliance` = met / (met + breached)), `breaches`,"
        " `warnings`, `escalations` (per rule) and `assignments_per_team`;"
        " `changed_tickets` (`count`, and up to 100 `tickets` with both"
        " outcomes); `until` (the instant the tickets were followed to);"
        " `events_replayed`; `tickets_not_replayed` (a ticket refusing a"
        " command the proposal made, as the timers would skip it: 0 normally)."
    )
    error: str | None
