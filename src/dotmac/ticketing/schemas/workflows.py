"""The workflow API's models: a ticket's workflow and a person's step completion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dotmac.ticketing.schemas.tenant_config import OptionValue, _bounded_options
from dotmac.ticketing.schemas.tickets import _Request

StepState = Literal[
    "pending", "running", "waiting", "failed", "completed", "skipped", "cancelled"
]


WorkflowStatus = Literal[
    "pending", "running", "waiting", "failed", "completed", "cancelled"
]


class WorkflowStepRead(BaseModel):
    """One step: where it stands and, once done, what it found and did."""

    name: str
    description: str
    state: StepState
    attempt: int | None = Field(
        description="The run in progress or last failed (1 = first try)."
    )
    message: str | None = Field(description="The step's last word on itself.")
    data: dict[str, Any] | None = Field(
        description="Its results (completed), or what it waits with (waiting)."
    )
    actions: list[dict[str, Any]] = Field(
        description="The ticket changes it made, saved with its record."
    )
    completed_at: datetime | None
    completed_by: dict[str, str] | None = Field(
        description="The automation, or the person who completed a waiting step."
    )
    error: str | None = Field(description="Why the last run failed.")
    retry_at: datetime | None = Field(
        description="When a failed step runs again (null: it waits for a retry)."
    )
    wake_at: datetime | None = Field(
        description="When a waiting step looks again by itself."
    )


class WorkflowRead(BaseModel):
    """The workflow of a ticket's type: its steps in order and its state."""

    workflow_type: str
    status: WorkflowStatus = Field(
        description=(
            "pending: the workflow the ticket's category selects, about to"
            " start (moments after the ticket is created); every step pending."
        )
    )
    current_step: str | None
    started_at: datetime | None = Field(description="Null while pending.")
    completed_at: datetime | None
    steps: list[WorkflowStepRead]


class WorkflowStepCompletion(_Request):
    """A person's completion of a waiting step, with what they found or decided."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"data": {"approved": True}}]},
    )

    data: Annotated[
        dict[str, OptionValue], Field(max_length=100), AfterValidator(_bounded_options)
    ] = Field(default_factory=dict)
