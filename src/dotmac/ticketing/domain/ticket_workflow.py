"""The ticket's workflow run. Each command is idempotent: recording what is already
recorded (a step run twice after a crash) changes nothing; the run decides
(``domain.workflow_run``).

Functions of a :class:`~domain.ticket.Ticket`, which takes each as its method
(``ticket.check_sla(...)``): ``domain/ticket.py`` keeps to the ticket's lifecycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from dotmac.ticketing.domain import workflow as wf
from dotmac.ticketing.domain.enums import TicketStatus
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.limits import REASON_MAX
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.ticket_validation import _valid_text
from dotmac.ticketing.domain.workflow_run import WorkflowRun

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket


def start_workflow(
    ticket: Ticket,
    workflow_type: str,
    steps: list[str],
    *,
    provenance: Provenance,
    at: datetime,
) -> bool:
    """Start the workflow of the ticket's type; False if one was started."""
    if ticket.workflow is not None or ticket.status == TicketStatus.CLOSED:
        return False
    if not steps or len(set(steps)) != len(steps):
        raise InvalidCommand("steps", "a workflow has distinct, named steps")
    ticket._trigger(
        ticket.WorkflowStarted,
        provenance,
        at,
        workflow_type=workflow_type,
        steps=list(steps),
    )
    return True


def complete_workflow_step(
    ticket: Ticket,
    step: str,
    *,
    attempt: int | None,
    data: dict[str, Any],
    message: str,
    next_step: str | None,
    skipped: list[str],
    actions: list[dict[str, Any]],
    provenance: Provenance,
    at: datetime,
) -> bool:
    """Record a step's success and move on; False if not the current step.

    ``attempt`` is the run being recorded (None: a person completes a
    waiting step), so a late record of an older run changes nothing.
    """
    flow = ticket.workflow
    if flow is None or not flow.is_current(step, attempt):
        return False
    if next_step is not None and next_step not in flow.steps:
        raise InvalidCommand("next_step", f"no step {next_step!r}")
    ticket._trigger(
        ticket.WorkflowStepCompleted,
        provenance,
        at,
        step=step,
        attempt=flow.attempt,
        data=dict(data),
        message=_valid_text("message", message, REASON_MAX),
        next_step=next_step,
        skipped=list(skipped),
        actions=list(actions),
    )
    if next_step is None:
        ticket._trigger(
            ticket.WorkflowCompleted, provenance, at, workflow_type=flow.type
        )
    return True


def complete_waiting_step(
    ticket: Ticket,
    step: str,
    *,
    data: dict[str, Any],
    provenance: Provenance,
    at: datetime,
) -> None:
    """A person completes the step the workflow waits on (with data)."""
    flow = ticket.workflow
    if flow is None or flow.status != wf.WAITING or flow.current != step:
        state = "no workflow" if flow is None else flow.status
        waiting_on = "" if flow is None else f" (current step: {flow.current})"
        raise CommandRefused(
            f"complete step {step}",
            ticket.status.value,
            f"the workflow is {state}, not waiting on {step}{waiting_on}",
        )
    ticket.complete_workflow_step(
        step,
        attempt=None,
        data=data,
        message="completed by a person",
        next_step=flow.step_after(step),
        skipped=[],
        actions=[],
        provenance=provenance,
        at=at,
    )


def wait_on_workflow_step(
    ticket: Ticket,
    step: str,
    *,
    attempt: int,
    message: str,
    data: dict[str, Any],
    wake_at: datetime | None,
    provenance: Provenance,
    at: datetime,
) -> bool:
    """The step waits for a person, the ticket to change, or ``wake_at``."""
    flow = ticket.workflow
    if flow is None or not flow.is_current(step, attempt):
        return False
    message = _valid_text("message", message, REASON_MAX)
    if flow.waits_on(message, data, wake_at):
        return False  # still waiting on the same thing
    ticket._trigger(
        ticket.WorkflowStepWaiting,
        provenance,
        at,
        step=step,
        attempt=attempt,
        message=message,
        data=dict(data),
        wake_at=wake_at,
    )
    return True


def fail_workflow_step(
    ticket: Ticket,
    step: str,
    *,
    attempt: int,
    error: str,
    retry_at: datetime | None,
    provenance: Provenance,
    at: datetime,
) -> bool:
    """Record a failed run; it is tried again at ``retry_at`` if given."""
    flow = ticket.workflow
    if flow is None or not flow.is_current(step, attempt):
        return False
    ticket._trigger(
        ticket.WorkflowStepFailed,
        provenance,
        at,
        step=step,
        attempt=attempt,
        error=_valid_text("error", error[:REASON_MAX], REASON_MAX),
        retry_at=retry_at,
    )
    return True


def workflow_step_due(ticket: Ticket, *, provenance: Provenance, at: datetime) -> bool:
    """A failed step's retry time or a waiting step's wake-up time came."""
    flow = ticket.workflow
    due = None if flow is None else flow.step_due(at)
    if flow is None or due is None:
        return False
    ticket._trigger(
        ticket.WorkflowStepDue,
        provenance,
        at,
        step=flow.current,
        attempt=due.attempt,
        reason=due.reason,
    )
    return True


def retry_workflow(ticket: Ticket, *, provenance: Provenance, at: datetime) -> None:
    """Run the failed step again now (a person asks, after fixing the cause)."""
    flow = ticket.workflow
    due = None if flow is None else flow.manual_retry()
    if flow is None or due is None:
        state = "no workflow" if flow is None else f"workflow {flow.status}"
        raise CommandRefused(
            "retry workflow", ticket.status.value, f"{state}: nothing failed"
        )
    ticket._trigger(
        ticket.WorkflowStepDue,
        provenance,
        at,
        step=flow.current,
        attempt=due.attempt,
        reason=due.reason,
    )


def workflow_wake_time(ticket: Ticket) -> datetime | None:
    """When the timers must wake the workflow (a retry or a wait), if ever."""
    return None if ticket.workflow is None else ticket.workflow.wake_time()


def _cancel_workflow(
    ticket: Ticket, reason: str, provenance: Provenance, at: datetime
) -> None:
    """A closed ticket has nothing left to work on: end an unfinished workflow."""
    flow = ticket.workflow
    if flow is None or flow.finished:
        return
    ticket._trigger(
        ticket.WorkflowCancelled,
        provenance,
        at,
        workflow_type=flow.type,
        step=flow.current,
        reason=reason,
    )


def _workflow(ticket: Ticket) -> WorkflowRun:
    assert ticket.workflow is not None, "workflow events follow WorkflowStarted"
    return ticket.workflow
