"""The webhook circuit breaker's transitions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dotmac.ticketing.consumers.notify.circuit_breaker import (
    Admission,
    BreakerPolicy,
    BreakerState,
    admission,
    failed,
    resumed,
    succeeded,
    trial_started,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = BreakerPolicy(threshold=3, cooldown=timedelta(minutes=5))


def fail(state: BreakerState, times: int, at: datetime = NOW) -> BreakerState:
    for _ in range(times):
        state = failed(state, "answered 500", at, POLICY).state
    return state


def test_it_opens_at_the_threshold_of_consecutive_failures() -> None:
    below = fail(BreakerState(), 2)
    assert not below.paused and below.consecutive_failures == 2
    assert admission(below, NOW) is Admission.OPEN

    after = failed(below, "answered 500", NOW, POLICY)

    assert after.opened
    assert after.state.paused_at == NOW
    assert after.state.retry_at == NOW + POLICY.cooldown
    assert after.state.last_error == "answered 500"
    assert admission(after.state, NOW) is Admission.HOLD


def test_a_success_in_between_starts_the_count_again() -> None:
    state = succeeded(fail(BreakerState(), 2))
    assert state.consecutive_failures == 0
    assert not failed(fail(state, 1), "x", NOW, POLICY).opened


def test_after_the_cool_down_one_trial_is_admitted() -> None:
    paused = fail(BreakerState(), 3)
    assert admission(paused, NOW + POLICY.cooldown - timedelta(seconds=1)) is (
        Admission.HOLD
    )
    assert admission(paused, NOW + POLICY.cooldown) is Admission.TRIAL
    # Claiming the trial holds the next one back a cool-down.
    later = NOW + POLICY.cooldown
    trying = trial_started(paused, later, POLICY)
    assert admission(trying, later) is Admission.HOLD
    assert trying.retry_at == later + POLICY.cooldown


def test_a_failed_trial_pauses_again_without_a_new_alarm() -> None:
    later = NOW + POLICY.cooldown
    after = failed(fail(BreakerState(), 3), "timed out", later, POLICY)
    assert not after.opened
    assert after.state.paused_at == NOW  # paused since the first time
    assert after.state.retry_at == later + POLICY.cooldown
    assert after.state.last_error == "timed out"


def test_a_successful_trial_or_a_resume_closes_it() -> None:
    paused = fail(BreakerState(), 3)
    for closed in (succeeded(paused), resumed(paused)):
        assert not closed.paused and closed.retry_at is None
        assert closed.consecutive_failures == 0
        assert closed.last_error == "answered 500"  # kept, for the admin
        assert admission(closed, NOW) is Admission.OPEN


def test_errors_are_kept_short() -> None:
    state = failed(BreakerState(), "x" * 10_000, NOW, POLICY).state
    assert state.last_error is not None and len(state.last_error) == 2000


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"cooldown": timedelta(0)}])
def test_a_policy_must_make_sense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]
