"""The read side of ``make bench``, on a database of its own.

In order, against one fresh database:

1. store a big tenant straight through the application (read_data.py);
2. rebuild the tickets projection from position zero, timed (rebuild.py);
3. start the service and the projection worker, each in its own process,
   and wait until the status endpoint shows the build caught up;
4. projection lag while tickets are created at a steady rate, and a
   read-your-writes round trip (projection_lag.py);
5. ticket list and dashboard latency on the big tenant (read_queries.py).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tests.bench.harness import (
    BenchDatabase,
    BenchError,
    CpuProbe,
    ReadRow,
    Service,
    Worker,
    bench_database,
    process_cpu_seconds,
    running_service,
    running_worker,
)
from tests.bench.projection_lag import run_lag
from tests.bench.read_data import DataSet, generate
from tests.bench.read_queries import (
    run_dashboards,
    run_list_queries,
    run_ticket_gets,
)
from tests.bench.rebuild import run_rebuild

CAUGHT_UP_TIMEOUT_SECONDS = 120.0

Show = Callable[[int, int], None]


@dataclass(frozen=True)
class ReadSide:
    db: BenchDatabase
    data: DataSet
    rows: list[ReadRow]
    logs: dict[str, str]  # process: its warnings and errors


def run_read_side(
    args: argparse.Namespace,
    *,
    tenant: str,
    agent_token: str,
    admin_token: str,
    secret: str,
    tmp: Path,
    progress: Console,
) -> ReadSide:
    with bench_database() as db:
        progress.log(
            f"read side: storing {args.list_tickets:,} tickets, at least "
            f"{args.rebuild_events:,} events (database {db.name})"
        )
        with _bar(progress, "storing tickets", args.list_tickets) as show:
            data = generate(
                db.url,
                tenant=tenant,
                tickets=args.list_tickets,
                min_events=args.rebuild_events,
                on_progress=lambda done: show(done, args.list_tickets),
            )
        progress.log(f"rebuilding the tickets projection over {data.events:,} events")
        with _bar(progress, "rebuilding", data.events) as show:
            rebuild = run_rebuild(db.url, tickets=data.tickets, on_progress=show)
        rows = [data.row, rebuild]
        rebuild.end_section = True
        progress.log("starting the service and the projection worker")
        service_log, worker_log = tmp / "read-service.log", tmp / "worker.log"
        with (
            running_service(db.url, secret, service_log) as service,
            running_worker(db.url, worker_log) as worker,
        ):
            schema = _wait_caught_up(service.base_url, admin_token, worker)
            probe = _probe(service, worker)
            progress.log(
                f"projection lag: {args.lag_rate:g} creates/s for "
                f"{args.lag_seconds:g}s; then {args.read_your_writes} "
                "read-your-writes round trips"
            )
            lag_rows = run_lag(
                service.base_url,
                agent_token,
                db.url,
                schema,
                rate=args.lag_rate,
                seconds=args.lag_seconds,
                clients=args.lag_clients,
                read_your_writes=args.read_your_writes,
                cpu_probe=probe,
            )
            lag_rows[-1].end_section = True
            worker.check_alive()
            progress.log(f"GET /tickets/: {args.list_requests} requests")
            list_rows = run_list_queries(
                service.base_url,
                agent_token,
                requests=args.list_requests,
                tickets=data.tickets,
                cpu_probe=probe,
            )
            progress.log(f"GET /tickets/{{id}}: {args.list_requests} requests")
            one_rows = [
                run_ticket_gets(
                    service.base_url,
                    agent_token,
                    requests=args.list_requests,
                    cpu_probe=probe,
                )
            ]
            progress.log(f"GET dashboard: {args.dashboard_requests} requests")
            dashboard_rows = run_dashboards(
                service.base_url,
                agent_token,
                requests=args.dashboard_requests,
                cpu_probe=probe,
            )
        progress.log("read side: processes stopped; dropping the database")
        logs = {
            "service": _read(service_log),
            "projection worker": _read(worker_log),
        }
    read_rows = [*rows, *lag_rows, *list_rows, *one_rows, *dashboard_rows]
    return ReadSide(db, data, read_rows, logs)


@contextlib.contextmanager
def _bar(console: Console, label: str, total: int) -> Iterator[Show]:
    """A progress bar on the progress console; yields ``show(done, total)``."""
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)

        def show(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, 1))

        yield show


def _wait_caught_up(base_url: str, admin_token: str, worker: Worker) -> str:
    """The active build's schema, once the worker has caught it up."""
    deadline = time.monotonic() + CAUGHT_UP_TIMEOUT_SECONDS
    headers = {"Authorization": f"Bearer {admin_token}"}
    last = "no answer"
    while time.monotonic() < deadline:
        worker.check_alive()
        response = httpx.get(
            f"{base_url}/api/v1/projections/status", headers=headers, timeout=10
        )
        if response.status_code != 200:
            raise BenchError(
                f"GET /projections/status -> {response.status_code}: "
                f"{response.text[:200]}"
            )
        (status,) = [s for s in response.json() if s["name"] == "tickets"]
        last = str(status)
        if status["active_schema"] and status["lag"] == 0:
            return str(status["active_schema"])
        time.sleep(0.2)
    raise BenchError(f"the projection did not catch up: {last}")


def _probe(service: Service, worker: Worker) -> CpuProbe:
    def probe() -> dict[str, float]:
        used = service.cpu_probe()
        seconds = process_cpu_seconds(worker.pid)
        if seconds is not None:
            used["worker"] = seconds
        return used

    return probe


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


# -- the table ---------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def read_table(rows: list[ReadRow]) -> Table:
    table = Table(title="Read side: projection lag, rebuild, query latency")
    table.add_column("what", no_wrap=True)
    for column in ("count", "seconds", "rate", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("notes", ratio=1)
    for row in rows:
        notes = row.notes
        if row.errors:
            notes = f"{row.errors} ERRORS (below). {notes}"
        table.add_row(
            row.name,
            f"{row.count:,}",
            f"{row.seconds:.2f}",
            f"{row.rate:,.0f} {row.unit}/s"
            if row.rate >= 100
            else f"{row.rate:.1f} {row.unit}/s",
            _ms(row.percentile(50)),
            _ms(row.percentile(95)),
            _ms(row.percentile(99)),
            notes,
            style="red" if row.errors else None,
            end_section=row.end_section,
        )
    return table
