"""SLA policies and deadline arithmetic on a business calendar (pure).

A ticket has up to three SLA targets, each a clock of business minutes:

- ``first_response``: from creation to the first public agent reply;
- ``resolution``: from creation (or the last reopen) to the resolution;
- ``next_reply``: from a public customer comment to the next public agent
  reply.

A clock pauses while the ticket is in a status its policy lists under
``pause_on`` (by default the resolution clock in ``pending``) and each
pause pushes the due time out by the business time it lasted. Pauses are
the intervals recorded by ``SLAPaused``/``SLAResumed`` events, so changing
the priority or the policy recomputes the due time from the same start and
the same pauses: no paused time is ever lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.defaults import DEFAULT_WARNING_PERCENT
from dotmac.ticketing.domain.rules import TicketFacts, matches
from dotmac.ticketing.domain.tenant_config import SLATarget, TenantConfig, calendar_of

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
NEXT_REPLY = "next_reply"
TARGETS: tuple[str, ...] = (FIRST_RESPONSE, RESOLUTION, NEXT_REPLY)

#: The automation whose events start, pause, resume and stop the clocks.
SLA_CLOCKS = "sla"

#: The settings key of each target's minutes in ``sla_config.<priority>``.
SETTINGS_KEYS: Mapping[str, str] = {
    FIRST_RESPONSE: "response",
    RESOLUTION: "resolution",
    NEXT_REPLY: "next_reply",
}

DEFAULT_POLICY = "default"
#: Statuses that pause each target unless a policy says otherwise.
DEFAULT_PAUSE_ON: Mapping[str, tuple[str, ...]] = {
    FIRST_RESPONSE: (),
    RESOLUTION: ("pending",),
    NEXT_REPLY: (),
}

Pause = Mapping[str, datetime | None]


@dataclass(frozen=True)
class SLAPolicy:
    """The policy a ticket is measured against, frozen at a settings version.

    ``targets`` maps each priority to its minutes per target. The whole
    table is kept (not just the ticket's priority) so that the snapshot on
    the ticket explains any later recomputation.
    """

    name: str
    settings_version: int
    calendar: Mapping[str, Any] | str
    targets: Mapping[str, Mapping[str, float]]
    warning_percent: float = DEFAULT_WARNING_PERCENT
    pause_on: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PAUSE_ON)
    )

    def minutes(self, priority: str, target: str) -> float:
        return float(self.targets[priority][target])

    def pauses(self, target: str, status: str) -> bool:
        return status in self.pause_on.get(target, ())

    def business_calendar(self) -> BusinessCalendar:
        return _calendar(self.calendar)

    def snapshot(self) -> dict[str, Any]:
        """A plain, JSON-ready copy stored on the ``SLAStarted`` event."""
        return {
            "name": self.name,
            "settings_version": self.settings_version,
            "calendar": self.calendar
            if isinstance(self.calendar, str)
            else dict(self.calendar),
            "targets": {p: dict(t) for p, t in self.targets.items()},
            "warning_percent": self.warning_percent,
            "pause_on": {t: list(s) for t, s in self.pause_on.items()},
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> SLAPolicy:
        return cls(
            name=snapshot["name"],
            settings_version=int(snapshot["settings_version"]),
            calendar=snapshot["calendar"],
            targets={p: dict(t) for p, t in snapshot["targets"].items()},
            warning_percent=float(snapshot["warning_percent"]),
            pause_on={t: tuple(s) for t, s in snapshot["pause_on"].items()},
        )


def policy_for(
    config: TenantConfig, settings_version: int, facts: TicketFacts
) -> SLAPolicy:
    """The tenant's SLA policy for a ticket.

    ``sla_config.policies`` narrow the default by category, customer tier or
    any other condition: the first policy whose conditions match wins, and
    priorities it leaves out keep the default targets.
    """
    sla = config.sla
    base_targets = _targets(sla.targets)
    name = DEFAULT_POLICY
    targets = base_targets
    warning = sla.warning_percent
    pause_on = _pause_on(sla.pause_on, DEFAULT_PAUSE_ON)
    for policy in sla.policies:
        if matches(policy.conditions, facts):
            name = policy.name
            targets = {**base_targets, **_targets(policy.targets)}
            if policy.warning_percent is not None:
                warning = policy.warning_percent
            pause_on = _pause_on(policy.pause_on, pause_on)
            break
    hours = config.business_hours.config
    return SLAPolicy(
        name=name,
        settings_version=settings_version,
        calendar=hours if isinstance(hours, str) or hours is None else dict(hours),
        targets=targets,
        warning_percent=warning,
        pause_on=pause_on,
    )


def _targets(given: Mapping[str, SLATarget]) -> dict[str, dict[str, float]]:
    return {
        priority: {
            FIRST_RESPONSE: target.response,
            RESOLUTION: target.resolution,
            NEXT_REPLY: target.next_reply,
        }
        for priority, target in given.items()
    }


def _pause_on(
    given: Mapping[str, tuple[str, ...]] | None,
    fallback: Mapping[str, tuple[str, ...]],
) -> dict[str, tuple[str, ...]]:
    merged = {target: tuple(fallback.get(target, ())) for target in TARGETS}
    merged.update(given or {})
    return merged


# -- deadline arithmetic ------------------------------------------------------


def due_time(
    calendar: BusinessCalendar,
    started_at: datetime,
    minutes: float,
    pauses: Sequence[Pause] = (),
) -> datetime | None:
    """When ``minutes`` of running business time have passed since the start.

    Each pause that begins before the clock runs out holds the clock for its
    business duration. ``None`` while the clock is paused (an open pause
    reached before the due time): the due time is not known yet.
    """
    remaining = float(minutes)
    cursor = started_at
    for pause in sorted(pauses, key=_pause_start):
        start = _pause_start(pause)
        candidate = calendar.add_business_minutes(cursor, remaining)
        if candidate <= start:
            return candidate
        remaining -= calendar.business_minutes_between(cursor, start)
        end = pause["end"]
        if end is None:
            return None
        cursor = max(end, start)
    return calendar.add_business_minutes(cursor, remaining)


def business_minutes_used(
    calendar: BusinessCalendar,
    started_at: datetime,
    until: datetime,
    pauses: Sequence[Pause] = (),
) -> float:
    """Running business minutes of a clock between its start and ``until``."""
    total = calendar.business_minutes_between(started_at, until)
    return max(0.0, total - paused_minutes(calendar, pauses, until))


def paused_minutes(
    calendar: BusinessCalendar, pauses: Iterable[Pause], until: datetime
) -> float:
    """Business minutes spent paused up to ``until`` (open pauses count to it)."""
    total = 0.0
    for pause in pauses:
        start = _pause_start(pause)
        end = pause["end"] or until
        total += calendar.business_minutes_between(start, min(end, until))
    return total


def explain(
    policy: SLAPolicy,
    *,
    priority: str,
    target: str,
    started_at: datetime,
    pauses: Sequence[Pause],
    due_at: datetime | None,
    warning_at: datetime | None,
) -> dict[str, Any]:
    """Why a due time is what it is, as recorded on the event that set it."""
    calendar = policy.business_calendar()
    return {
        "policy": policy.name,
        "settings_version": policy.settings_version,
        "priority": priority,
        "target": target,
        "target_minutes": policy.minutes(priority, target),
        "warning_percent": policy.warning_percent,
        "calendar": policy.snapshot()["calendar"],
        "started_at": started_at.isoformat(),
        "paused": [
            {
                "start": _pause_start(p).isoformat(),
                "end": None if p["end"] is None else p["end"].isoformat(),
                "business_minutes": round(
                    calendar.business_minutes_between(
                        _pause_start(p), p["end"] or _pause_start(p)
                    ),
                    3,
                ),
            }
            for p in pauses
        ],
        "due_at": None if due_at is None else due_at.isoformat(),
        "warning_at": None if warning_at is None else warning_at.isoformat(),
    }


@dataclass(frozen=True)
class Deadline:
    """A target's due time and warning point under its pauses so far."""

    due_at: datetime | None
    warning_at: datetime | None


def deadline(
    policy: SLAPolicy,
    *,
    priority: str,
    target: str,
    started_at: datetime,
    pauses: Sequence[Pause],
) -> Deadline:
    calendar = policy.business_calendar()
    minutes = policy.minutes(priority, target)
    return Deadline(
        due_at=due_time(calendar, started_at, minutes, pauses),
        warning_at=due_time(
            calendar, started_at, minutes * policy.warning_percent / 100, pauses
        ),
    )


# -- reporting ----------------------------------------------------------------

RUNNING = "running"
PAUSED = "paused"
WARNING = "warning"
BREACHED = "breached"
MET = "met"
STOPPED = "stopped"


def target_state(clock: Mapping[str, Any], now: datetime) -> str:
    """running, paused, warning, breached, met or stopped (no longer measured).

    A stopped clock is ``breached`` when it stopped after its due time, else
    ``met``; one stopped without its goal (a ticket resolved without a
    public reply stops the first-response clock) is ``stopped``.
    """
    if clock.get("stopped_at") is not None:
        outcome = clock.get("outcome")
        return str(outcome) if outcome in (MET, BREACHED, STOPPED) else STOPPED
    due = clock.get("due_at")
    if clock.get("breached") or (due is not None and now >= due):
        return BREACHED
    if clock.get("due_at") is None:
        return PAUSED
    warning_at = clock.get("warning_at")
    if clock.get("warned") or (warning_at is not None and now >= warning_at):
        return WARNING
    return RUNNING


def stop_outcome(clock: Mapping[str, Any], at: datetime, *, goal_reached: bool) -> str:
    """How a clock ends: met, breached (late or already breached) or stopped."""
    if clock.get("breached"):
        return BREACHED
    due = clock.get("due_at")
    if due is not None and at > due:
        return BREACHED
    return MET if goal_reached else STOPPED


def _pause_start(pause: Pause) -> datetime:
    start = pause["start"]
    assert start is not None, "a pause always has a start"
    return start


def _calendar(config: Mapping[str, Any] | str) -> BusinessCalendar:
    # Tickets of a tenant share one calendar: parse it once per process.
    return calendar_of(config)
