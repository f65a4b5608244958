"""How every worker runs: restarts with back-off, a heartbeat, a thread or a process.

Each worker (projections, relay, notifier, timers, workflows) is a
coroutine ``main(stop)``. The pieces here give them one shape:

- :func:`restarting` runs a part again after any failure, waiting longer
  after each (:class:`Backoff`); the whole worker runs under it too, so a
  failure while starting (the database away) is retried like one later;
- :class:`WorkerHealth` is what the worker's parts say about themselves:
  a part that failed is ``down`` (with the error) until its restart has
  run for ``Backoff.settle`` seconds, and lag probes tell how far behind
  the worker is;
- :func:`heartbeat` writes that to the ``worker_status`` table every few
  seconds and on every change, which the API's ``/ready`` reads
  (``store/worker_status.py``);
- :class:`Supervision` holds the values these take (the entry layer
  reads them from the settings);
- the worker runs either as the process (:func:`serve`: ``ticketing
  worker <name>``, stopped by SIGTERM or Ctrl-C) or on a daemon thread of
  another process (:func:`start_in_thread`: ``ticketing dev``, tests).

The parts find their worker's health through a context variable that
:func:`supervise` sets: it is inherited by every task and thread the
worker starts, and nothing outside the worker sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from aiokafka.errors import KafkaError
from eventsourcing.persistence import PersistenceError

from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.store.worker_status import (
    DELETE_BEAT,
    PRUNE_BEATS,
    UPSERT_BEAT,
    this_instance,
)

log = structlog.get_logger(__name__)

LAG_PROBE_TIMEOUT = 2.0

Part = Callable[[asyncio.Event], Awaitable[None]]
# A blocking part (the relay's follow loop) waits on a threading.Event.
Stop = asyncio.Event | threading.Event
LagProbe = Callable[[], Awaitable[int | None]]

# Failures of a dependency (told in one line), as opposed to bugs (with
# their trace).
OUTAGES: tuple[type[BaseException], ...] = (
    KafkaError,
    OSError,
    TimeoutError,
    psycopg.Error,
    PersistenceError,
)


@dataclass
class WorkerHealth:
    """A worker's parts, as they report themselves (in its process only)."""

    worker: str
    backoff: Backoff = field(default_factory=Backoff)
    # Part → why it is down; no entry: up.
    problems: dict[str, str] = field(default_factory=dict)
    lag_probes: dict[str, LagProbe] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def state(self) -> str:
        return "down" if self.problems else "running"

    @property
    def reason(self) -> str | None:
        if not self.problems:
            return None
        return "; ".join(f"{part}: {why}" for part, why in self.problems.items())

    def down(self, part: str, why: str) -> None:
        self.problems[part] = why
        self.changed.set()

    def up(self, part: str) -> None:
        if self.problems.pop(part, None) is not None:
            self.changed.set()

    def watch_lag(self, name: str, probe: LagProbe) -> None:
        """Report ``probe()`` (events behind) with each heartbeat."""
        self.lag_probes[name] = probe

    def unwatch_lag(self, name: str) -> None:
        self.lag_probes.pop(name, None)

    async def lag(self) -> int | None:
        """The largest lag a probe reports; None if none can tell."""
        lags = []
        for name, probe in list(self.lag_probes.items()):
            try:
                # A probe asks a broker or a database that may be away.
                value = await asyncio.wait_for(probe(), LAG_PROBE_TIMEOUT)
            except Exception as error:
                log.debug("lag probe failed", probe=name, error=repr(error))
                continue
            if value is not None:
                lags.append(value)
        return max(lags) if lags else None


_health: contextvars.ContextVar[WorkerHealth | None] = contextvars.ContextVar(
    "worker_health", default=None
)


def current_health() -> WorkerHealth | None:
    """The health of the worker this code runs in (None outside a worker)."""
    return _health.get()


async def restarting(
    worker: str,
    name: str,
    run: Callable[[Any], Awaitable[None]],
    stop: Stop,
    *,
    backoff: Backoff | None = None,
) -> None:
    """Run ``run(stop)`` again after any failure, backing off.

    Returns when ``run`` returns (it was asked to stop) or ``stop`` is set.
    """
    health = current_health()
    if backoff is None:
        backoff = health.backoff if health is not None else Backoff()
    loop = asyncio.get_running_loop()
    failures = 0
    recovered: asyncio.TimerHandle | None = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            await run(stop)
            return
        except Exception as error:
            if recovered is not None:
                recovered.cancel()
            if time.monotonic() - started > backoff.maximum:
                failures = 0
            failures += 1
            delay = backoff.delay(failures)
            outage = isinstance(error, OUTAGES)
            (log.warning if outage else log.error)(
                f"{worker} {name} failed; restarting",
                error=f"{type(error).__name__}: {error}",
                failures=failures,
                retry_in=round(delay, 2),
                exc_info=not outage,
            )
            if health is not None:
                health.down(name, f"{type(error).__name__}: {error}"[:500])
                # Up again once the restarted part has run a while.
                recovered = loop.call_later(delay + backoff.settle, health.up, name)
            await pause(stop, delay)
        finally:
            if stop.is_set() and recovered is not None:
                recovered.cancel()


async def until_done(
    worker: str,
    what: str,
    attempt: Callable[[], Awaitable[Any]],
    stop: asyncio.Event,
) -> None:
    """Retry a start-up step (the broker may come up after us)."""
    health = current_health()
    backoff = health.backoff if health is not None else Backoff()
    failures = 0
    while True:
        try:
            await attempt()
            if health is not None:
                health.up(what)
            return
        except Exception as error:
            if stop.is_set():
                raise
            failures += 1
            log.warning(f"{worker} {what}: retrying", error=repr(error))
            if health is not None:
                health.down(what, f"{type(error).__name__}: {error}"[:500])
            await pause(stop, backoff.delay(failures))


async def pause(stop: Stop, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    if isinstance(stop, asyncio.Event):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(remaining, 0.1))


# ----------------------------------------------------------------------
# The heartbeat


async def heartbeat(
    health: WorkerHealth, database_url: str, stop: asyncio.Event, interval: float
) -> None:
    """Write the worker's state every ``interval`` seconds and on each change.

    Never fails: a database that does not answer is tried again at the next
    beat (the row then goes stale, which readiness reports). On stop the
    row is removed: a worker stopped on purpose is not a worker down.
    """
    instance = this_instance()
    conn: psycopg.AsyncConnection[Any] | None = None
    try:
        while not stop.is_set():
            health.changed.clear()
            try:
                if conn is None or conn.closed:
                    conn = await _beat_connection(database_url, health.worker)
                lag = await health.lag()
                await conn.execute(
                    UPSERT_BEAT,
                    (health.worker, instance, health.state, health.reason, lag),
                )
            except Exception as error:
                log.debug("heartbeat not written", error=repr(error))
                if conn is not None:
                    await conn.close()
                    conn = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _first(stop.wait(), health.changed.wait()), interval
                )
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.execute(DELETE_BEAT, (health.worker, instance))
            await conn.close()


async def _beat_connection(
    database_url: str, worker: str
) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(
        database_url,
        autocommit=True,
        application_name=f"{worker}-heartbeat:{this_instance()}",
        connect_timeout=5,
    )
    await conn.execute(PRUNE_BEATS, (worker,))
    return conn


async def _first(*waits: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@dataclass(frozen=True)
class Supervision:
    """How a worker is supervised: its restarts' back-off, its heartbeat.

    Without ``heartbeat_url`` (the database) no heartbeat is written: a
    worker embedded in a test, say.
    """

    backoff: Backoff = field(default_factory=Backoff)
    heartbeat_url: str | None = None
    heartbeat_seconds: float = 5.0


async def supervise(
    name: str,
    main: Part,
    stop: asyncio.Event,
    supervision: Supervision | None = None,
    *,
    backoff: Backoff | None = None,
) -> None:
    """Run a whole worker, restarted after any failure, with its heartbeat.

    ``backoff`` replaces the supervision's.
    """
    supervision = supervision or Supervision()
    health = WorkerHealth(name, backoff=backoff or supervision.backoff)
    _health.set(health)
    async with asyncio.TaskGroup() as tasks:
        if supervision.heartbeat_url:
            tasks.create_task(
                heartbeat(
                    health,
                    supervision.heartbeat_url,
                    stop,
                    supervision.heartbeat_seconds,
                )
            )
        await restarting(name, "worker", main, stop)
        stop.set()  # main returned by itself: end the heartbeat too


def serve(name: str, supervision: Supervision, main: Part) -> None:
    """Run a worker as this process until SIGTERM or Ctrl-C."""

    async def supervised() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await supervise(name, main, stop, supervision)

    asyncio.run(supervised())


@dataclass
class RunningWorker:
    """A worker on a thread of this process."""

    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout)


def start_in_thread(
    name: str, main: Part, *, supervision: Supervision | None = None
) -> RunningWorker:
    """Start ``main(stop)`` supervised, on its own event loop on a daemon thread."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(supervise(name, main, stop, supervision))
        except Exception:
            log.exception(f"{name} stopped")
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return RunningWorker(thread=thread, loop=loop, stop_event=stop)


async def blocking(work: Callable[[threading.Event], Any], stop: asyncio.Event) -> Any:
    """Run ``work(thread_stop)`` on a thread, setting ``thread_stop`` with ``stop``.

    For a worker written as a blocking loop (the projection worker).
    Returns or raises what ``work`` does.
    """
    thread_stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(work, thread_stop))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        thread_stop.set()
    return await task
