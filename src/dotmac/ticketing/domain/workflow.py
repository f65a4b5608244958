"""Workflows: the steps a ticket of a type goes through, and their results.

A workflow is a class: subclass :class:`TicketWorkflow`, name its steps and
say what each does in ``execute_step`` (or in one ``step_<name>`` coroutine
per step, which the default ``execute_step`` calls)::

    class CustomWorkflow(TicketWorkflow):
        def __init__(self) -> None:
            super().__init__(workflow_type="custom_workflow",
                             steps=["step1", "step2", "step3"])

        async def execute_step(self, step_name: str) -> WorkflowResult:
            return WorkflowResult(success=True, step_name=step_name)

A step's result either completes it (optionally branching to a named step
or skipping some), waits for a person (``requires_action``; the step runs
again whenever the ticket changes, and a person may complete it through the
API), or fails (retried with back-off by its :class:`RetryPolicy`). A step
changes the ticket only through the :class:`TicketAction` values of its
result, which are saved together with the step's record: a step is never
half done. What a step does outside the ticket (calling another system)
goes through ``context.integrations`` with ``context.idempotency_key``, so
that running a step again after a crash does not do it twice.

The runtime (``consumers/workflows/worker.py``) binds a :class:`WorkflowContext`
to a fresh instance before each step. This module is pure: the context
brings the only I/O, and only as the :class:`Integrations` protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.tenant_config import parse as parse_config

#: The statuses of a ticket's workflow.
#: About to run: the ticket selects it, the runtime has not started it yet
#: (shown by the API; never stored on the ticket).
PENDING = "pending"
RUNNING = "running"
WAITING = "waiting"
FAILED = "failed"
COMPLETED = "completed"
#: The ticket closed before the workflow finished.
CANCELLED = "cancelled"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed step is tried again."""

    max_attempts: int = 5
    backoff_seconds: float = 30.0
    multiplier: float = 2.0
    max_backoff_seconds: float = 3600.0

    def retry_at(self, failed_attempt: int, at: datetime) -> datetime | None:
        """When to try again after ``failed_attempt`` failed; None: give up."""
        if failed_attempt >= self.max_attempts:
            return None
        delay = self.backoff_seconds * self.multiplier ** (failed_attempt - 1)
        return at + timedelta(seconds=min(delay, self.max_backoff_seconds))


@dataclass(frozen=True)
class WorkflowStep:
    """A step's name, what it is for, its retry policy, and who may complete it.

    ``completable_by`` names the roles that may complete the step through
    the API while it waits (an approval above a limit: supervisors); empty,
    any staff member may.
    """

    name: str
    description: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    completable_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TicketAction:
    """A change a step makes to its ticket, saved with the step's record.

    ``kind`` is one of ``comment`` (``body``, ``internal``, optional
    ``acknowledgment``: the public acknowledgment of the new ticket, which
    the customer had by e-mail already, so it is not mailed), ``categorize``
    (``category``, ``confidence``), ``assign`` (``team``, optional
    ``assignee_id``; without one the team's assignment rule picks),
    ``escalate`` (``reason``, ``team``; ``level`` and ``rule`` when an
    escalation rule chose it), ``status`` (``status``),
    ``resolve`` (``resolution``, ``resolution_code``) or ``close``.
    """

    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.fields}


ACTION_KINDS = frozenset(
    {"comment", "categorize", "assign", "escalate", "status", "resolve", "close"}
)


@dataclass(frozen=True)
class WorkflowResult:
    """What a step did.

    ``success`` with ``requires_action`` means the step waits for a person
    (or for the ticket to change, or for ``wake_at``). ``next_step`` jumps
    to a named step, ``skip`` passes over steps that would come next; by
    default the next step in order follows. A failure with ``retryable``
    False is not tried again automatically.
    """

    success: bool
    step_name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    requires_action: bool = False
    next_step: str | None = None
    skip: Sequence[str] = ()
    actions: Sequence[TicketAction] = ()
    wake_at: datetime | None = None
    retryable: bool = True


class Integrations(Protocol):
    """Other systems a step may call (account lookup, billing, diagnostics)."""

    async def call(
        self, name: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """The system's JSON answer; raises when it is down or refuses.

        Raises :class:`IntegrationNotConfigured` when the tenant configured
        no hook of that name: there is nothing to call.
        """
        ...


#: The settings section where a tenant configures the hooks steps call.
INTEGRATIONS_SECTION = "integrations"


class IntegrationNotConfigured(LookupError):
    """The tenant configured no hook ``name``: nothing to call, nothing failed.

    Not a failure to retry: a step whose system is not configured hands
    itself to a person (:func:`handed_to_a_person`), and runs again by
    itself on the ticket's next change once the hook is configured.
    """

    retryable = False

    def __init__(self, name: str) -> None:
        super().__init__(f"no integration {name!r} configured")
        self.name = name


def handed_to_a_person(
    step: str,
    integration: str,
    by_hand: str,
    complete_with: Mapping[str, Any],
) -> WorkflowResult:
    """A step whose system is not configured waits for a person to do it.

    The message says what to do by hand (``by_hand``, a sentence such as
    "look up the customer's account"), how to complete the step (``POST
    …/workflow/steps/<step>/complete`` with data like ``complete_with``)
    and how to let the system do it from now on (the hook's name in the
    ``integrations`` settings section). The same wait on every run, so it
    is recorded once (the service records a wait only when it changes).
    """
    example = json.dumps({"data": dict(complete_with)}, separators=(", ", ": "))
    return WorkflowResult(
        success=True,
        step_name=step,
        requires_action=True,
        message=(
            f"no integration {integration!r} is configured, so a person does"
            f" this step: {by_hand}, then complete it (POST"
            f" /tickets/{{id}}/workflow/steps/{step}/complete with {example})."
            f" To automate it, configure {integration!r} in the settings"
            f" section {INTEGRATIONS_SECTION!r}."
        ),
        data={
            "handed_to_a_person": True,
            "integration": integration,
            "settings_section": INTEGRATIONS_SECTION,
            "by_hand": by_hand,
            "complete_with": dict(complete_with),
        },
    )


@dataclass(frozen=True)
class WorkflowContext:
    """What a step sees: the ticket now, the tenant's configuration, earlier results.

    ``settings`` is the tenant's configuration document as stored (public:
    workflows of other packages read it); :attr:`config` is its typed form.
    """

    ticket: Mapping[str, Any]
    settings: Mapping[str, Any]
    results: Mapping[str, Mapping[str, Any]]
    attempt: int
    now: datetime
    integrations: Integrations
    #: How many times the workflow has entered this step (a jump back re-enters).
    visit: int = 1
    #: ``settings`` already parsed (the runtime passes the one it caches per
    #: version); None: :attr:`config` parses ``settings`` when first read.
    parsed_config: TenantConfig | None = field(default=None, repr=False)

    @cached_property
    def config(self) -> TenantConfig:
        """The tenant's configuration, typed (``domain.tenant_config``)."""
        if self.parsed_config is not None:
            return self.parsed_config
        return parse_config(self.settings)

    @property
    def options(self) -> Mapping[str, Any]:
        """The tenant's options for this ticket's workflow type."""
        kind = str(self.ticket.get("workflow_type", ""))
        return self.config.workflows.options_for(kind)

    def idempotency_key(self, step_name: str) -> str:
        """The same key each time this visit of the step runs.

        Retries of a step send the same key, so the other system does the
        thing once however often a crash or a timeout makes us ask.
        """
        return f"{self.ticket['id']}:{step_name}:{self.visit}"


class TicketWorkflow:
    """The base of every workflow: named steps and how to run each one."""

    def __init__(self, workflow_type: str, steps: Sequence[str | WorkflowStep]) -> None:
        if not steps:
            raise ValueError("a workflow needs at least one step")
        self.workflow_type = workflow_type
        self.steps: tuple[WorkflowStep, ...] = tuple(
            s if isinstance(s, WorkflowStep) else WorkflowStep(s) for s in steps
        )
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"{workflow_type}: step names repeat: {names}")
        self._context: WorkflowContext | None = None

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> WorkflowStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"{self.workflow_type} has no step {name!r}")

    def bind(self, context: WorkflowContext) -> TicketWorkflow:
        """Give the workflow the ticket it runs for (the runtime does this)."""
        self._context = context
        return self

    @property
    def context(self) -> WorkflowContext:
        if self._context is None:
            raise RuntimeError("bind a WorkflowContext before running a step")
        return self._context

    async def execute_step(self, step_name: str) -> WorkflowResult:
        """Run one step: by default the coroutine method ``step_<name>``."""
        method = getattr(self, f"step_{step_name}", None)
        if method is None:
            return WorkflowResult(
                success=False,
                step_name=step_name,
                message=f"{type(self).__name__} has no step_{step_name} method",
                retryable=False,
            )
        result: WorkflowResult = await method()
        return result


def following_step(
    steps: Sequence[str], current: str, result: WorkflowResult
) -> tuple[str | None, list[str]]:
    """The step after ``current`` under ``result``, and the steps skipped.

    A named ``next_step`` wins (a jump back repeats steps, a jump ahead
    skips the ones between); else the next step in order that is not in
    ``result.skip``. ``None`` when the workflow is done.
    """
    index = steps.index(current)
    if result.next_step is not None:
        if result.next_step not in steps:
            raise ValueError(f"no step {result.next_step!r} to go to")
        target = steps.index(result.next_step)
        skipped = list(steps[index + 1 : target]) if target > index else []
        return result.next_step, skipped
    skipped = []
    for name in steps[index + 1 :]:
        if name in result.skip:
            skipped.append(name)
            continue
        return name, skipped
    return None, skipped
