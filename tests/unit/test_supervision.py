"""The one restart mechanism: back-off, and what the worker's health says."""

from __future__ import annotations

import asyncio

from dotmac.ticketing.consumers.supervision import (
    WorkerHealth,
    current_health,
    restarting,
    supervise,
)
from dotmac.ticketing.service.backoff import Backoff

FAST = Backoff(initial=0.01, maximum=0.05, jitter=0.0, settle=0.05)


def health() -> WorkerHealth:
    found = current_health()
    assert found is not None
    return found


def test_delays_double_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_a_failing_part_is_down_until_its_restart_has_settled() -> None:
    seen: list[tuple[str, str | None]] = []
    attempts = 0

    async def flaky(stop: asyncio.Event) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionResetError("database went away")
        seen.append((health().state, health().reason))  # restarted, not settled
        await asyncio.sleep(FAST.settle * 3)
        seen.append((health().state, health().reason))
        stop.set()

    async def main(stop: asyncio.Event) -> None:
        await restarting("test", "part", flaky, stop)

    asyncio.run(supervise("test", main, asyncio.Event(), backoff=FAST))
    assert attempts == 3
    assert seen == [
        ("down", "part: ConnectionResetError: database went away"),
        ("running", None),
    ]


def test_a_whole_worker_that_fails_to_start_is_started_again() -> None:
    attempts = 0
    reasons: list[str | None] = []

    async def main(stop: asyncio.Event) -> None:
        nonlocal attempts
        attempts += 1
        reasons.append(health().reason)
        if attempts < 3:
            raise RuntimeError("the database is not up yet")
        stop.set()

    asyncio.run(
        asyncio.wait_for(supervise("test", main, asyncio.Event(), backoff=FAST), 5)
    )
    assert attempts == 3
    assert reasons == [
        None,
        "worker: RuntimeError: the database is not up yet",
        "worker: RuntimeError: the database is not up yet",
    ]


def test_a_part_asked_to_stop_is_not_restarted() -> None:
    calls = 0

    async def part(stop: asyncio.Event) -> None:
        nonlocal calls
        calls += 1

    async def main(stop: asyncio.Event) -> None:
        await restarting("test", "part", part, stop)

    asyncio.run(supervise("test", main, asyncio.Event(), backoff=FAST))
    assert calls == 1
