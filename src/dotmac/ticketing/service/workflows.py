"""Workflow use cases: start a ticket's workflow, record its steps, retry.

The runtime (``consumers/workflows/worker.py``) runs the steps; everything it
learns comes back here as commands on the ticket, each idempotent, so a
step recorded twice (a worker killed between a step's effect and its
record, then run again) is one step. A step's changes to the ticket (its
:class:`~domain.workflow.TicketAction` values) are saved in the same
save as the step's record: never one without the other.

Which workflow a ticket runs is the tenant's choice per category
(``settings.workflows``); the classes come from a :class:`WorkflowRegistry`
holding the built-ins, the ones registered in code and the ones installed
under the entry point group ``dotmac_ticketing.workflows``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from uuid import UUID

import structlog

from dotmac.ticketing.domain.assignment import matching_rule
from dotmac.ticketing.domain.deadlines import facts_of
from dotmac.ticketing.domain.enums import TicketCategory, TicketStatus
from dotmac.ticketing.domain.errors import CommandRefused, DomainError
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workflow import (
    ACTION_KINDS,
    PENDING,
    TicketWorkflow,
    WorkflowResult,
    WorkflowStep,
)
from dotmac.ticketing.domain.workflow_run import WorkflowRun
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, WorkflowNotStarted
from dotmac.ticketing.service.tickets import CommandResult, TicketService, Why

log = structlog.get_logger(__name__)

# What applying a step's result may raise when the ticket will not have it:
# a refused or invalid command, or an action without the fields it needs.
_REFUSED_CHANGES = (DomainError, ValueError, KeyError, TypeError)

#: Installed packages add workflows under this entry point group.
ENTRY_POINT_GROUP = "dotmac_ticketing.workflows"

WorkflowFactory = Callable[[], TicketWorkflow]


class UnknownWorkflow(LookupError):
    """A tenant selected a workflow type nobody registered."""


class WorkflowRegistry:
    """Workflow types by name: each a class (or factory) making a fresh instance."""

    def __init__(self) -> None:
        self._factories: dict[str, WorkflowFactory] = {}

    def register_workflow(
        self, factory: WorkflowFactory, *, name: str | None = None
    ) -> str:
        """Register a workflow class; its ``workflow_type`` names it."""
        workflow_type = name or factory().workflow_type
        self._factories[workflow_type] = factory
        return workflow_type

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every workflow installed under the entry point group."""
        loaded = []
        for point in entry_points(group=group):
            try:
                factory = point.load()
                loaded.append(self.register_workflow(factory, name=None))
            except Exception as error:
                # One broken plugin must not take the others down.
                log.warning(
                    "workflow entry point failed",
                    entry_point=point.name,
                    error=repr(error),
                )
        return loaded

    def create(self, workflow_type: str) -> TicketWorkflow:
        factory = self._factories.get(workflow_type)
        if factory is None:
            raise UnknownWorkflow(f"no workflow {workflow_type!r} is registered")
        return factory()

    def names(self) -> list[str]:
        return sorted(self._factories)


@dataclass(frozen=True)
class StepRun:
    """A step to run now: which, which attempt and visit, for which ticket."""

    tenant_id: str
    ticket_id: UUID
    workflow_type: str
    step: str
    attempt: int
    visit: int


class WorkflowService:
    def __init__(self, tickets: TicketService, registry: WorkflowRegistry) -> None:
        self._tickets = tickets
        self._registry = registry

    @property
    def registry(self) -> WorkflowRegistry:
        return self._registry

    # -- what the runtime asks ----------------------------------------------

    def start(
        self, tenant_id: str, ticket_id: UUID, *, causation_id: str | None = None
    ) -> CommandResult:
        """Start the workflow the tenant chose for the ticket's category."""
        ctx = self._automation(tenant_id, "workflow", causation_id)
        _, config = self._tickets.tenant_config(tenant_id)

        def decide(ticket: Ticket) -> None:
            kind = config.workflows.type_for(ticket.category.value)
            steps = self._registry.create(kind).step_names
            ticket.start_workflow(
                kind, steps, provenance=ctx.provenance(), at=self._tickets.now()
            )

        return self._tickets.execute(ctx, ticket_id, decide)

    def step_to_run(self, ticket: Ticket) -> StepRun | None:
        """The step the workflow is at, when it should run now."""
        flow = ticket.workflow
        if flow is None or not flow.live or flow.current is None:
            return None
        step = flow.current
        return StepRun(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.id,
            workflow_type=flow.type,
            step=step,
            attempt=flow.attempt,
            visit=flow.visit(step),
        )

    def record(
        self,
        run: StepRun,
        result: WorkflowResult,
        *,
        causation_id: str | None = None,
    ) -> CommandResult:
        """Record what a step run did (idempotent per step and attempt)."""
        ctx = self._automation(
            run.tenant_id, f"workflow:{run.workflow_type}", causation_id
        )
        workflow = self._registry.create(run.workflow_type)
        now = self._tickets.now()

        def current(ticket: Ticket) -> bool:
            flow = ticket.workflow
            return flow is not None and flow.is_current(run.step, run.attempt)

        def receiving_team(ticket: Ticket) -> str | None:
            if not (current(ticket) and result.success):
                return None
            for action in result.actions:
                if action.kind in ("assign", "escalate") and not action.fields.get(
                    "assignee_id"
                ):
                    team = action.fields.get("team") or self._rule_team(ticket)
                    return None if team is None else str(team)
            return None

        def decide(ticket: Ticket, agent_id: str | None, why: Why) -> None:
            flow = ticket.workflow
            verdict = (
                None
                if flow is None
                else flow.decide(
                    run.step,
                    run.attempt,
                    result,
                    retry=workflow.step(run.step).retry,
                    at=now,
                )
            )
            if verdict is None:
                return  # recorded already, or the workflow moved on
            p = ctx.provenance()
            if verdict.kind == "fail":
                ticket.fail_workflow_step(
                    run.step,
                    attempt=run.attempt,
                    error=result.message or "the step failed",
                    retry_at=verdict.retry_at,
                    provenance=p,
                    at=now,
                )
                return
            if verdict.kind == "wait":
                waits = ticket.wait_on_workflow_step(
                    run.step,
                    attempt=run.attempt,
                    message=result.message,
                    data=dict(result.data),
                    wake_at=result.wake_at,
                    provenance=p,
                    at=now,
                )
                if waits:  # actions come once, when the wait begins or changes
                    self._apply(ticket, result, agent_id, why, p)
                return
            applied = self._apply(ticket, result, agent_id, why, p)
            ticket.complete_workflow_step(
                run.step,
                attempt=run.attempt,
                data=dict(result.data),
                message=result.message,
                next_step=verdict.next_step,
                skipped=list(verdict.skipped),
                actions=applied,
                provenance=p,
                at=now,
            )

        try:
            return self._tickets.execute_handover(
                ctx, run.ticket_id, receiving_team, decide, None
            )
        except _REFUSED_CHANGES as error:
            if not result.success:
                raise
            # The ticket refused what the step asked of it (a comment on a
            # ticket closed meanwhile, a malformed action of a custom step).
            # Raising would make the consumer retry the event and then park
            # it, leaving the workflow "running" with no word of why: record
            # the step as failed instead, where people see the reason. A
            # refusal by the ticket's state may pass; a malformed action not.
            log.warning(
                "workflow step's changes refused",
                ticket_id=str(run.ticket_id),
                step=run.step,
                error=str(error),
            )
            refused = WorkflowResult(
                success=False,
                step_name=run.step,
                message=f"the ticket refused the step's changes: {error}",
                retryable=isinstance(error, CommandRefused),
            )
            return self.record(run, refused, causation_id=causation_id)

    def wake(
        self, tenant_id: str, ticket_id: UUID, *, causation_id: str | None = None
    ) -> CommandResult:
        """A failed step's retry time or a waiting step's wake-up came (timers)."""
        ctx = self._automation(tenant_id, "workflow-timer", causation_id)
        return self._tickets.execute(
            ctx,
            ticket_id,
            lambda t: t.workflow_step_due(
                provenance=ctx.provenance(), at=self._tickets.now()
            ),
        )

    # -- what people ask (the API) -----------------------------------------

    def view(self, ctx: RequestContext, ticket_id: UUID) -> dict[str, Any]:
        """The ticket's workflow: each step's state, results and changes.

        Staff only: steps record the desk's working (integration answers,
        approvals). Customers are refused before any lookup, like staff
        commands, so the answer says nothing about the ticket; another
        tenant's ticket stays a 404.
        """
        if not ctx.is_staff:
            raise PermissionDenied("workflows are for staff")
        ticket = self._tickets.get_ticket(ctx, ticket_id)
        flow = ticket.workflow
        if flow is None:
            return self._pending_view(ticket)
        try:
            descriptions = {
                s.name: s.description for s in self._registry.create(flow.type).steps
            }
        except UnknownWorkflow:
            descriptions = {}
        return {
            "workflow_type": flow.type,
            "status": flow.status,
            "current_step": flow.current,
            "started_at": flow.started_at,
            "completed_at": flow.completed_at,
            "steps": [
                _step_view(flow, name, descriptions.get(name, ""))
                for name in flow.steps
            ],
        }

    def _pending_view(self, ticket: Ticket) -> dict[str, Any]:
        """The workflow about to run, before the runtime has started it.

        The runtime starts it moments after the ticket is created (on the
        ``TicketCreated`` event), with the type the tenant's settings select
        for the category then: the same as here, unless they change
        meanwhile. A ticket that will run none (closed first, or its type
        is not installed) has no workflow: 404.
        """
        if ticket.status == TicketStatus.CLOSED:
            raise WorkflowNotStarted(ticket.id, "it was closed before one started")
        _, config = self._tickets.tenant_config(ticket.tenant_id)
        kind = config.workflows.type_for(ticket.category.value)
        try:
            workflow = self._registry.create(kind)
        except UnknownWorkflow:
            raise WorkflowNotStarted(
                ticket.id,
                f"its category {ticket.category.value} selects workflow {kind!r},"
                " which is not installed",
            ) from None
        return {
            "workflow_type": kind,
            "status": PENDING,
            "current_step": None,
            "started_at": None,
            "completed_at": None,
            "steps": [_pending_step(step) for step in workflow.steps],
        }

    def complete_step(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        step: str,
        *,
        data: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> CommandResult:
        """A person completes the step the workflow waits on.

        A step that names who may complete it (an approval: supervisors)
        refuses everybody else.
        """
        if not ctx.is_staff:
            raise PermissionDenied("only staff complete workflow steps")

        def decide(ticket: Ticket) -> None:
            roles = self._completable_by(ticket, step)
            if roles and not ctx.has_role(*roles):
                raise PermissionDenied(
                    f"step {step} is completed by {' or '.join(sorted(roles))}"
                )
            ticket.complete_waiting_step(
                step,
                data=dict(data),
                provenance=ctx.provenance(),
                at=self._tickets.now(),
            )

        return self._tickets.execute(ctx, ticket_id, decide, expected_version)

    def retry(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Run the failed step again now."""
        if not ctx.is_staff:
            raise PermissionDenied("only staff retry workflows")
        return self._tickets.execute(
            ctx,
            ticket_id,
            lambda t: t.retry_workflow(
                provenance=ctx.provenance(), at=self._tickets.now()
            ),
            expected_version,
        )

    # -- helpers -------------------------------------------------------------

    def _apply(
        self,
        ticket: Ticket,
        result: WorkflowResult,
        agent_id: str | None,
        why: Why,
        provenance: Provenance,
    ) -> list[dict[str, Any]]:
        """Make the step's changes to the ticket; return them as recorded."""
        applied = []
        at = self._tickets.now()
        for action in result.actions:
            if action.kind not in ACTION_KINDS:
                raise ValueError(f"unknown workflow action {action.kind!r}")
            f = dict(action.fields)
            if action.kind == "comment":
                ticket.add_comment(
                    str(f["body"]),
                    internal=bool(f.get("internal", False)),
                    acknowledgment=bool(f.get("acknowledgment", False)),
                    provenance=provenance,
                    at=at,
                )
            elif action.kind == "categorize":
                if ticket.categorize(
                    TicketCategory(f["category"]),
                    confidence=f.get("confidence"),
                    provenance=provenance,
                    at=at,
                ):
                    ticket.recalculate_sla(
                        self._tickets.policy_for_ticket(ticket),
                        provenance=provenance,
                        at=at,
                    )
            elif action.kind == "assign":
                team = f.get("team") or self._rule_team(ticket)
                if team is None and not f.get("assignee_id"):
                    continue  # no rule routes this ticket: nothing to assign
                ticket.assign(
                    team=team,
                    assignee_id=f.get("assignee_id") or agent_id,
                    reason={"workflow_step": result.step_name, **(why or {})},
                    provenance=provenance,
                    at=at,
                )
            elif action.kind == "escalate":
                level = ticket.escalation_level
                ticket.escalate(
                    reason=str(f["reason"]),
                    team=f.get("team"),
                    level=None if f.get("level") is None else int(f["level"]),
                    rule=None if f.get("rule") is None else str(f["rule"]),
                    assignee_id=f.get("assignee_id") or agent_id,
                    assignment=why,
                    provenance=provenance,
                    at=at,
                )
                if ticket.escalation_level == level:
                    continue  # it changed nothing, so nothing was recorded
            elif action.kind == "status":
                ticket.change_status(
                    TicketStatus(f["status"]), provenance=provenance, at=at
                )
            elif action.kind == "resolve":
                ticket.resolve(
                    resolution=str(f.get("resolution", "")),
                    resolution_code=str(f["resolution_code"]),
                    provenance=provenance,
                    at=at,
                )
            elif action.kind == "close":
                ticket.close(provenance=provenance, at=at, by_workflow=True)
            applied.append(action.as_dict())
        return applied

    def _completable_by(self, ticket: Ticket, step: str) -> frozenset[str]:
        """The roles the ticket's workflow lets complete ``step`` (empty: staff)."""
        flow = ticket.workflow
        if flow is None or step not in flow.steps:
            return frozenset()  # the ticket refuses the command (409)
        try:
            return self._registry.create(flow.type).step(step).completable_by
        except (UnknownWorkflow, KeyError):
            return frozenset()

    def _rule_team(self, ticket: Ticket) -> str | None:
        """The team the tenant's assignment rules route the ticket to."""
        _, config = self._tickets.tenant_config(ticket.tenant_id)
        rule = matching_rule(config, facts_of(ticket))
        return None if rule is None else rule.assigned_team

    @staticmethod
    def _automation(
        tenant_id: str, name: str, causation_id: str | None
    ) -> RequestContext:
        return RequestContext.for_automation(tenant_id, name, causation_id=causation_id)


def _step_view(flow: WorkflowRun, name: str, description: str) -> dict[str, Any]:
    """One step of a workflow as the API shows it.

    The step the workflow is at shows its run in progress, also when an
    earlier visit completed it (a jump back after a reopen): that visit's
    result is in the history, not in what the step does now.
    """
    current = flow.current == name
    live = current and flow.status != "completed"
    result = None if live else flow.results.get(name)
    if live:
        state = str(flow.status)
    elif result is not None:
        state = "completed"
    elif name in flow.skipped:
        state = "skipped"
    elif flow.status == "cancelled":
        state = "cancelled"  # the ticket closed before the step ran, or while it did
    else:
        state = "pending"
    waiting = flow.waiting if current else None
    failure = flow.failure if current else None
    if result is not None:
        data: Mapping[str, Any] | None = dict(result.data)
        message: str | None = result.message
    else:
        data = None if waiting is None else dict(waiting.data)
        message = waiting.message if waiting else (failure.error if failure else None)
    return {
        "name": name,
        "description": description,
        "state": state,
        "attempt": flow.attempt if current else None,
        "message": message,
        "data": data,
        "actions": [dict(a) for a in result.actions] if result else [],
        "completed_at": result.completed_at if result else None,
        "completed_by": dict(result.completed_by) if result else None,
        "error": failure.error if failure else None,
        "retry_at": failure.retry_at if failure else None,
        "wake_at": waiting.wake_at if waiting else None,
    }


def _pending_step(step: WorkflowStep) -> dict[str, Any]:
    return {
        "name": step.name,
        "description": step.description,
        "state": "pending",
        "attempt": None,
        "message": None,
        "data": None,
        "actions": [],
        "completed_at": None,
        "completed_by": None,
        "error": None,
        "retry_at": None,
        "wake_at": None,
    }


def registry_with(
    builtins: Iterable[WorkflowFactory],
    *,
    entry_point_group: str | None = ENTRY_POINT_GROUP,
) -> WorkflowRegistry:
    """A registry of the given workflows plus the installed ones."""
    registry = WorkflowRegistry()
    for factory in builtins:
        registry.register_workflow(factory)
    if entry_point_group:
        registry.load_entry_points(entry_point_group)
    return registry
