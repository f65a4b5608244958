"""The workflow routes: a ticket's workflow, completing a waiting step, retrying."""

from typing import Annotated
from uuid import UUID

from fastapi import Path

from dotmac.ticketing.schemas.tickets import TicketRead
from dotmac.ticketing.schemas.workflows import WorkflowRead, WorkflowStepCompletion
from dotmac.ticketing.service.api.commands import VersionedCommand
from dotmac.ticketing.service.api.deps import Caller, Workflows
from dotmac.ticketing.service.api.responses import (
    BODY,
    RESOURCE,
    VERSIONED,
    WRITE,
)
from dotmac.ticketing.service.api.routers import tickets_router

StepName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]

router = tickets_router()


@router.get(
    "/{ticket_id}/workflow",
    summary="The ticket's workflow: steps, state, results (staff)",
    description=(
        "Each step of the workflow the ticket's type runs, in order: "
        "pending, running, waiting (for a person, the customer or a "
        "time), failed (with the error and when it is retried), "
        "completed (with its data and the changes it made) or skipped. "
        "Right after the ticket is created, before the runtime starts "
        "it, the workflow its category selects is shown as pending. "
        "404 when the ticket runs no workflow (closed before it "
        "started, or the selected type is not installed)."
    ),
    responses=RESOURCE,
)
def workflow(ticket_id: UUID, ctx: Caller, workflows: Workflows) -> WorkflowRead:
    return WorkflowRead.model_validate(workflows.view(ctx, ticket_id))


@router.post(
    "/{ticket_id}/workflow/steps/{step}/complete",
    summary="Complete the step the workflow waits on (staff)",
    description=(
        "For steps waiting on a person (an approval, an agent's "
        "solution): records the step as done with the given data and "
        "moves the workflow on. 409 when the workflow is not waiting on "
        "this step."
    ),
    responses={**RESOURCE, **BODY, **WRITE, **VERSIONED},
)
def complete_step(
    ticket_id: UUID,
    step: StepName,
    command: VersionedCommand,
    workflows: Workflows,
    body: WorkflowStepCompletion | None = None,
) -> TicketRead:
    return command.run(
        workflows.complete_step, ticket_id, step, data=body.data if body else {}
    )


@router.post(
    "/{ticket_id}/workflow/retry",
    summary="Run the failed step again now (staff)",
    description=(
        "After the cause of a failure is fixed (the other system is back), "
        "the step runs again at once. 409 when nothing failed."
    ),
    responses={**RESOURCE, **WRITE, **VERSIONED},
)
def retry(
    ticket_id: UUID, command: VersionedCommand, workflows: Workflows
) -> TicketRead:
    return command.run(workflows.retry, ticket_id)
