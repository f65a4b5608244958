"""Plumbing shared by the benchmarks: a throw-away database, the service and
the projection worker each in its own process, and latency statistics.

The database follows tests/conftest.py: a fresh ``bench_<hex>`` database on
``DATABASE_URL``'s server (or on a PostgreSQL at the default local address
if one answers, or else on an embedded server in a temporary directory),
dropped at the end whatever happens.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dotmac.ticketing.store.schema_migrations import migrate

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
ERROR_SAMPLES = 5


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why."""


# -- interrupts ----------------------------------------------------------------


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C and SIGTERM while cleaning up; raise them after.

    A second Ctrl-C must not leave the service running or the database
    behind. Only the main thread can handle signals; elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {
        signum: signal.signal(signum, remember)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt


# -- measurements ------------------------------------------------------------


@dataclass
class Measurement:
    """One row of the result table.

    ``operations`` counts every attempt (successful or not); throughput
    counts only the successful ones, so fast failures cannot inflate it.
    """

    name: str
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    # Per-operation rows of a mixed run are a share of that run's
    # throughput, not a throughput of their own to compare with the baseline.
    comparable: bool = True
    # CPU seconds used during the counted run, by process ("client", ...).
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def operations(self) -> int:
        return len(self.latencies_ms)

    @property
    def ops_per_second(self) -> float:
        done = self.operations - self.errors
        return done / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        return percentile(self.latencies_ms, p)

    def record_error(self, description: str) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(description)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (NaN when there are none)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class ReadRow:
    """One row of the read-side table: a count, a time, a rate, latencies."""

    name: str
    count: int
    seconds: float
    unit: str  # what the rate counts per second ("events", "req", ...)
    notes: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # The last row of a group: a line is drawn under it.
    end_section: bool = False

    @property
    def rate(self) -> float:
        done = self.count - self.errors
        return done / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def record_error(self, description: str) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(description)


CpuProbe = Callable[[], dict[str, float]]


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # from field 3 (state) on


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its descendants
    (``ticketing api`` serves from child processes), or None (Linux ``/proc``).

    Counts the live descendants and those already waited for.
    """
    if _stat_fields(pid) is None:
        return None
    ticks = 0
    for member in process_tree(pid):
        stat = _stat_fields(member)
        if stat is not None:
            # utime, stime, and cutime, cstime of children waited for.
            ticks += sum(int(value) for value in stat[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (other := _stat_fields(entry.name)) is not None:
            children.setdefault(int(other[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def resident_mib(pid: int) -> dict[int, float]:
    """Resident memory of each process of ``pid``'s tree, in MiB."""
    sizes = {}
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes[member] = int(line.split()[1]) / 1024
    return sizes


def machine_busy_seconds() -> float | None:
    """CPU time all cores spent busy so far (Linux ``/proc/stat``), or None."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle, iowait.
    ticks = [int(value) for value in first[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def background_load(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over a short sample, before the benchmark runs."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    after = machine_busy_seconds()
    if before is None or after is None:
        return None
    return (after - before) / (seconds * (os.cpu_count() or 1))


def client_cpu_probe() -> dict[str, float]:
    """CPU seconds so far of this process, and of the whole machine."""
    used = {"client": time.process_time()}
    machine = machine_busy_seconds()
    if machine is not None:
        used["whole machine"] = machine
    return used


@contextlib.contextmanager
def cpu_used(probe: CpuProbe | None, result: Measurement) -> Iterator[None]:
    """Record in ``result`` the CPU time each probed process used meanwhile."""
    before = probe() if probe else {}
    yield
    after = probe() if probe else {}
    result.cpu_seconds = {
        name: after[name] - before[name] for name in after if name in before
    }


# -- the database -------------------------------------------------------------


@dataclass(frozen=True)
class BenchDatabase:
    url: str
    name: str
    origin: str  # which server: DATABASE_URL, the local default, embedded
    server_version: str
    fsync: str
    synchronous_commit: str


def with_database(url: str, dbname: str) -> str:
    """The same connection settings as ``url``, pointing at ``dbname``."""
    if "://" not in url:  # a key=value conninfo string
        return make_conninfo(url, dbname=dbname)
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "dbname"]
    return urlunsplit(
        parts._replace(
            path=f"/{dbname}", query=urlencode(query, safe="/", quote_via=quote)
        )
    )


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def _postgres_server() -> Iterator[tuple[str, str]]:
    """(server URL, where it comes from); an embedded one is stopped after."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url, "DATABASE_URL"
        return
    if _answers(DEFAULT_SERVER_URL):
        yield DEFAULT_SERVER_URL, f"local server ({DEFAULT_SERVER_URL})"
        return
    from dotmac.ticketing.entry.embedded import start_embedded_postgres  # slow import

    directory = Path(tempfile.mkdtemp(prefix="ticketing-bench-"))
    try:
        embedded = start_embedded_postgres(directory)
        try:
            yield embedded.url, "embedded server (temporary directory)"
        finally:
            embedded.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def bench_database() -> Iterator[BenchDatabase]:
    """A fresh database for this run, dropped (with FORCE) at the end."""
    with _postgres_server() as (server_url, origin):
        dbname = f"bench_{secrets.token_hex(6)}"
        try:
            # Inside the try: an interrupted CREATE may still have committed.
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
                )
            url = with_database(server_url, dbname)
            migrate(url)
            with psycopg.connect(url) as conn:

                def show(name: str) -> str:
                    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
                    return str(row[0]) if row else "?"

                version = show("server_version")
                fsync = show("fsync")
                synchronous_commit = show("synchronous_commit")
            yield BenchDatabase(
                url=url,
                name=dbname,
                origin=origin,
                server_version=version,
                fsync=fsync,
                synchronous_commit=synchronous_commit,
            )
        finally:
            # FORCE: connections of a killed service must not keep it alive.
            with (
                deferred_interrupts(),
                psycopg.connect(server_url, autocommit=True) as conn,
            ):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )


# -- the service process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ticketing_command() -> list[str]:
    script = Path(sys.executable).parent / "ticketing"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "dotmac.ticketing.entry.cli"]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the benchmark dies (Linux)."""
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Service:
    base_url: str
    pid: int

    def cpu_probe(self) -> dict[str, float]:
        """CPU seconds so far of the client, the service and the machine."""
        used = client_cpu_probe()
        service = process_cpu_seconds(self.pid)
        if service is not None:
            used["service"] = service
        return used


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    """This environment (pool sizes and friends apply), quiet, on ``database_url``."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "warning",
        # Counted, never binding: the benchmark's one client token would pass
        # the default per-caller limit, and the limiter's cost is measured.
        "TICKETING_RATE_LIMIT_TENANT": "1000000/second",
        "TICKETING_RATE_LIMIT_SUBJECT": "1000000/second",
        **extra,
    }
    env.pop("TICKETING_JWT_PUBLIC_KEY", None)
    return env


@contextlib.contextmanager
def child_process(
    arguments: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``ticketing <arguments>`` in its own process, stopped however we leave."""
    with _process([*_ticketing_command(), *arguments], env, log_path) as process:
        yield process


@contextlib.contextmanager
def _process(
    command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in its own process, stopped however we leave."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Ctrl-C reaches only the benchmark, which then stops the child.
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    try:
        yield process
    finally:
        _stop(process)


@contextlib.contextmanager
def running_minimal_app(
    database_url: str, workers: int, log_path: Path
) -> Iterator[Service]:
    """Baseline (b), ``tests.bench.minimal_app``, under the same uvicorn."""
    from tests.bench.minimal_app import TABLE_DDL

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TABLE_DDL)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "tests.bench.minimal_app:create_app"]
    options = ["--factory", "--workers", str(workers), "--host", "127.0.0.1"]
    options += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    base_url = f"http://127.0.0.1:{port}"
    env = child_env(database_url)
    with _process(
        [*command, *options], env, log_path, cwd=Path(__file__).parents[2]
    ) as process:
        wait_ready(base_url, process, log_path)
        yield Service(base_url, process.pid)


@contextlib.contextmanager
def running_service(
    database_url: str, jwt_secret: str, log_path: Path, **extra_env: str
) -> Iterator[Service]:
    """``ticketing api`` under uvicorn in its own process.

    The process inherits this environment (so ``TICKETING_DB_POOL_SIZE`` and
    friends apply) with the database, secret, port and a quiet log level
    set. It is stopped with SIGTERM (then SIGKILL) however the run ends.
    """
    port = free_port()
    env = child_env(
        database_url,
        TICKETING_JWT_SECRET=jwt_secret,
        HOST="127.0.0.1",
        PORT=str(port),
        **extra_env,
    )
    base_url = f"http://127.0.0.1:{port}"
    with child_process(["api"], env, log_path) as process:
        wait_ready(base_url, process, log_path)
        yield Service(base_url, process.pid)


@dataclass(frozen=True)
class Worker:
    """``ticketing worker projections`` in its own process."""

    pid: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"the projection worker exited with code "
                f"{self.process.returncode}:\n{_tail(self.log_path)}"
            )


@contextlib.contextmanager
def running_worker(database_url: str, log_path: Path) -> Iterator[Worker]:
    """The projection worker as deployed: its own process, the same database.

    Whether it has caught up is for the caller to see (the status endpoint).
    Stopped with SIGTERM (then SIGKILL) however the run ends.
    """
    env = child_env(database_url)
    with child_process(["worker", "projections"], env, log_path) as process:
        yield Worker(process.pid, process, log_path)


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise BenchError(
                f"the service exited with code {process.returncode}:\n{_tail(log)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise BenchError(
                f"the service was not ready after {READY_TIMEOUT_SECONDS:.0f}s:\n"
                f"{_tail(log)}"
            )
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with deferred_interrupts():
        _terminate(process)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not gone after the grace period."""
    try:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- the machine --------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def default_thread_limit() -> int:
    """anyio's default worker-thread limit, which runs FastAPI's sync routes."""
    import anyio
    import anyio.to_thread

    async def limit() -> int:
        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)

    return anyio.run(limit)
