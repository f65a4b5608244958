"""The full product at its highest sustainable rate: every worker a process.

``ticketing dev`` runs, as in ``make run``, the API (its default uvicorn
workers) and each worker (projections, relay, notifier, timers, workflows)
as its own child process, on a fresh database of the benchmark's server
and a bundled broker of its own; the notifier's e-mail goes to an SMTP
server (aiosmtpd) in this process. Tickets are created over HTTP at a fixed
rate, open loop, one step after another at higher rates, until a step is
not sustained: a create failed, the creates fell behind the pace, or one
worker's lag reached the limit (1 s).

A worker's lag is measured on its own input, every 100 ms: the log
position the event store had reached (projections, relay), or the end
offsets of the ticket event topic's partitions (the Kafka consumers), and
then the time until the worker's recorded progress passed that mark: the
projection's tracking row, the relay's, each consumer group's
``consumer_positions`` (offsets it has applied, in its own transactions).
The step's lag is the largest of those. It reads the rows every worker
writes anyway, so the measurement adds a few queries, not a component.

The baseline is the same creates with no workers: ``ticketing api`` alone,
closed loop, on another fresh database.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from aiosmtpd.controller import Controller
from psycopg import sql
from rich.table import Table

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from tests.bench.harness import (
    BenchError,
    Measurement,
    bench_database,
    child_env,
    child_process,
    free_port,
    process_cpu_seconds,
    process_tree,
    running_service,
    wait_ready,
)
from tests.bench.http_creates import run_creates, run_paced_creates

#: What a sustained step may not reach: any worker's lag.
LAG_LIMIT = 1.0
SAMPLE_EVERY = 0.1
#: After a step's creates, how long the workers get to catch up before the
#: step's unreached marks count as lag to the end of the wait.
DRAIN_SECONDS = 5.0
#: The creates must come within this share of the pace to count as kept.
KEPT_PACE = 0.95
WORKERS = ("projections", "relay", "notifier", "timers", "workflows")
READY_TIMEOUT = 120.0


@dataclass
class Step:
    rate: float
    creates: Measurement
    lags: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def worst_lag(self) -> float:
        return max(self.lags.values(), default=math.inf)

    @property
    def sustained(self) -> bool:
        return (
            not self.creates.errors
            and self.creates.ops_per_second >= KEPT_PACE * self.rate
            and len(self.lags) == len(WORKERS)
            and self.worst_lag < LAG_LIMIT
        )


@dataclass
class FullProduct:
    no_workers: Measurement
    steps: list[Step]
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def highest(self) -> Step | None:
        kept = [s for s in self.steps if s.sustained]
        return max(kept, key=lambda s: s.rate) if kept else None


class _Sink:
    """An SMTP server's handler that accepts and counts every message."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += 1
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def _smtp_sink() -> Iterator[int]:
    port = free_port()
    controller = Controller(_Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass(frozen=True)
class _Progress:
    """Where the log and the topic were, and where each worker was."""

    at: float
    head: int
    ends: dict[int, int]
    done: dict[str, int | dict[int, int]]


class LagSampler:
    """Samples progress on its own thread; each worker's lag per mark."""

    def __init__(self, database_url: str, bootstrap_servers: str) -> None:
        self._url = database_url
        self._servers = bootstrap_servers
        self._samples: list[_Progress] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def lags(self, since: float, until: float) -> dict[str, float]:
        """Each worker's largest lag for the marks taken in [since, until]."""
        if self._error is not None:
            raise BenchError(f"the lag sampler failed: {self._error!r}")
        samples = list(self._samples)
        marks = [s for s in samples if since <= s.at <= until]
        end = samples[-1].at if samples else until
        lags: dict[str, float] = {}
        for worker in WORKERS:
            worst = 0.0
            for mark in marks:
                reached = next(
                    (
                        s.at
                        for s in samples
                        if s.at >= mark.at and _passed(s, mark, worker)
                    ),
                    None,
                )
                worst = max(worst, (reached if reached is not None else end) - mark.at)
            lags[worker] = worst
        return lags

    def caught_up(self) -> bool:
        samples = list(self._samples)
        return bool(samples) and all(
            _passed(samples[-1], samples[-1], w) for w in WORKERS
        )

    def _run(self) -> None:
        try:
            asyncio.run(self._sample())
        except BaseException as error:  # reported by lags()
            self._error = error

    async def _sample(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._servers)
        await consumer.start()
        try:
            partitions = sorted(consumer.partitions_for_topic(TICKET_EVENTS) or ())
            tps = [TopicPartition(TICKET_EVENTS, p) for p in partitions]
            with psycopg.connect(self._url, autocommit=True) as conn:
                while not self._stop.is_set():
                    at = time.perf_counter()
                    head = _one(
                        conn, "SELECT max(notification_id) FROM ticketing_events"
                    )
                    ends = {
                        tp.partition: o
                        for tp, o in (await consumer.end_offsets(tps)).items()
                    }
                    self._samples.append(
                        _Progress(at, head, ends, _done(conn, partitions))
                    )
                    await asyncio.sleep(
                        max(0.0, SAMPLE_EVERY - (time.perf_counter() - at))
                    )
        finally:
            await consumer.stop()


def _passed(now: _Progress, mark: _Progress, worker: str) -> bool:
    done = now.done.get(worker)
    if isinstance(done, int):
        return done >= mark.head
    if isinstance(done, dict):
        return all(done.get(p, 0) >= end for p, end in mark.ends.items())
    return False


def _one(conn: psycopg.Connection[Any], query: Any, *args: Any) -> int:
    try:
        row = conn.execute(query, args or None).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0] or 0) if row else 0


def _done(
    conn: psycopg.Connection[Any], partitions: list[int]
) -> dict[str, int | dict[int, int]]:
    done: dict[str, int | dict[int, int]] = {}
    build = conn.execute(
        "SELECT schema_name FROM projection_builds"
        " WHERE projection = 'tickets' AND state = 'active'"
    ).fetchone()
    if build is not None:
        tracking = sql.Identifier(build[0], "tickets_tracking")
        done["projections"] = _one(
            conn, sql.SQL("SELECT max(notification_id) FROM {}").format(tracking)
        )
    done["relay"] = _one(
        conn,
        "SELECT notification_id FROM relay_tracking"
        " WHERE application_name = 'ticketing'",
    )
    rows = conn.execute(
        "SELECT consumer, stream, next_offset FROM consumer_positions"
        " WHERE stream LIKE %s",
        (f"{TICKET_EVENTS}:%",),
    ).fetchall()
    for consumer, stream, offset in rows:
        name = _worker_of(consumer)
        if name is not None:
            offsets = done.setdefault(name, {})
            assert isinstance(offsets, dict)
            offsets[int(stream.rsplit(":", 1)[1])] = int(offset)
    for name in ("notifier", "timers", "workflows"):
        done.setdefault(name, {})
    return done


def _worker_of(consumer: str) -> str | None:
    for name in ("notifier", "timers", "workflows"):
        if name in consumer:
            return name
    return None


@dataclass(frozen=True)
class _Dev:
    base_url: str
    pid: int
    database_url: str
    bootstrap_servers: str

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: the whole tree, and each child of ``dev``'s."""
        used = {"product": process_cpu_seconds(self.pid) or 0.0}
        for child in _children(self.pid):
            name = _role(child)
            used[name] = used.get(name, 0.0) + (process_cpu_seconds(child) or 0.0)
        return used


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _role(pid: int) -> str:
    """``api`` or the worker's name, from the child's command line."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return "gone"
    if "worker" in words:
        after = words[words.index("worker") + 1 :]
        return after[0] if after else "worker"
    return "api" if "api" in words else "other"


@contextlib.contextmanager
def _running_dev(
    database_url: str, secret: str, smtp_port: int, tmp: Path
) -> Iterator[_Dev]:
    broker = start_dev_broker(log_path=tmp / "product-kafka.log")
    port = free_port()
    env = child_env(
        database_url,
        TICKETING_JWT_SECRET=secret,
        HOST="127.0.0.1",
        PORT=str(port),
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        TICKETING_KAFKA_FETCH_MAX_WAIT_MS="20",
        TICKETING_SMTP_HOST="127.0.0.1",
        TICKETING_SMTP_PORT=str(smtp_port),
        TICKETING_SMTP_STARTTLS="false",
        TICKETING_DATA_DIR=str(tmp / "product-data"),
    )
    log = tmp / "product.log"
    base_url = f"http://127.0.0.1:{port}"
    members: list[int] = []
    try:
        with child_process(["dev"], env, log) as process:
            _wait_ready_all(base_url, process, log)
            members = process_tree(process.pid)
            yield _Dev(base_url, process.pid, database_url, broker.bootstrap_servers)
    finally:
        _end_leftovers(members)
        broker.stop()


def _wait_ready_all(base_url: str, process: Any, log: Path) -> None:
    """Ready: the API answers and every worker has reported (dev waits on all)."""
    deadline = time.monotonic() + READY_TIMEOUT
    wait_ready(base_url, process, log)
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError("the full product was not ready")


def _end_leftovers(pids: list[int]) -> None:
    """Children ``ticketing dev`` did not stop (it was killed): ours, by PID."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 9)


def run_full_product(
    args: Any, *, token: str, secret: str, tmp: Path, progress: Any
) -> FullProduct:
    """The baseline without workers, then the stepped rates with all of them."""
    with bench_database() as db:
        progress.log(
            f"full product baseline: {args.requests} creates, `ticketing api` alone"
        )
        with running_service(db.url, secret, tmp / "product-api.log") as api:
            no_workers = run_creates(
                api.base_url,
                token,
                requests=args.requests,
                concurrency=args.concurrency,
                warmup=args.warmup,
                cpu_probe=api.cpu_probe,
            )
        no_workers.name = "the same creates, no workers (closed loop)"
    steps: list[Step] = []
    logs: dict[str, str] = {}
    with bench_database() as db, _smtp_sink() as smtp_port:
        progress.log("starting `ticketing dev`: the API and every worker as processes")
        try:
            with (
                _running_dev(db.url, secret, smtp_port, tmp) as dev,
                LagSampler(db.url, dev.bootstrap_servers) as sampler,
            ):
                _warm_up(dev, token, sampler, progress)
                for rate in args.product_rates:
                    progress.log(
                        f"full product: creates at {rate:.0f}/s for "
                        f"{args.product_seconds:.0f} s"
                    )
                    step = _step(dev, token, sampler, rate, args.product_seconds)
                    steps.append(step)
                    if not step.sustained:
                        break
                    _drain(sampler)
        finally:
            logs["product"] = _warnings(tmp / "product.log")
    return FullProduct(no_workers, steps, logs)


def _warm_up(dev: _Dev, token: str, sampler: LagSampler, progress: Any) -> None:
    """A few creates, until every worker has processed them (groups joined)."""
    progress.log("full product: warm-up until every worker has caught up")
    run_paced_creates(dev.base_url, token, rate=20, seconds=2, clients=4)
    _drain(sampler, timeout=90)


def _drain(sampler: LagSampler, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(SAMPLE_EVERY * 3)
    while not sampler.caught_up():
        if time.monotonic() > deadline:
            raise BenchError("the workers did not catch up between steps")
        time.sleep(SAMPLE_EVERY)


def _step(
    dev: _Dev, token: str, sampler: LagSampler, rate: float, seconds: float
) -> Step:
    before = dev.cpu()
    started = time.perf_counter()
    creates = run_paced_creates(
        dev.base_url, token, rate=rate, seconds=seconds, clients=32
    )
    ended = time.perf_counter()
    # The marks of the creates' time; their lag may end after it.
    deadline = time.monotonic() + DRAIN_SECONDS
    while not sampler.caught_up() and time.monotonic() < deadline:
        time.sleep(SAMPLE_EVERY)
    after = dev.cpu()
    step = Step(rate, creates)
    step.lags = sampler.lags(started, ended)
    step.cpu_seconds = {k: after[k] - before[k] for k in after}
    step.cpu_seconds["per second"] = step.cpu_seconds["product"] / (ended - started)
    return step


def _warnings(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in lines if "warn" in line or "error" in line)


def full_product_table(result: FullProduct) -> Table:
    table = Table(title="The full product: every worker its own process")
    table.add_column("run", no_wrap=True)
    for column in (
        "pace/s",
        "creates/s",
        "p50 ms",
        "p99 ms",
        "errors",
        *(f"{w} lag s" for w in WORKERS),
        "product CPU cores",
        "vs no workers",
        "sustained",
    ):
        table.add_column(column, justify="right")
    base = result.no_workers
    table.add_row(
        base.name,
        "-",
        f"{base.ops_per_second:.0f}",
        f"{base.percentile(50):.1f}",
        f"{base.percentile(99):.1f}",
        str(base.errors),
        *("-" for _ in WORKERS),
        f"{(base.cpu_seconds.get('service', 0.0)) / base.seconds:.2f}"
        if base.seconds
        else "-",
        "1.000x",
        "-",
        end_section=True,
    )
    for step in result.steps:
        c = step.creates
        table.add_row(
            f"creates paced at {step.rate:.0f}/s, all workers",
            f"{step.rate:.0f}",
            f"{c.ops_per_second:.0f}",
            f"{c.percentile(50):.1f}",
            f"{c.percentile(99):.1f}",
            str(c.errors),
            *(f"{step.lags.get(w, math.inf):.2f}" for w in WORKERS),
            f"{step.cpu_seconds.get('per second', 0.0):.2f}",
            f"{c.ops_per_second / base.ops_per_second:.3f}x"
            if base.ops_per_second
            else "-",
            "yes" if step.sustained else "no",
            style=None if step.sustained else "red",
        )
    return table
