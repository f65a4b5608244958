"""``make bench``: write-path throughput over HTTP against an in-run baseline.

Runs, in one go and against one fresh database:

1. the baseline: raw psycopg transactions of one event row and one read
   row, one connection per concurrent client;
2. ticket creates over HTTP, the real service under uvicorn in its own
   process, after a warm-up that is not counted;
3. a mixed run: create, assign, comment, resolve for each of N tickets.

and prints one table. Options: ``python -m tests.bench --help``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import secrets
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from tests.bench.baseline import run_baseline
from tests.bench.harness import (
    BenchDatabase,
    BenchError,
    Measurement,
    background_load,
    bench_database,
    cpu_model,
    default_thread_limit,
    running_service,
)
from tests.bench.http_creates import run_creates
from tests.bench.http_mixed import OPERATIONS, run_mixed

TENANT = "bench"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=3000,
        help="counted HTTP creates, and baseline transactions (default 3000)",
    )
    parser.add_argument(
        "--tickets",
        type=int,
        default=500,
        help="tickets of the mixed run, 4 requests each (default 500)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="concurrent clients (default 16)"
    )
    parser.add_argument(
        "--warmup", type=int, default=100, help="uncounted requests first (100)"
    )
    args = parser.parse_args(argv)
    for name in ("requests", "tickets", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the service and database are cleaned."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _table(rows: list[Measurement], baseline: Measurement) -> Table:
    table = Table(title="Write path: throughput and latency")
    table.add_column("benchmark", no_wrap=True)
    for column in (
        "operations",
        "concurrency",
        "seconds",
        "ops/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "vs baseline",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        ratio = (
            f"{row.ops_per_second / baseline.ops_per_second:.3f}x"
            if row.comparable and baseline.ops_per_second > 0
            else "-"
        )
        table.add_row(
            row.name,
            str(row.operations),
            str(row.concurrency),
            f"{row.seconds:.2f}",
            f"{row.ops_per_second:.0f}",
            _ms(row.percentile(50)),
            _ms(row.percentile(95)),
            _ms(row.percentile(99)),
            str(row.errors),
            ratio,
            style="red" if row.errors else None,
            end_section=row is baseline,
        )
    return table


def _print_machine(
    console: Console,
    db: BenchDatabase,
    pool_size: int,
    threads: int,
    load: float | None,
) -> None:
    busy = "" if load is None else f"; {load:.0%} busy just before the run"
    console.print(
        f"[bold]machine[/]     {os.cpu_count()} cores, {cpu_model()}; "
        f"Python {platform.python_version()} on {platform.system()}{busy}",
        highlight=False,
    )
    if load is not None and load > 0.2:
        console.print(
            "[yellow]warning:[/] something else was using the CPU; "
            "the numbers below are lower than on an idle machine",
            highlight=False,
        )
    console.print(
        f"[bold]PostgreSQL[/]  {db.server_version} ({db.origin}); fresh database "
        f"{db.name}; fsync={db.fsync}, synchronous_commit={db.synchronous_commit}",
        highlight=False,
    )
    console.print(
        f"[bold]service[/]     `ticketing api` under uvicorn in its own process, "
        f"LOG_LEVEL=warning; DB pool TICKETING_DB_POOL_SIZE={pool_size} "
        f"(+{pool_size} overflow); anyio worker threads={threads} (defaults left)",
        highlight=False,
    )


def _print_notes(console: Console, args: argparse.Namespace) -> None:
    console.print(
        f"Clients: asyncio + httpx, one pool of {args.concurrency} connections, on "
        "the same machine as the service and PostgreSQL (they share the cores). "
        f"Creates: {args.warmup} warm-up requests first, not counted.\n"
        "ops/s counts successful operations; latency is what a client sees. "
        "Mixed per-operation rows: that operation's share of the mixed run's "
        "throughput, hence no baseline ratio.",
        highlight=False,
        style="dim",
    )


def _print_cpu(console: Console, rows: list[Measurement]) -> None:
    """Who used the cores: on a small machine the clients compete too."""
    cores = os.cpu_count() or 1
    lines = []
    for row in rows:
        if not row.cpu_seconds or row.seconds <= 0:
            continue
        available = row.seconds * cores
        order = ("client", "service", "whole machine")
        used = ", ".join(
            f"{name} {row.cpu_seconds[name]:.1f}s "
            f"({row.cpu_seconds[name] / available:.0%})"
            for name in order
            if name in row.cpu_seconds
        )
        lines.append(f"  {row.name}: {used} of {available:.1f} core-seconds")
    if lines:
        console.print(
            "CPU used during each counted run (the whole machine includes "
            "PostgreSQL and anything else running):\n" + "\n".join(lines),
            highlight=False,
            style="dim",
        )


def _print_errors(console: Console, rows: list[Measurement]) -> None:
    for row in rows:
        for sample in row.error_samples:
            console.print(f"[red]{row.name}[/]: {sample}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _exit_on_sigterm()
    out = Console()
    if not out.is_terminal:
        out = Console(width=max(out.width, 150))
    progress = Console(stderr=True, log_path=False)
    try:
        from service.auth import issue_token
        from service.settings import Settings

        secret = secrets.token_urlsafe(48)
        token = issue_token(
            secret, tenant_id=TENANT, sub="bench-agent", roles=["agent"]
        )
        threads = default_thread_limit()
        load = background_load()
        with (
            tempfile.TemporaryDirectory(prefix="ticketing-bench-") as tmp,
            bench_database() as db,
        ):
            # The same environment the service process builds its Settings from.
            pool_size = Settings(database_url=db.url, jwt_secret=secret).db_pool_size
            progress.log(
                f"baseline: {args.requests} raw psycopg transactions, "
                f"{args.concurrency} connections"
            )
            baseline = run_baseline(
                db.url,
                transactions=args.requests,
                concurrency=args.concurrency,
                warmup=args.warmup,
            )
            progress.log("starting the service")
            log = Path(tmp) / "service.log"
            with running_service(db.url, secret, log) as service:
                progress.log(
                    f"HTTP creates: {args.warmup} warm-up + {args.requests} "
                    f"requests, {args.concurrency} clients"
                )
                creates = run_creates(
                    service.base_url,
                    token,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    cpu_probe=service.cpu_probe,
                )
                progress.log(
                    f"HTTP mixed: {args.tickets} tickets x {len(OPERATIONS)} requests"
                )
                mixed = run_mixed(
                    service.base_url,
                    token,
                    tickets=args.tickets,
                    concurrency=args.concurrency,
                    cpu_probe=service.cpu_probe,
                )
            progress.log("service stopped; dropping the database")
            service_log = log.read_text(encoding="utf-8", errors="replace").strip()
    except KeyboardInterrupt:
        progress.print("[yellow]interrupted; service stopped, database dropped[/]")
        return 130
    except BenchError as error:
        progress.print(f"[bold red]error:[/] {error}", highlight=False)
        return 1

    rows = [baseline, creates, *(mixed[op] for op in OPERATIONS), mixed["all"]]
    out.print()
    _print_machine(out, db, pool_size, threads, load)
    out.print(_table(rows, baseline))
    _print_notes(out, args)
    _print_cpu(out, rows)
    _print_errors(out, rows)
    if service_log:
        out.print("[bold]service log (warnings and errors), last lines:[/]")
        out.print("\n".join(service_log.splitlines()[-20:]), highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
