"""Each worker's heartbeat in PostgreSQL, and what readiness makes of them.

Every running worker (one row per worker and process: ``<host>:<pid>``)
writes its state every few seconds: ``running``, or ``down`` with the
reason (a part failed and is being restarted), and how many events it is
behind (``lag``; NULL when it cannot tell). The API's ``GET /ready`` reads
the rows, so readiness is the same whether the workers are threads of
``ticketing dev`` or processes of their own. Times are the database's
(``now()``), so the hosts' clocks need not agree.

A worker kind is fine when at least one of its instances wrote recently,
is running and is not too far behind: a replica that died beside a live
one does not make the service unready, and its row stays behind until the
same host and process id write again (a worker that stops cleanly removes
its own row).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

UPSERT_BEAT = """
INSERT INTO worker_status (worker, instance, state, reason, lag, beat_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (worker, instance) DO UPDATE SET state = EXCLUDED.state,
    reason = EXCLUDED.reason, lag = EXCLUDED.lag, beat_at = now()
"""

DELETE_BEAT = "DELETE FROM worker_status WHERE worker = %s AND instance = %s"

# Rows of this worker's instances that died long ago (a process id is not
# reused for ever), removed when another instance starts.
PRUNE_BEATS = """
DELETE FROM worker_status
 WHERE worker = %s AND beat_at < now() - interval '1 day'
"""

SELECT_BEATS = """
SELECT worker, instance, state, reason, lag, beat_at, now() AS now
  FROM worker_status ORDER BY worker, instance
"""

State = Literal["running", "down"]


def this_instance() -> str:
    """This process, as the ``instance`` of its rows."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Beat:
    """One worker instance's last report."""

    worker: str
    instance: str
    state: str
    reason: str | None
    lag: int | None
    beat_at: datetime


@dataclass(frozen=True)
class WorkerProblem:
    """Why a worker makes the service unready."""

    worker: str
    problem: Literal["down", "lagging"]
    reason: str

    def describe(self) -> str:
        return f"{self.worker} is {self.problem}: {self.reason}"


@dataclass(frozen=True)
class ReadinessPolicy:
    """What readiness asks of the workers (from the settings)."""

    # Workers that must be there; None: every worker that has reported.
    expected: tuple[str, ...] | None = None
    stale_after: timedelta = timedelta(seconds=30)
    max_lag: int = 1000


def worker_problems(
    beats: Iterable[Beat], *, now: datetime, policy: ReadinessPolicy
) -> list[WorkerProblem]:
    """The workers that are down or lagging, by name (empty: all is well)."""
    by_worker: dict[str, list[Beat]] = {}
    for beat in beats:
        by_worker.setdefault(beat.worker, []).append(beat)
    names: Sequence[str] = (
        policy.expected if policy.expected is not None else sorted(by_worker)
    )
    problems = []
    for name in names:
        problem = _problem(name, by_worker.get(name, []), now=now, policy=policy)
        if problem is not None:
            problems.append(problem)
    return problems


def _problem(
    name: str, beats: list[Beat], *, now: datetime, policy: ReadinessPolicy
) -> WorkerProblem | None:
    if not beats:
        return WorkerProblem(name, "down", "it has not reported (not started?)")
    fresh = [b for b in beats if now - b.beat_at <= policy.stale_after]
    if not fresh:
        last = max(b.beat_at for b in beats)
        seconds = (now - last).total_seconds()
        return WorkerProblem(
            name, "down", f"no heartbeat for {seconds:.0f} s (stopped or stuck)"
        )
    running = [b for b in fresh if b.state == "running"]
    if not running:
        return WorkerProblem(name, "down", "; ".join(b.reason or "down" for b in fresh))
    if all(b.lag is not None and b.lag > policy.max_lag for b in running):
        behind = min(b.lag or 0 for b in running)
        return WorkerProblem(
            name,
            "lagging",
            f"{behind} events behind (more than {policy.max_lag})",
        )
    return None


def beats_from_rows(rows: Iterable[dict[str, Any]]) -> tuple[list[Beat], datetime]:
    """The beats of ``SELECT_BEATS`` rows, and the database's time."""
    beats = []
    now: datetime | None = None
    for row in rows:
        now = row["now"]
        beats.append(
            Beat(
                worker=row["worker"],
                instance=row["instance"],
                state=row["state"],
                reason=row["reason"],
                lag=row["lag"],
                beat_at=row["beat_at"],
            )
        )
    return beats, now or datetime.now().astimezone()


def current_worker_problems(
    datastore: Any, policy: ReadinessPolicy
) -> list[WorkerProblem]:
    """Read the heartbeats and judge them (``datastore``: the API's own)."""
    if policy.expected == ():
        return []
    with datastore.transaction(commit=False) as cur:
        cur.execute(SELECT_BEATS)
        beats, now = beats_from_rows(cur.fetchall())
    return worker_problems(beats, now=now, policy=policy)


def readiness_policy(
    expected: tuple[str, ...] | None, *, stale_seconds: float, max_lag: int
) -> ReadinessPolicy:
    return ReadinessPolicy(
        expected=expected,
        stale_after=timedelta(seconds=stale_seconds),
        max_lag=max_lag,
    )
