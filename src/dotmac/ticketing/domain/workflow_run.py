"""A ticket's workflow run as a value: where it stands and what comes next.

:class:`WorkflowRun` is frozen: each workflow event of the ticket replaces
the run with the one a transition here returns, and the ticket asks the run
what to record (is a step current, is a retry or wake-up due, which step
follows, how a step's result is recorded: :meth:`WorkflowRun.decide`).

Stored snapshots hold the run as a plain dictionary (``to_state`` and
``from_state`` keep that shape, the one stored before this class).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from dotmac.ticketing.domain.workflow import (
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    WAITING,
    RetryPolicy,
    WorkflowResult,
    following_step,
)

#: The statuses in which the current step runs (or runs again on a change).
LIVE: tuple[str, ...] = (RUNNING, WAITING)


@dataclass(frozen=True)
class StepRecord:
    """A completed step's result."""

    data: Mapping[str, Any]
    message: str
    completed_at: datetime
    completed_by: Mapping[str, str]
    actions: tuple[Mapping[str, Any], ...]

    def to_state(self) -> dict[str, Any]:
        return {
            "data": dict(self.data),
            "message": self.message,
            "completed_at": self.completed_at,
            "completed_by": dict(self.completed_by),
            "actions": [dict(a) for a in self.actions],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StepRecord:
        return cls(
            data=dict(state["data"]),
            message=state["message"],
            completed_at=state["completed_at"],
            completed_by=dict(state["completed_by"]),
            actions=tuple(dict(a) for a in state["actions"]),
        )


@dataclass(frozen=True)
class StepWait:
    """What the current step waits for, and since when."""

    message: str
    data: Mapping[str, Any]
    wake_at: datetime | None
    since: datetime
    #: The version of the wait's event (absent from the oldest snapshots).
    since_version: int | None

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "message": self.message,
            "data": dict(self.data),
            "wake_at": self.wake_at,
            "since": self.since,
        }
        if self.since_version is not None:
            state["since_version"] = self.since_version
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StepWait:
        return cls(
            message=state["message"],
            data=dict(state["data"]),
            wake_at=state["wake_at"],
            since=state["since"],
            since_version=state.get("since_version"),
        )


@dataclass(frozen=True)
class StepFailure:
    """The current step's failed run; tried again at ``retry_at`` if set."""

    attempt: int
    error: str
    retry_at: datetime | None
    failed_at: datetime

    def to_state(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "error": self.error,
            "retry_at": self.retry_at,
            "failed_at": self.failed_at,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StepFailure:
        return cls(
            attempt=state["attempt"],
            error=state["error"],
            retry_at=state["retry_at"],
            failed_at=state["failed_at"],
        )


@dataclass(frozen=True)
class StepDue:
    """The current step runs again: its attempt, and why."""

    attempt: int
    reason: Literal["retry", "wake", "manual retry"]


@dataclass(frozen=True)
class StepVerdict:
    """How a step's result is recorded on the ticket.

    ``fail``: with ``retry_at`` (None: not automatically); ``wait``: the
    step waits; ``complete``: the workflow goes on to ``next_step`` (None:
    it is done), past the ``skipped`` steps.
    """

    kind: Literal["fail", "wait", "complete"]
    retry_at: datetime | None = None
    next_step: str | None = None
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowRun:
    """The ticket's workflow: its steps, where it stands, each step's result."""

    type: str
    steps: tuple[str, ...]
    status: str
    current: str | None
    attempt: int
    visits: Mapping[str, int]
    results: Mapping[str, StepRecord]
    skipped: tuple[str, ...]
    waiting: StepWait | None
    failure: StepFailure | None
    started_at: datetime
    completed_at: datetime | None
    #: The version whose event made the current step due: the runtime runs
    #: a step for that event only, not for every later one it meets.
    #: (Absent from the oldest snapshots.)
    entered_version: int | None
    #: The step it was at when cancelled.
    cancelled_step: str | None = None

    # -- what it is -------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, CANCELLED)

    @property
    def live(self) -> bool:
        """Running or waiting: the current step runs (again)."""
        return self.status in LIVE

    def is_current(self, step: str, attempt: int | None) -> bool:
        """Is ``step`` (at ``attempt``; None: any) the live step?"""
        return (
            self.current == step
            and self.live
            and (attempt is None or attempt == self.attempt)
        )

    def visit(self, step: str) -> int:
        return self.visits.get(step, 1)

    def step_after(self, step: str) -> str | None:
        index = self.steps.index(step)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None

    def waits_on(self, message: str, data: Mapping[str, Any], wake: Any) -> bool:
        """Does the step already wait on exactly this?"""
        w = self.waiting
        return w is not None and (w.message, w.data, w.wake_at) == (message, data, wake)

    def wake_time(self) -> datetime | None:
        """When the timers must wake the run (a retry or a wait), if ever."""
        if self.status == FAILED and self.failure is not None:
            return self.failure.retry_at
        if self.status == WAITING and self.waiting is not None:
            return self.waiting.wake_at
        return None

    def result_data(self) -> dict[str, Mapping[str, Any]]:
        """Each completed step's data, as later steps read it."""
        return {name: record.data for name, record in self.results.items()}

    # -- decisions --------------------------------------------------------

    def step_due(self, at: datetime) -> StepDue | None:
        """A failed step's retry time, or a waiting step's wake-up time, came."""
        if self.status == FAILED and self.failure is not None:
            retry_at = self.failure.retry_at
            if retry_at is None or at < retry_at:
                return None
            return StepDue(self.failure.attempt + 1, "retry")
        if self.status == WAITING and self.waiting is not None:
            wake_at = self.waiting.wake_at
            if wake_at is None or at < wake_at:
                return None
            return StepDue(self.attempt, "wake")
        return None

    def manual_retry(self) -> StepDue | None:
        """A person runs the failed step again; None: nothing failed."""
        if self.status != FAILED or self.failure is None:
            return None
        return StepDue(self.failure.attempt + 1, "manual retry")

    def decide(
        self,
        step: str,
        attempt: int,
        result: WorkflowResult,
        *,
        retry: RetryPolicy,
        at: datetime,
    ) -> StepVerdict | None:
        """How ``result`` of ``step``'s ``attempt`` is recorded; None: it is
        not (recorded already, or the workflow moved on)."""
        if not self.is_current(step, attempt):
            return None
        if not result.success:
            retry_at = retry.retry_at(attempt, at) if result.retryable else None
            return StepVerdict("fail", retry_at=retry_at)
        if result.requires_action:
            return StepVerdict("wait")
        next_step, skipped = following_step(self.steps, step, result)
        return StepVerdict("complete", next_step=next_step, skipped=tuple(skipped))

    # -- what its events make of it -------------------------------------------

    @classmethod
    def started(
        cls, workflow_type: str, steps: list[str], *, at: datetime, version: int
    ) -> WorkflowRun:
        first = steps[0]
        return cls(
            type=workflow_type,
            steps=tuple(steps),
            status=RUNNING,
            current=first,
            attempt=1,
            visits={first: 1},
            results={},
            skipped=(),
            waiting=None,
            failure=None,
            started_at=at,
            completed_at=None,
            entered_version=version,
        )

    def with_step_completed(
        self,
        step: str,
        record: StepRecord,
        *,
        next_step: str | None,
        skipped: list[str],
        version: int,
    ) -> WorkflowRun:
        run = replace(
            self,
            results={**self.results, step: record},
            skipped=(*self.skipped, *skipped),
            waiting=None,
            failure=None,
            current=next_step,
        )
        if next_step is None:
            return run
        return replace(
            run,
            status=RUNNING,
            attempt=1,
            entered_version=version,
            visits={**self.visits, next_step: self.visits.get(next_step, 0) + 1},
        )

    def with_wait(self, wait: StepWait) -> WorkflowRun:
        return replace(self, status=WAITING, waiting=wait)

    def with_failure(self, failure: StepFailure) -> WorkflowRun:
        return replace(self, status=FAILED, failure=failure)

    def with_step_due(self, attempt: int, *, version: int) -> WorkflowRun:
        return replace(
            self,
            status=RUNNING,
            attempt=attempt,
            failure=None,
            waiting=None,
            entered_version=version,
        )

    def completed(self, at: datetime) -> WorkflowRun:
        return replace(self, status=COMPLETED, current=None, completed_at=at)

    def cancelled(self, at: datetime, step: str | None) -> WorkflowRun:
        return replace(
            self,
            status=CANCELLED,
            cancelled_step=step,
            current=None,
            waiting=None,
            failure=None,
            completed_at=at,
        )

    # -- stored shape -----------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "type": self.type,
            "steps": list(self.steps),
            "status": self.status,
            "current": self.current,
            "attempt": self.attempt,
            "visits": dict(self.visits),
            "results": {name: r.to_state() for name, r in self.results.items()},
            "skipped": list(self.skipped),
            "waiting": None if self.waiting is None else self.waiting.to_state(),
            "failure": None if self.failure is None else self.failure.to_state(),
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        }
        if self.entered_version is not None:
            state["entered_version"] = self.entered_version
        if self.status == CANCELLED:
            state["cancelled_step"] = self.cancelled_step
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> WorkflowRun:
        waiting, failure = state["waiting"], state["failure"]
        return cls(
            type=state["type"],
            steps=tuple(state["steps"]),
            status=state["status"],
            current=state["current"],
            attempt=int(state["attempt"]),
            visits=dict(state["visits"]),
            results={
                name: StepRecord.from_state(r) for name, r in state["results"].items()
            },
            skipped=tuple(state["skipped"]),
            waiting=None if waiting is None else StepWait.from_state(waiting),
            failure=None if failure is None else StepFailure.from_state(failure),
            started_at=state["started_at"],
            completed_at=state["completed_at"],
            entered_version=state.get("entered_version"),
            cancelled_step=state.get("cancelled_step"),
        )
