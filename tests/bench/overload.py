"""Overload: 200 concurrent clients against ``ticketing api`` as deployed.

The service is started on a fresh database and warmed up; then the light
clients of overload_clients.py, from several processes, create tickets in
closed loops for a bounded time and count. First with its defaults (a row
with as many clients as the write table's shows the same clients' latency
when it is not overloaded), then again with ``TICKETING_MAX_IN_FLIGHT``
below the crowd, so that it sheds: once with clients honouring the
``Retry-After`` of each 503, once with clients asking again at once.

Issue 14's bar: past the configured concurrency the API answers 503 with
Retry-After at once instead of queueing for seconds, and the p99 of the
requests it serves stays under 1 s with 200 concurrent clients.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from dotmac.ticketing.service.settings import Settings
from tests.bench.harness import (
    machine_busy_seconds,
    percentile,
    process_cpu_seconds,
    running_service,
)
from tests.bench.http_creates import TICKETS, run_creates, ticket_body
from tests.bench.overload_clients import Load, Tally, drive

#: The issue's crowd, and the bar for what is served.
CROWD = 200
SERVED_P99_BAR_MS = 1000.0


@dataclass
class OverloadRow:
    name: str
    max_in_flight: str
    load: Load
    tally: Tally
    seconds: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Overload:
    rows: list[OverloadRow]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("overload")
    group.add_argument(
        "--overload-processes",
        type=int,
        default=4,
        help=f"client processes sharing the {CROWD} connections (default 4)",
    )
    group.add_argument(
        "--overload-seconds",
        type=float,
        default=10.0,
        help="how long each overload row runs, at most 15 (default 10)",
    )
    group.add_argument(
        "--overload-requests",
        type=int,
        default=20_000,
        help="requests of each overload row at most (default 20000)",
    )
    group.add_argument(
        "--shed-at",
        type=int,
        default=32,
        help="TICKETING_MAX_IN_FLIGHT (per API process) of the shedding rows "
        "(default 32)",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 < args.overload_seconds <= 15:
        parser.error("--overload-seconds must be above 0 and at most 15")
    if args.overload_processes < 1 or args.overload_requests < 1 or args.shed_at < 1:
        parser.error("--overload-processes and --overload-requests must be positive")
    if CROWD % args.overload_processes:
        parser.error(f"--overload-processes must divide {CROWD}")


def run_overload(
    args: argparse.Namespace,
    database_url: str,
    secret: str,
    token: str,
    *,
    tmp: Path,
    progress: Console,
) -> Overload:
    rows = []
    default = Settings.model_fields["max_in_flight"].default
    for max_in_flight, runs in (
        (
            str(default),
            (
                (f"{args.concurrency} clients (not overloaded)", args.concurrency, 1),
                (f"{CROWD} clients", CROWD, None),
            ),
        ),
        (
            str(args.shed_at),
            (
                (f"{CROWD} clients, Retry-After honoured", CROWD, None),
                (f"{CROWD} clients, asking again at once", CROWD, None),
            ),
        ),
    ):
        rows += _rows_of_one_service(
            args, database_url, secret, token, max_in_flight, runs, tmp, progress
        )
    return Overload(rows)


def _rows_of_one_service(
    args: argparse.Namespace,
    database_url: str,
    secret: str,
    token: str,
    max_in_flight: str,
    runs: tuple[tuple[str, int, int | None], ...],
    tmp: Path,
    progress: Console,
) -> list[OverloadRow]:
    rows = []
    with running_service(
        database_url,
        secret,
        tmp / "overload.log",
        TICKETING_MAX_IN_FLIGHT=max_in_flight,
    ) as service:
        progress.log(f"overload: TICKETING_MAX_IN_FLIGHT={max_in_flight}, warm-up")
        run_creates(service.base_url, token, requests=200, concurrency=16, warmup=0)
        address = urlsplit(service.base_url)
        assert address.hostname is not None and address.port is not None
        for name, clients, one_process in runs:
            processes = one_process or args.overload_processes
            load = Load(
                host=address.hostname,
                port=address.port,
                path=f"{TICKETS}/",
                token=token,
                body=ticket_body(0),
                processes=processes,
                connections_per_process=clients // processes,
                seconds=args.overload_seconds,
                max_requests=args.overload_requests,
                honour_retry_after="at once" not in name,
            )
            progress.log(
                f"overload: {name}, {processes} client processes, "
                f"{args.overload_seconds:g} s or {args.overload_requests} requests"
            )
            rows.append(_measured(name, max_in_flight, load, service.pid))
    return rows


def _measured(
    name: str, max_in_flight: str, load: Load, service_pid: int
) -> OverloadRow:
    """One row: the load driven, and the CPU the service and machine used."""

    def probe() -> dict[str, float]:
        used = {}
        if (service := process_cpu_seconds(service_pid)) is not None:
            used["service"] = service
        if (machine := machine_busy_seconds()) is not None:
            used["whole machine"] = machine
        return used

    tally, seconds, used = drive(load, probe)
    row = OverloadRow(name, max_in_flight, load, tally, seconds)
    row.cpu_seconds = {"clients": tally.cpu_seconds, **used}
    return row


def _ms(values: list[float], p: float) -> str:
    value = percentile(values, p)
    return "-" if math.isnan(value) else f"{value:.1f}"


def overload_table(overload: Overload) -> Table:
    table = Table(title="Overload: closed-loop creates from many clients")
    table.add_column("clients", no_wrap=True)
    for column in (
        "max in flight",
        "processes",
        "seconds",
        "served",
        "served/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "shed 503",
        "shed p99 ms",
        "errors",
    ):
        table.add_column(column, justify="right")
    for row in overload.rows:
        served = row.tally.served_ms
        errors = sum(row.tally.errors.values())
        over_bar = percentile(served, 99) > SERVED_P99_BAR_MS
        table.add_row(
            row.name,
            row.max_in_flight,
            str(row.load.processes),
            f"{row.seconds:.2f}",
            str(len(served)),
            f"{len(served) / row.seconds:.0f}" if row.seconds > 0 else "-",
            _ms(served, 50),
            _ms(served, 95),
            _ms(served, 99),
            _ms(served, 100),
            str(len(row.tally.shed_ms)),
            _ms(row.tally.shed_ms, 99),
            str(errors),
            style="red" if errors or over_bar else None,
        )
    return table


def print_overload(console: Console, overload: Overload) -> None:
    console.print()
    console.print(
        "[bold]overload[/]    `ticketing api` on a fresh database, its default "
        "workers, TICKETING_MAX_IN_FLIGHT (per process) as the column says, the "
        "other settings its defaults; started afresh for each value, 200 "
        "creates first, not counted",
        highlight=False,
    )
    console.print(overload_table(overload))
    console.print(
        "Clients: raw asyncio streams on uvloop (tests/bench/overload_clients.py), "
        "one connection each, in closed loops, all started together once "
        "connected; each row ends at its time or request count. served: 2xx; "
        "latency per request from sending it to its answer read. shed: 503 "
        "with Retry-After (a client honouring it waits that long before its "
        "next request). errors: any other answer, reset, refused connection "
        "or time-out (10 s). Issue 14's bar: the p99 of what is served under "
        f"{SERVED_P99_BAR_MS / 1000:g} s with {CROWD} clients (red: above it).",
        highlight=False,
        style="dim",
    )
    lines = []
    for row in overload.rows:
        used = ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in row.cpu_seconds.items()
        )
        cores = row.seconds * (os.cpu_count() or 1)
        lines.append(f"  {row.name}: {used} of {cores:.1f} core-seconds")
        for kind, count in row.tally.errors.most_common(5):
            lines.append(f"    {count} x {kind}")
    console.print(
        "CPU used during each row:\n" + "\n".join(lines), highlight=False, style="dim"
    )
