"""The workflow runtime: ticket events in, steps run (``ticketing-workflows``).

A :class:`~consumers.kafka.consumer_loop.Handler` of the shared consumer. Per event:

- ``TicketCreated`` starts the workflow the tenant chose for the category;
- the event that made a step due (``WorkflowStarted``, a
  ``WorkflowStepCompleted`` naming the next step, ``WorkflowStepDue`` from
  a retry or a wake-up) runs that step;
- while a step waits for a person, every change a person makes to the
  ticket runs it again: the step itself decides whether the wait is over
  (a customer answered, an agent replied, the ticket was resolved).

A step runs on a fresh workflow instance bound to the ticket as it is now,
its tenant's settings and integrations; whatever it returns (or raises; a
hook the tenant did not configure makes the step wait for a person,
``domain.workflow.handed_to_a_person``) is recorded through an idempotent
command (``WorkflowService.record``), together with the changes it makes to
the ticket. If the worker dies after a step's effect and before its record,
the event is consumed again and the step runs again: changes to the ticket
were not saved (they are saved with the record), and calls to other systems
carry the same idempotency key, so the step happens once and is recorded
once.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import structlog
from eventsourcing.application import AggregateNotFoundError
from prometheus_client import Counter
from psycopg import AsyncCursor

from dotmac.ticketing.consumers.kafka.cloudevents import (
    UnknownEventType,
    parse_cloudevent,
)
from dotmac.ticketing.consumers.kafka.consumer_loop import (
    KafkaConfig,
    Record,
    ensure_service_topics,
    ticket_events_consumer,
    worker_pool,
)
from dotmac.ticketing.consumers.supervision import restarting
from dotmac.ticketing.consumers.workflows.integrations import (
    HttpIntegrations,
)
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workflow import (
    IntegrationNotConfigured,
    TicketWorkflow,
    WorkflowContext,
    WorkflowResult,
    handed_to_a_person,
)
from dotmac.ticketing.schemas.events import (
    TicketCreatedData,
    TicketEventData,
    WorkflowStartedData,
    WorkflowStepCompletedData,
    WorkflowStepDueData,
)
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.workflows import (
    StepRun,
    UnknownWorkflow,
)

log = structlog.get_logger(__name__)

WORKFLOWS_NAME = "ticketing-workflows"
# The workflows' event-store pool: loads and records run one at a time.
WORKFLOWS_DB_POOL_SIZE = 3

# Runs of one step for one event while people keep changing the ticket as
# it runs (WorkflowRunner._run_and_record): bounded, so that one busy ticket
# cannot hold its partition; a change missed after the last run is seen with
# the ticket's next change.
_RERUNS_MAX = 5

_MAKES_A_STEP_DUE = (
    WorkflowStartedData,
    WorkflowStepCompletedData,
    WorkflowStepDueData,
)


class WorkflowRunner:
    """Runs the workflow steps the events call for (a consumer handler)."""

    def __init__(
        self,
        ticketing: Ticketing,
        clock: Clock,
        http: httpx.AsyncClient,
        *,
        allow_private: bool = False,
    ) -> None:
        self._ticketing = ticketing
        self._workflows = ticketing.workflows
        self._clock = clock
        self._http = http
        self._allow_private = allow_private

    async def handle(self, record: Record, cur: AsyncCursor[Any]) -> None:
        try:
            envelope, data = parse_cloudevent(record.value)
        except UnknownEventType:
            log.info("skipping an event of unknown type", stream=record.stream)
            return
        if isinstance(data, TicketCreatedData):
            await asyncio.to_thread(
                self._start, data.tenant_id, data.ticket_id, envelope.id
            )
            return
        ticket = await asyncio.to_thread(self._find, data.ticket_id)
        if ticket is None or not self._calls_for_a_run(ticket, data):
            return
        run = self._workflows.step_to_run(ticket)
        if run is None:
            return
        await self._run_and_record(run, ticket, envelope.id)

    async def _run_and_record(
        self, run: StepRun, ticket: Ticket, causation_id: str
    ) -> None:
        """Run the step on ``ticket`` and record what it did.

        A person may change the ticket while the step runs (the customer
        answers while the step still reads the ticket from before). When
        the step then waits, its wait is recorded after that change, and a
        waiting step only looks again at changes made after its wait began:
        the answer would go unseen. So a step that waits on an older ticket
        than the one its wait was recorded on, where a person made the
        difference, runs again on the ticket as it is now.
        """
        for _ in range(_RERUNS_MAX):
            result = await self.run_step(run, ticket)
            saved = await asyncio.to_thread(
                self._workflows.record, run, result, causation_id=causation_id
            )
            STEPS.labels(f"{run.workflow_type}:{run.step}", _outcome(result)).inc()
            if not (result.success and result.requires_action):
                return
            now = saved.ticket
            flow = now.workflow
            if (
                flow is None
                or flow.status != "waiting"
                or flow.current != run.step
                or flow.waiting is None
            ):
                return
            since = int(flow.waiting.since_version or 0)
            if since <= ticket.version or not await asyncio.to_thread(
                self._changed_by_people, ticket.id, ticket.version, since
            ):
                return
            next_run = self._workflows.step_to_run(now)
            if next_run is None:
                return
            run, ticket = next_run, now

    def _changed_by_people(self, ticket_id: UUID, after: int, until: int) -> bool:
        """Did a person change the ticket after version ``after``, up to ``until``?"""
        return any(
            isinstance(event, Ticket.Event) and event.actor.get("kind") == "user"
            for event in self._ticketing.app.events.get(ticket_id, gt=after, lte=until)
        )

    def _calls_for_a_run(self, ticket: Ticket, data: TicketEventData) -> bool:
        """Is this the event that made the step due, or a person's change
        while it waits?"""
        flow = ticket.workflow
        if flow is None:
            return False
        if flow.status == "running":
            return (
                isinstance(data, _MAKES_A_STEP_DUE)
                and data.version == flow.entered_version
            )
        if flow.status == "waiting":
            since = (flow.waiting and flow.waiting.since_version) or 0
            return data.actor.kind == "user" and data.version > since
        return False

    async def run_step(self, run: StepRun, ticket: Ticket) -> WorkflowResult:
        """Run one step; an exception becomes a failed result."""
        _, settings, config = await asyncio.to_thread(
            self._ticketing.tickets.tenant_document_and_config, run.tenant_id
        )
        integrations = HttpIntegrations(
            config.integrations,
            self._http,
            allow_private=self._allow_private,
        )
        context = WorkflowContext(
            ticket=ticket_view(ticket, self._clock()),
            # The process's shared copy: the step may change its own.
            settings=copy.deepcopy(settings),
            results={} if ticket.workflow is None else ticket.workflow.result_data(),
            attempt=run.attempt,
            now=self._clock(),
            integrations=integrations,
            visit=run.visit,
            parsed_config=config,
        )
        try:
            workflow = self._workflows.registry.create(run.workflow_type)
        except UnknownWorkflow as error:
            return _failed(run, str(error), retryable=False)
        try:
            return await workflow.bind(context).execute_step(run.step)
        except IntegrationNotConfigured as error:
            # A custom step that did not catch it (the built-in steps word
            # their own instructions): nothing failed, the tenant has no such
            # system, so a person does the step, guided by its description.
            return handed_to_a_person(
                run.step,
                error.name,
                _step_description(workflow, run.step) or f"do {run.step}",
                {},
            )
        except Exception as error:
            retryable = bool(getattr(error, "retryable", True))
            log.warning(
                "workflow step failed",
                ticket_id=str(run.ticket_id),
                workflow=run.workflow_type,
                step=run.step,
                attempt=run.attempt,
                error=str(error) or repr(error),
            )
            return _failed(run, str(error) or repr(error), retryable=retryable)

    def _start(self, tenant_id: str, ticket_id: UUID, causation_id: str) -> None:
        try:
            self._workflows.start(tenant_id, ticket_id, causation_id=causation_id)
        except UnknownWorkflow as error:
            # The tenant selected a workflow nobody installed: say so, and
            # leave the ticket to people.
            log.error("no such workflow", ticket_id=str(ticket_id), error=str(error))

    def _find(self, ticket_id: UUID) -> Ticket | None:
        try:
            ticket: object = self._ticketing.app.repository.get(ticket_id)
        except AggregateNotFoundError:
            return None
        return ticket if isinstance(ticket, Ticket) else None


def _step_description(workflow: TicketWorkflow, step: str) -> str:
    try:
        return workflow.step(step).description.rstrip(".")
    except KeyError:
        return ""


def _failed(run: StepRun, message: str, *, retryable: bool) -> WorkflowResult:
    return WorkflowResult(
        success=False, step_name=run.step, message=message, retryable=retryable
    )


def ticket_view(ticket: Ticket, now: Any) -> dict[str, Any]:
    """The ticket as a step sees it: plain values, comments oldest first."""
    return {
        "id": str(ticket.id),
        "number": ticket.number,
        "title": ticket.title,
        "description": ticket.description,
        "category": ticket.category.value,
        "priority": ticket.priority.value,
        "channel": ticket.channel.value,
        "status": ticket.status.value,
        "tags": list(ticket.tags),
        "custom_fields": dict(ticket.custom_fields),
        "customer_id": ticket.customer_id,
        "customer_email": ticket.customer_email,
        "assignee_id": ticket.assignee_id,
        "assigned_team": ticket.assigned_team,
        "escalation_level": ticket.escalation_level,
        "reopen_count": ticket.reopen_count,
        "created_at": ticket.created_on,
        "resolved_at": ticket.resolved_at,
        "first_response_at": ticket.first_response_at,
        "workflow_type": None if ticket.workflow is None else ticket.workflow.type,
        "category_set_by_person": ticket.category_set_by == "user",
        "sla": {
            target: {"due_at": report["due_at"], "state": report["state"]}
            for target, report in ticket.sla_report(now).items()
        },
        "comments": [dict(c) for c in ticket.comments],
    }


# ----------------------------------------------------------------------
# Running it


@dataclass(frozen=True)
class WorkflowsConfig:
    """What the workflow runtime is given (the entry layer reads it)."""

    database_url: str
    kafka: KafkaConfig
    clock: Clock
    # Builds the write side the steps run on, with the registry of workflow
    # types to run (the built-ins and those installed under the entry point
    # group, or a program's own registered in code).
    ticketing: Callable[[], Ticketing]
    integrations_allow_private: bool = False


STEPS = Counter(
    "ticketing_workflow_steps",
    "Workflow steps run and recorded, by step (`<workflow>:<step>`, both"
    " from installed code) and outcome: succeeded, waiting (for a person or"
    " a time), failed.",
    ("step", "outcome"),
)


def _outcome(result: WorkflowResult) -> str:
    if not result.success:
        return "failed"
    return "waiting" if result.requires_action else "succeeded"


#: Partitions the workflow consumer applies at once.
PARTITIONS_AT_ONCE = 4


async def run_workflows(config: WorkflowsConfig, stop: asyncio.Event) -> None:
    """Run workflow steps as ticket events call for them, until ``stop``."""
    ticketing = await asyncio.to_thread(config.ticketing)
    # A connection per partition consumed at once, and one to spare.
    pool = worker_pool(
        config.database_url, WORKFLOWS_NAME, max_size=PARTITIONS_AT_ONCE + 1
    )
    http = httpx.AsyncClient(follow_redirects=False)
    try:
        await pool.open()
        await ensure_service_topics("workflows", config.kafka, stop)
        consumer = ticket_events_consumer(
            config.kafka,
            name=WORKFLOWS_NAME,
            pool=pool,
            handler=WorkflowRunner(
                ticketing,
                config.clock,
                http,
                allow_private=config.integrations_allow_private,
            ),
            # Its records mostly wait (the ticket's save, an integration's
            # answer): several partitions at once keep the core busy.
            partitions_at_once=PARTITIONS_AT_ONCE,
        )
        log.info(
            "workflows started",
            bootstrap_servers=config.kafka.bootstrap_servers,
            workflows=ticketing.workflows.registry.names(),
        )
        await restarting("workflows", "consumer", consumer.run, stop)
    finally:
        await http.aclose()
        await pool.close()
        await asyncio.to_thread(ticketing.close)
        log.info("workflows stopped")
