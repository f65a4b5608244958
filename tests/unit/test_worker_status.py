"""Readiness from heartbeats: down, stale, lagging, replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dotmac.ticketing.store.worker_status import (
    Beat,
    ReadinessPolicy,
    WorkerProblem,
    worker_problems,
)

NOW = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
POLICY = ReadinessPolicy(stale_after=timedelta(seconds=30), max_lag=100)


def beat(
    worker: str,
    *,
    instance: str = "host:1",
    state: str = "running",
    reason: str | None = None,
    lag: int | None = 0,
    age: float = 1.0,
) -> Beat:
    return Beat(
        worker=worker,
        instance=instance,
        state=state,
        reason=reason,
        lag=lag,
        beat_at=NOW - timedelta(seconds=age),
    )


def test_running_workers_within_the_lag_are_ready() -> None:
    beats = [beat("projections", lag=100), beat("relay", lag=None)]
    assert worker_problems(beats, now=NOW, policy=POLICY) == []


def test_a_worker_restarting_after_a_failure_is_down_with_its_reason() -> None:
    beats = [beat("projections", state="down", reason="worker: OperationalError")]
    assert worker_problems(beats, now=NOW, policy=POLICY) == [
        WorkerProblem("projections", "down", "worker: OperationalError")
    ]


def test_a_silent_worker_is_down() -> None:
    (problem,) = worker_problems([beat("relay", age=31)], now=NOW, policy=POLICY)
    assert problem.problem == "down"
    assert problem.reason == "no heartbeat for 31 s (stopped or stuck)"


def test_a_worker_too_far_behind_is_lagging() -> None:
    (problem,) = worker_problems([beat("notifier", lag=101)], now=NOW, policy=POLICY)
    assert problem == WorkerProblem(
        "notifier", "lagging", "101 events behind (more than 100)"
    )


def test_one_live_replica_is_enough() -> None:
    beats = [
        beat("timers", instance="a:1", age=300),  # SIGKILLed long ago
        beat("timers", instance="b:1", state="down", reason="consumer: boom"),
        beat("timers", instance="c:1", lag=3),
    ]
    assert worker_problems(beats, now=NOW, policy=POLICY) == []


def test_expected_workers_that_never_reported_are_down() -> None:
    policy = ReadinessPolicy(expected=("projections", "relay"), max_lag=100)
    (problem,) = worker_problems([beat("projections")], now=NOW, policy=policy)
    assert problem.worker == "relay"
    assert problem.problem == "down"


def test_only_the_expected_workers_count() -> None:
    policy = ReadinessPolicy(expected=(), max_lag=100)
    assert worker_problems([beat("relay", age=999)], now=NOW, policy=policy) == []
