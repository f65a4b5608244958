"""A ticket's SLA clocks as values: what each clock records and what it decides.

:class:`SlaClock` is one target's clock (start, pauses, due and warning
times, outcome); :class:`SlaClocks` the ticket's clocks by target, in the
order they first started. Both are frozen: the ticket's events replace a
clock with the one its ``with_*`` method returns, and the ticket asks the
clocks what to record (:meth:`SlaClocks.alerts_due`,
:meth:`SlaClocks.follow_status`, :meth:`SlaClocks.recalculations`).

Stored snapshots hold the clocks as plain dictionaries (``to_state`` and
``from_state`` keep that shape, the one stored before these classes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from dotmac.ticketing.domain import sla
from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.sla import SLAPolicy


@dataclass(frozen=True)
class ClockPause:
    """A time a clock stood still; ``end`` None while it still does."""

    start: datetime
    end: datetime | None = None

    def as_dict(self) -> dict[str, datetime | None]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class SlaClock:
    """One target's clock of business minutes."""

    target_minutes: float
    started_at: datetime
    pauses: tuple[ClockPause, ...]
    due_at: datetime | None
    warning_at: datetime | None
    explanation: Mapping[str, Any]
    warned: bool = False
    breached: bool = False
    stopped_at: datetime | None = None
    outcome: str | None = None
    #: Recorded when the clock stops (None before).
    business_minutes_used: float | None = None

    # -- what it is -------------------------------------------------------

    @property
    def running(self) -> bool:
        """Not stopped (it may be paused)."""
        return self.stopped_at is None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].end is None

    def pause_dicts(self) -> list[dict[str, datetime | None]]:
        """The pauses as the SLA arithmetic (``domain.sla``) reads them."""
        return [p.as_dict() for p in self.pauses]

    def minutes_used(self, calendar: BusinessCalendar, until: datetime) -> float:
        return sla.business_minutes_used(
            calendar, self.started_at, until, self.pause_dicts()
        )

    def state_at(self, now: datetime) -> str:
        """running, paused, warning, breached, met or stopped (``sla.target_state``)."""
        return sla.target_state(self.to_state(), now)

    def outcome_if_stopped(self, at: datetime, *, goal_reached: bool) -> str:
        return sla.stop_outcome(self.to_state(), at, goal_reached=goal_reached)

    # -- what its events make of it -------------------------------------------

    @classmethod
    def started(
        cls,
        *,
        at: datetime,
        target_minutes: float,
        due_at: datetime | None,
        warning_at: datetime | None,
        explanation: Mapping[str, Any],
    ) -> SlaClock:
        return cls(
            target_minutes=target_minutes,
            started_at=at,
            pauses=(),
            due_at=due_at,
            warning_at=warning_at,
            explanation=dict(explanation),
        )

    def with_targets(
        self,
        *,
        at: datetime,
        target_minutes: float,
        due_at: datetime | None,
        warning_at: datetime | None,
        explanation: Mapping[str, Any],
    ) -> SlaClock:
        """Recalculated: new targets from the same start and pauses."""
        # A later warning point is a new warning to give, but not after a
        # breach: a breach is final (a priority lowered after it must not
        # bring a second warning, after the breach at that).
        warn_again = warning_at is not None and warning_at > at and not self.breached
        return replace(
            self,
            target_minutes=target_minutes,
            due_at=due_at,
            warning_at=warning_at,
            explanation=dict(explanation),
            warned=False if warn_again else self.warned,
        )

    def with_pause(self, at: datetime) -> SlaClock:
        # Only a point still ahead becomes unknown (sla.due_time): one
        # already passed stays, or a clock that fell due before a late
        # timer checked it would read "paused" and stop as "met".
        def ahead_unknown(point: datetime | None) -> datetime | None:
            return None if point is not None and point > at else point

        return replace(
            self,
            pauses=(*self.pauses, ClockPause(at)),
            due_at=ahead_unknown(self.due_at),
            warning_at=ahead_unknown(self.warning_at),
        )

    def resumed(
        self,
        *,
        at: datetime,
        due_at: datetime | None,
        warning_at: datetime | None,
        explanation: Mapping[str, Any],
    ) -> SlaClock:
        return replace(
            self,
            pauses=self._pauses_ended(at),
            due_at=due_at,
            warning_at=warning_at,
            explanation=dict(explanation),
        )

    def stopped(self, *, at: datetime, outcome: str, minutes_used: float) -> SlaClock:
        pauses = self._pauses_ended(at) if self.paused else self.pauses
        return replace(
            self,
            stopped_at=at,
            outcome=outcome,
            business_minutes_used=minutes_used,
            pauses=pauses,
        )

    def with_warning(self) -> SlaClock:
        return replace(self, warned=True)

    def with_breach(self) -> SlaClock:
        return replace(self, breached=True, warned=True)

    def _pauses_ended(self, at: datetime) -> tuple[ClockPause, ...]:
        return (*self.pauses[:-1], replace(self.pauses[-1], end=at))

    # -- stored shape -----------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "target_minutes": self.target_minutes,
            "started_at": self.started_at,
            "pauses": self.pause_dicts(),
            "due_at": self.due_at,
            "warning_at": self.warning_at,
            "warned": self.warned,
            "breached": self.breached,
            "stopped_at": self.stopped_at,
            "outcome": self.outcome,
            "explanation": dict(self.explanation),
        }
        if self.business_minutes_used is not None:
            state["business_minutes_used"] = self.business_minutes_used
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SlaClock:
        return cls(
            target_minutes=state["target_minutes"],
            started_at=state["started_at"],
            pauses=tuple(ClockPause(p["start"], p["end"]) for p in state["pauses"]),
            due_at=state["due_at"],
            warning_at=state["warning_at"],
            explanation=dict(state["explanation"]),
            warned=bool(state["warned"]),
            breached=bool(state["breached"]),
            stopped_at=state["stopped_at"],
            outcome=state["outcome"],
            business_minutes_used=state.get("business_minutes_used"),
        )


@dataclass(frozen=True)
class ClockAlert:
    """A warning or breach a clock owes at a time.

    ``minutes`` is what the event reports: business minutes left for a
    warning, used for a breach.
    """

    kind: Literal["warning", "breach"]
    target: str
    due_at: datetime
    minutes: float


@dataclass(frozen=True)
class ClockMove:
    """A running clock the ticket's new status pauses or resumes."""

    kind: Literal["pause", "resume"]
    target: str
    #: For a resume: the due time and warning point with the pause ended.
    deadline: sla.Deadline | None = None
    paused_minutes: float = 0.0
    explanation: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Recalculation:
    """A running clock's new targets under a (new) policy or priority."""

    target: str
    target_minutes: float
    deadline: sla.Deadline
    explanation: Mapping[str, Any]


@dataclass(frozen=True)
class SlaClocks:
    """A ticket's clocks by target, in the order each first started."""

    entries: tuple[tuple[str, SlaClock], ...] = ()

    def __iter__(self) -> Iterator[tuple[str, SlaClock]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, target: str) -> SlaClock | None:
        return next((c for t, c in self.entries if t == target), None)

    def __getitem__(self, target: str) -> SlaClock:
        clock = self.get(target)
        if clock is None:
            raise KeyError(target)
        return clock

    def running(self) -> list[tuple[str, SlaClock]]:
        return [(t, c) for t, c in self.entries if c.running]

    def is_running(self, target: str) -> bool:
        clock = self.get(target)
        return clock is not None and clock.running

    def with_clock(self, target: str, clock: SlaClock) -> SlaClocks:
        """``clock`` for ``target``; a restarted clock keeps its place."""
        if self.get(target) is None:
            return SlaClocks((*self.entries, (target, clock)))
        return SlaClocks(
            tuple((t, clock if t == target else c) for t, c in self.entries)
        )

    def due_times(self) -> dict[str, datetime | None]:
        """Each running clock's due time (None while paused)."""
        return {t: c.due_at for t, c in self.running()}

    # -- decisions --------------------------------------------------------

    def alerts_due(self, at: datetime, calendar: BusinessCalendar) -> list[ClockAlert]:
        """The warnings and breaches due by ``at`` and not yet recorded."""
        alerts: list[ClockAlert] = []
        for target, clock in self.running():
            due, warning_at = clock.due_at, clock.warning_at
            if due is None:
                continue
            used = clock.minutes_used(calendar, at)
            if not clock.warned and warning_at is not None and at >= warning_at:
                left = round(max(0.0, clock.target_minutes - used), 3)
                alerts.append(ClockAlert("warning", target, due, left))
            if not clock.breached and at >= due:
                alerts.append(ClockAlert("breach", target, due, round(used, 3)))
        return alerts

    def follow_status(
        self, policy: SLAPolicy, *, status: str, priority: str, at: datetime
    ) -> list[ClockMove]:
        """Pause or resume each running clock as ``status`` asks."""
        moves: list[ClockMove] = []
        for target, clock in self.running():
            should_pause = policy.pauses(target, status)
            if should_pause and not clock.paused:
                moves.append(ClockMove("pause", target))
            elif clock.paused and not should_pause:
                pauses = clock._pauses_ended(at)
                pause_dicts = [p.as_dict() for p in pauses]
                deadline = clock_deadline(
                    policy, priority, target, clock.started_at, pause_dicts
                )
                moves.append(
                    ClockMove(
                        "resume",
                        target,
                        deadline=deadline,
                        paused_minutes=round(
                            sla.paused_minutes(
                                policy.business_calendar(), pause_dicts, at
                            ),
                            3,
                        ),
                        explanation=explain(
                            policy,
                            priority,
                            target,
                            clock.started_at,
                            pause_dicts,
                            deadline,
                        ),
                    )
                )
        return moves

    def recalculations(
        self,
        policy: SLAPolicy,
        *,
        priority: str,
        recorded_policy: Mapping[str, Any] | None,
    ) -> list[Recalculation]:
        """The running clocks whose targets ``policy`` changes.

        ``recorded_policy`` is the snapshot the ticket is measured against:
        when the policy differs every running clock records it.
        """
        policy_changed = policy.snapshot() != recorded_policy
        changes: list[Recalculation] = []
        for target, clock in self.running():
            pauses = clock.pause_dicts()
            deadline = clock_deadline(
                policy, priority, target, clock.started_at, pauses
            )
            minutes = policy.minutes(priority, target)
            unchanged = (
                deadline.due_at == clock.due_at
                and minutes == clock.target_minutes
                and not policy_changed
            )
            if unchanged:
                continue
            changes.append(
                Recalculation(
                    target,
                    minutes,
                    deadline,
                    explain(
                        policy, priority, target, clock.started_at, pauses, deadline
                    ),
                )
            )
        return changes

    def report(self, calendar: BusinessCalendar, now: datetime) -> dict[str, Any]:
        """Per target: state, due time, business minutes used and left, pauses."""
        report = {}
        for target, clock in self.entries:
            used = clock.business_minutes_used
            if used is None:
                used = clock.minutes_used(calendar, clock.stopped_at or now)
            report[target] = {
                "state": clock.state_at(now),
                "target_minutes": clock.target_minutes,
                "started_at": clock.started_at,
                "due_at": clock.due_at,
                "warning_at": clock.warning_at,
                "stopped_at": clock.stopped_at,
                "business_minutes_used": round(used, 3),
                "business_minutes_left": round(
                    max(0.0, clock.target_minutes - used), 3
                ),
                "pauses": clock.pause_dicts(),
                "explanation": clock.explanation,
            }
        return report

    # -- stored shape -----------------------------------------------------

    def to_state(self) -> dict[str, dict[str, Any]]:
        return {target: clock.to_state() for target, clock in self.entries}

    @classmethod
    def from_state(cls, state: Mapping[str, Mapping[str, Any]] | None) -> SlaClocks:
        return cls(
            tuple(
                (target, SlaClock.from_state(clock))
                for target, clock in (state or {}).items()
            )
        )


def clock_deadline(
    policy: SLAPolicy,
    priority: str,
    target: str,
    started_at: datetime,
    pauses: list[dict[str, datetime | None]],
) -> sla.Deadline:
    return sla.deadline(
        policy, priority=priority, target=target, started_at=started_at, pauses=pauses
    )


def explain(
    policy: SLAPolicy,
    priority: str,
    target: str,
    started_at: datetime,
    pauses: list[dict[str, datetime | None]],
    deadline: sla.Deadline | None = None,
) -> dict[str, Any]:
    """Why the clock's due time is what it is (``sla.explain``); ``deadline``
    the one :func:`clock_deadline` gave for the same clock, if at hand."""
    if deadline is None:
        deadline = clock_deadline(policy, priority, target, started_at, pauses)
    return sla.explain(
        policy,
        priority=priority,
        target=target,
        started_at=started_at,
        pauses=pauses,
        due_at=deadline.due_at,
        warning_at=deadline.warning_at,
    )
