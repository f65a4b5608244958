"""The circuit breaker of a webhook endpoint, as pure functions.

An endpoint that fails ``threshold`` times in a row is *paused*: its
pending deliveries stay in the ledger and are not attempted, so a receiver
that is down costs one attempt per cool-down instead of one per delivery,
and its deliveries keep their place instead of being given up. After
``cooldown`` one delivery is let through as a trial (half-open): a success
closes the breaker (every waiting delivery follows), a failure pauses the
endpoint for another cool-down. An admin may resume it at any time.

The dispatcher keeps the state in the ``webhooks`` row and applies these
functions under that row's lock, so concurrent outcomes for one endpoint
are counted one after the other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

ERROR_MAX = 2000


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive failures that pause the endpoint
    cooldown: timedelta = timedelta(minutes=5)  # until the trial delivery

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("the threshold is at least one failure")
        if self.cooldown <= timedelta(0):
            raise ValueError("the cool-down must be positive")


@dataclass(frozen=True)
class BreakerState:
    consecutive_failures: int = 0
    paused_at: datetime | None = None  # None: in service
    retry_at: datetime | None = None  # when a paused endpoint gets its trial
    last_error: str | None = None
    last_failure_at: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


class Admission(enum.Enum):
    """What the dispatcher may send to an endpoint now."""

    OPEN = "open"  # in service: as many as its concurrency allows
    TRIAL = "trial"  # paused, cool-down over: one delivery
    HOLD = "hold"  # paused: nothing


def admission(state: BreakerState, now: datetime) -> Admission:
    if not state.paused:
        return Admission.OPEN
    if state.retry_at is not None and now >= state.retry_at:
        return Admission.TRIAL
    return Admission.HOLD


def trial_started(
    state: BreakerState, now: datetime, policy: BreakerPolicy
) -> BreakerState:
    """A trial was claimed: no other until it ended or a cool-down passed.

    The next trial is scheduled now rather than when this one fails, so a
    dispatcher that dies mid-trial does not leave the endpoint paused for
    good, and two dispatchers never run a trial at once.
    """
    return replace(state, retry_at=now + policy.cooldown)


def succeeded(state: BreakerState) -> BreakerState:
    """A delivery was accepted: the endpoint is in service (again)."""
    return replace(state, consecutive_failures=0, paused_at=None, retry_at=None)


@dataclass(frozen=True)
class AfterFailure:
    state: BreakerState
    opened: bool  # this failure paused an endpoint that was in service


def failed(
    state: BreakerState, error: str, now: datetime, policy: BreakerPolicy
) -> AfterFailure:
    """Count a failure; pause the endpoint at the threshold."""
    failures = state.consecutive_failures + 1
    counted = replace(
        state,
        consecutive_failures=failures,
        last_error=error[:ERROR_MAX],
        last_failure_at=now,
    )
    if state.paused:  # a failed trial, or a send that was in flight: wait again
        return AfterFailure(replace(counted, retry_at=now + policy.cooldown), False)
    if failures < policy.threshold:
        return AfterFailure(counted, False)
    paused = replace(counted, paused_at=now, retry_at=now + policy.cooldown)
    return AfterFailure(paused, True)


def resumed(state: BreakerState) -> BreakerState:
    """An admin resumed the endpoint: in service, failures forgotten."""
    return succeeded(state)
