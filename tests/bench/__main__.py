"""``make bench``: the write path against an in-run baseline, then the read side.

The write side runs, in one go and against one fresh database:

1. baseline (a): raw psycopg transactions of one event row and one read
   row, one connection per concurrent client;
2. baseline (b): a minimal FastAPI endpoint inserting one row per POST,
   under the same uvicorn with the same workers (the Python HTTP limit);
3. ticket creates over HTTP, the real service under uvicorn in its own
   process, after a warm-up that is not counted;
4. a mixed run: create, assign, comment, resolve for each of N tickets;
5. what spans, metrics and rate limits cost (see span_cost.py): API CPU
   per create at one pace, with each of them on and off (alone: ``--only
   spans``).

Overload runs next (see overload.py): 200 concurrent clients from several
processes against the service's load shedding.

The full product runs next (see full_product.py): `ticketing dev` with every
worker as its own process, creates at rising fixed rates until one is not
sustained (every worker's lag under 1 s), against the same creates with no
workers.

The read side then runs against a second fresh database (see read_side.py):
a big tenant stored straight through the application, a timed rebuild of
the projection over it, projection lag while tickets are created at a
steady rate, and list and dashboard latency on that tenant.

The Kafka side runs next (see kafka_side.py): relay throughput against a
raw producer, and the latency from a create to its e-mail accepted by an
SMTP server under a steady rate of creates.

The timers run next (see timer_precision.py): how late SLA breaches are
recorded on the real clock with 10 000 timers pending, against the bare
claim-and-sleep loop they are built on.

Inbound e-mail runs next (see mail_in.py): messages/s and latency from an
IMAP APPEND to its ticket, against Dovecot's own FETCH.

Privacy runs next (see privacy.py): creates and a rebuild with personal
data sealed, beside the same with sealing off.

Bulk actions run next (see bulk.py): a bulk job's tickets/s beside the same
command sent once per ticket over HTTP.

The what-if replay runs last (see simulation.py): a 30-day simulation of
100 000 tickets beside the projection rebuild of the same log.

Each side prints its own table. Options: ``python -m tests.bench --help``.
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
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from tests.bench.baseline import run_baseline
from tests.bench.bulk import print_bulk, run_bulk
from tests.bench.full_product import (
    KEPT_PACE,
    LAG_LIMIT,
    SAMPLE_EVERY,
    FullProduct,
    full_product_table,
    run_full_product,
)
from tests.bench.harness import (
    BenchDatabase,
    BenchError,
    Measurement,
    ReadRow,
    background_load,
    bench_database,
    cpu_model,
    default_thread_limit,
    resident_mib,
    running_minimal_app,
    running_service,
)
from tests.bench.http_creates import run_creates, run_paced_creates
from tests.bench.http_mixed import OPERATIONS, run_mixed
from tests.bench.kafka_side import print_kafka_side, run_kafka_side
from tests.bench.macros import print_macros, run_macros
from tests.bench.mail_in import add_arguments as add_mail_arguments
from tests.bench.mail_in import print_mail_in, run_mail_in
from tests.bench.overload import add_arguments as add_overload_arguments
from tests.bench.overload import check_arguments as check_overload_arguments
from tests.bench.overload import print_overload, run_overload
from tests.bench.privacy import print_privacy, run_privacy
from tests.bench.read_side import ReadSide, read_table, run_read_side
from tests.bench.simulation import print_simulation, run_simulation_bench
from tests.bench.span_cost import SpanCost, print_span_cost, run_span_cost
from tests.bench.timer_precision import print_timer_precision, run_timer_precision
from tests.bench.view_counts import print_view_counts, run_view_counts
from tests.otlp_receiver import otlp_receiver

TENANT = "bench"
DEFAULT_PRODUCT_RATES = "5,10,15,20,30,40,60,80,100,150,200,300,400"


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
    spans = parser.add_argument_group("cost of spans, metrics and limits")
    spans.add_argument(
        "--span-cost-rate",
        type=float,
        default=150.0,
        help="creates/s every variant is paced at (default 150)",
    )
    spans.add_argument(
        "--span-cost-seconds",
        type=float,
        default=8.0,
        help="how long each variant's paced creates run (default 8)",
    )
    spans.add_argument(
        "--span-cost-rounds",
        type=int,
        default=2,
        help="rounds of all the variants, taking turns (default 2)",
    )
    read = parser.add_argument_group("read side")
    read.add_argument(
        "--list-tickets",
        type=int,
        default=200_000,
        help="tickets of the big tenant the queries run on (default 200000)",
    )
    read.add_argument(
        "--rebuild-events",
        type=int,
        default=100_000,
        help="at least this many events in the log the rebuild replays; "
        "the tickets above make 1.2 events each, notes top it up "
        "(default 100000)",
    )
    read.add_argument(
        "--lag-rate", type=float, default=50.0, help="creates/s (default 50)"
    )
    read.add_argument(
        "--lag-seconds",
        type=float,
        default=10.0,
        help="how long creates run for the lag (default 10)",
    )
    read.add_argument(
        "--lag-clients",
        type=int,
        default=4,
        help="concurrent clients pacing the creates (default 4)",
    )
    read.add_argument(
        "--read-your-writes",
        type=int,
        default=50,
        help="create-then-list round trips with min_position, 0: none (default 50)",
    )
    read.add_argument(
        "--list-requests",
        type=int,
        default=200,
        help="timed GET /tickets/ requests (default 200)",
    )
    read.add_argument(
        "--view-requests",
        type=int,
        default=100,
        help="timed GET /views requests, 20 views each (default 100)",
    )
    read.add_argument(
        "--dashboard-requests",
        type=int,
        default=30,
        help="timed dashboard requests (default 30)",
    )
    parser.add_argument(
        "--macro-tickets",
        type=int,
        default=500,
        help="tickets changed by a macro, and by separate commands (default 500)",
    )
    parser.add_argument(
        "--privacy-tickets",
        type=int,
        default=20_000,
        help="tickets of each log the sealed and clear rebuilds replay (default 20000)",
    )
    parser.add_argument(
        "--privacy-rounds",
        type=int,
        default=3,
        help="rounds of each privacy row, sealed and clear taking turns (default 3)",
    )
    bulk = parser.add_argument_group("bulk actions")
    bulk.add_argument(
        "--bulk-tickets",
        type=int,
        default=4000,
        help="tickets: half assigned one request each, half by one job (4000)",
    )
    bulk.add_argument(
        "--bulk-concurrency",
        type=int,
        default=4,
        help="the bulk runner's threads (TICKETING_BULK_CONCURRENCY, default 4)",
    )
    parser.add_argument(
        "--simulation-tickets",
        type=int,
        default=100_000,
        help="tickets of the 30 days the what-if replay runs over (default 100000)",
    )
    kafka = parser.add_argument_group("Kafka side")
    kafka.add_argument(
        "--relay-events",
        type=int,
        default=20_000,
        help="events in the log the relay publishes (default 20000)",
    )
    kafka.add_argument(
        "--notify-rate",
        type=float,
        default=20.0,
        help="creates/s while e-mail latency is measured (default 20)",
    )
    kafka.add_argument(
        "--notify-seconds",
        type=float,
        default=15.0,
        help="how long those creates run (default 15)",
    )
    timers = parser.add_argument_group("timers")
    timers.add_argument(
        "--pending-timers",
        type=int,
        default=10_000,
        help="far timers waiting in the deadline table (default 10000)",
    )
    timers.add_argument(
        "--timer-tickets",
        type=int,
        default=300,
        help="critical tickets whose breaches are timed (default 300)",
    )
    timers.add_argument(
        "--timer-seconds",
        type=float,
        default=30.0,
        help="those tickets are created evenly over this long (default 30)",
    )
    timers.add_argument(
        "--timer-response",
        type=float,
        default=1.0,
        help="their first-response target in minutes, may be fractional; "
        "the breaches fall due this long after each create (default 1)",
    )
    product = parser.add_argument_group("full product")
    product.add_argument(
        "--product-rates",
        type=_rates,
        default=_rates(DEFAULT_PRODUCT_RATES),
        help="creates/s of the steps, ascending, until one is not sustained "
        f"(default {DEFAULT_PRODUCT_RATES})",
    )
    product.add_argument(
        "--product-seconds",
        type=float,
        default=10.0,
        help="how long each step's creates run (default 10)",
    )
    parser.add_argument(
        "--only",
        choices=(
            "write",
            "spans",
            "overload",
            "product",
            "read",
            "views",
            "kafka",
            "timers",
            "mail",
            "privacy",
            "macros",
            "simulation",
            "bulk",
        ),
        help="run one part only (default: all; spans is a part of write)",
    )
    add_overload_arguments(parser)
    add_mail_arguments(parser)
    args = parser.parse_args(argv)
    check_overload_arguments(parser, args)
    for name in (
        "requests",
        "tickets",
        "concurrency",
        "list_tickets",
        "lag_clients",
        "list_requests",
        "dashboard_requests",
        "relay_events",
        "pending_timers",
        "timer_tickets",
        "span_cost_rounds",
        "bulk_tickets",
        "bulk_concurrency",
        "simulation_tickets",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("warmup", "rebuild_events", "read_your_writes"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if args.lag_rate <= 0 or args.lag_seconds <= 0:
        parser.error("--lag-rate and --lag-seconds must be positive")
    if args.notify_rate <= 0 or args.notify_seconds <= 0:
        parser.error("--notify-rate and --notify-seconds must be positive")
    if args.span_cost_rate <= 0 or args.span_cost_seconds <= 0:
        parser.error("--span-cost-rate and --span-cost-seconds must be positive")
    if args.product_seconds <= 0:
        parser.error("--product-seconds must be positive")
    if args.timer_seconds <= 0 or args.timer_response <= 0:
        parser.error("--timer-seconds and --timer-response must be positive")
    return args


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from None
    if not rates or any(r <= 0 for r in rates) or rates != sorted(rates):
        raise argparse.ArgumentTypeError("rates must be positive and ascending")
    return rates


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the service and database are cleaned."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _ratio(row: Measurement, baseline: Measurement | None) -> str:
    if baseline is None or not row.comparable or baseline.ops_per_second <= 0:
        return "-"
    return f"{row.ops_per_second / baseline.ops_per_second:.3f}x"


def _cpu_per_operation(row: Measurement) -> str:
    """Milliseconds of the served process(es)' CPU per successful request."""
    service = row.cpu_seconds.get("service")
    done = row.operations - row.errors
    if not service or not done:
        return "-"
    return f"{service * 1000 / done:.2f}"


def _table(
    rows: list[Measurement], baseline: Measurement, http: Measurement | None = None
) -> Table:
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
        "vs (a)",
        "vs (b)",
        "API CPU ms/op",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        cpu = _cpu_per_operation(row)
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
            _ratio(row, baseline),
            _ratio(row, http),
            cpu,
            style="red" if row.errors else None,
            end_section=row is baseline or row is http,
        )
    return table


def _print_machine(console: Console, load: float | None) -> None:
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


def _print_write_setup(
    console: Console, db: BenchDatabase, pool_size: int, threads: int, workers: int
) -> None:
    console.print(
        f"[bold]PostgreSQL[/]  {db.server_version} ({db.origin}); fresh database "
        f"{db.name}; fsync={db.fsync}, synchronous_commit={db.synchronous_commit}",
        highlight=False,
    )
    console.print(
        f"[bold]service[/]     `ticketing api` under uvicorn, {workers} worker "
        f"processes (its default), LOG_LEVEL=warning; DB pool per process "
        f"TICKETING_DB_POOL_SIZE={pool_size}; anyio worker threads={threads} "
        "(defaults left). Baseline (b): the same uvicorn and workers",
        highlight=False,
    )


def _print_notes(console: Console, args: argparse.Namespace) -> None:
    console.print(
        f"Clients: asyncio + httpx, one pool of {args.concurrency} connections, on "
        "the same machine as the service and PostgreSQL (they share the cores). "
        f"Creates: {args.warmup} warm-up requests first, not counted. Paced "
        "creates: open loop, each latency from the moment the create was due.\n"
        "ops/s counts successful operations; latency is what a client sees. "
        "Mixed per-operation rows: that operation's share of the mixed run's "
        "throughput, hence no baseline ratio.",
        highlight=False,
        style="dim",
    )


def _print_cpu(console: Console, rows: Sequence[Measurement | ReadRow]) -> None:
    """Who used the cores: on a small machine the clients compete too."""
    cores = os.cpu_count() or 1
    lines = []
    for row in rows:
        if not row.cpu_seconds or row.seconds <= 0:
            continue
        available = row.seconds * cores
        first = ("client", "service", "worker")
        order = [name for name in first if name in row.cpu_seconds]
        order += [n for n in row.cpu_seconds if n not in (*first, "whole machine")]
        order += ["whole machine"] if "whole machine" in row.cpu_seconds else []
        used = ", ".join(
            f"{name} {row.cpu_seconds[name]:.1f}s "
            f"({row.cpu_seconds[name] / available:.0%})"
            for name in order
        )
        lines.append(f"  {row.name}: {used} of {available:.1f} core-seconds")
    if lines:
        console.print(
            "CPU used during each counted run (the whole machine includes "
            "PostgreSQL and anything else running):\n" + "\n".join(lines),
            highlight=False,
            style="dim",
        )


def _print_memory(console: Console, memory: dict[int, float]) -> None:
    """The API's resident memory after the creates, per process."""
    if not memory:
        return
    each = ", ".join(f"{mib:.0f}" for mib in memory.values())
    console.print(
        f"API memory (RSS) after the creates: {sum(memory.values()):.0f} MiB in "
        f"{len(memory)} processes (supervisor first: {each} MiB)",
        highlight=False,
        style="dim",
    )


def _print_errors(console: Console, rows: Sequence[Measurement | ReadRow]) -> None:
    for row in rows:
        for sample in row.error_samples:
            console.print(f"[red]{row.name}[/]: {sample}", highlight=False)


def _print_log(console: Console, name: str, text: str) -> None:
    if text:
        console.print(f"[bold]{name} log (warnings and errors), last lines:[/]")
        console.print("\n".join(text.splitlines()[-20:]), highlight=False)


def _run_write_side(
    args: argparse.Namespace,
    *,
    secret: str,
    token: str,
    tmp: Path,
    out: Console,
    progress: Console,
) -> None:
    """Run the write side and print its table."""
    from dotmac.ticketing.service.settings import Settings

    threads = default_thread_limit()
    with bench_database() as db:
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
        workers = Settings(database_url=db.url, jwt_secret=secret).api_worker_count
        progress.log(
            f"baseline (b): a minimal FastAPI create, {workers} uvicorn workers"
        )
        with running_minimal_app(db.url, workers, tmp / "minimal.log") as minimal:
            http = run_creates(
                minimal.base_url,
                token,
                requests=args.requests,
                concurrency=args.concurrency,
                warmup=args.warmup,
                cpu_probe=minimal.cpu_probe,
            )
        http.name = "baseline (b): minimal FastAPI + psycopg, 1 row / POST"
        progress.log("starting the service")
        log = tmp / "service.log"
        with (
            otlp_receiver() as spans,
            running_service(
                db.url, secret, log, TICKETING_OTLP_ENDPOINT=spans.endpoint
            ) as service,
        ):
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
            # Right after the load, while its pools and caches are full.
            memory = resident_mib(service.pid)
            half = max(1.0, creates.ops_per_second / 2)
            progress.log(f"HTTP creates paced at {half:.0f}/s for 10 s")
            paced = run_paced_creates(
                service.base_url,
                token,
                rate=half,
                seconds=10.0,
                clients=args.concurrency * 2,
                cpu_probe=service.cpu_probe,
            )
            paced.name = f"HTTP create ticket, paced at {half:.0f}/s (half)"
            paced.comparable = False  # its rate is the pace, not a result
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
        progress.log("the same creates with metrics, rate limits and spans off")
        with running_service(
            db.url,
            secret,
            tmp / "service-bare.log",
            TICKETING_METRICS="false",
            TICKETING_RATE_LIMIT_TENANT="off",
            TICKETING_RATE_LIMIT_SUBJECT="off",
        ) as bare:
            no_metrics = run_creates(
                bare.base_url,
                token,
                requests=args.requests,
                concurrency=args.concurrency,
                warmup=args.warmup,
                cpu_probe=bare.cpu_probe,
            )
        no_metrics.name = "HTTP create ticket, no metrics, limits, spans"
        span_cost = _run_span_cost(args, db.url, secret, token, tmp, progress)
        progress.log("service stopped; dropping the database")
        service_log = log.read_text(encoding="utf-8", errors="replace").strip()

    rows = [baseline, http, creates, no_metrics, paced]
    rows += [mixed[op] for op in OPERATIONS]
    rows.append(mixed["all"])
    out.print()
    _print_write_setup(out, db, pool_size, threads, workers)
    out.print(_table(rows, baseline, http))
    _print_notes(out, args)
    _print_cpu(out, rows)
    _print_memory(out, memory)
    _print_errors(out, rows)
    _print_log(out, "service", service_log)
    print_span_cost(out, span_cost)


def _run_span_cost(
    args: argparse.Namespace,
    database_url: str,
    secret: str,
    token: str,
    tmp: Path,
    progress: Console,
) -> SpanCost:
    return run_span_cost(
        database_url,
        secret,
        token,
        rate=args.span_cost_rate,
        seconds=args.span_cost_seconds,
        rounds=args.span_cost_rounds,
        tmp=tmp,
        progress=progress,
    )


def _run_span_cost_alone(
    args: argparse.Namespace,
    *,
    secret: str,
    token: str,
    tmp: Path,
    out: Console,
    progress: Console,
) -> None:
    with bench_database() as db:
        cost = _run_span_cost(args, db.url, secret, token, tmp, progress)
    out.print(
        f"[bold]PostgreSQL[/]  {db.server_version} ({db.origin}); fresh database "
        f"{db.name}",
        highlight=False,
    )
    print_span_cost(out, cost)


def _print_full_product(console: Console, product: FullProduct) -> None:
    console.print()
    console.print(
        "[bold]full product[/] `ticketing dev` on a fresh database: the API "
        "(its default workers) and each worker as its own process, a bundled "
        "broker, e-mail to an SMTP server in this process",
        highlight=False,
    )
    console.print(full_product_table(product))
    highest = product.highest
    summary = (
        "no step was sustained"
        if highest is None
        else f"highest sustained: {highest.rate:.0f} creates/s "
        f"({highest.creates.ops_per_second / product.no_workers.ops_per_second:.2f}"
        " of the rate with no workers)"
    )
    console.print(
        f"{summary}. A step is sustained when no create failed, the creates "
        f"kept {KEPT_PACE:.0%} of the pace and every worker's lag stayed under "
        f"{LAG_LIMIT:g} s. Lag: from a mark of the worker's input (log head, "
        f"or the topic's end offsets), sampled every {SAMPLE_EVERY * 1000:.0f} ms, "
        "to the sample where the worker's recorded progress passed it. "
        "Product CPU: the whole `ticketing dev` tree, in cores busy.",
        highlight=False,
        style="dim",
    )
    _print_cpu(console, [product.no_workers])
    for step in product.steps:
        seconds = step.cpu_seconds
        parts = ", ".join(
            f"{name} {seconds[name]:.1f}s"
            for name in sorted(seconds, key=lambda n: -seconds[n])
            if name not in ("product", "per second")
        )
        console.print(
            f"  {step.rate:.0f}/s step, CPU by process: {parts} "
            f"(whole tree {seconds.get('product', 0.0):.1f}s)",
            highlight=False,
            style="dim",
        )
    _print_errors(console, [product.no_workers, *(s.creates for s in product.steps)])
    for name, text in product.logs.items():
        _print_log(console, name, text)


def _print_read_side(console: Console, read: ReadSide) -> None:
    data = read.data
    console.print()
    console.print(
        f"[bold]read side[/]   fresh database {read.db.name} on the same server; "
        f"tenant {data.tenant!r}: {data.tickets:,} tickets stored, "
        f"{data.events:,} events; `ticketing api` and `ticketing worker "
        "projections` each in its own process, LOG_LEVEL=warning; clients "
        "(httpx, psycopg) in this process, on the same cores",
        highlight=False,
    )
    console.print(read_table(read.rows))
    console.print(
        "seconds: the row's own run; for a kind of GET, the time spent in its "
        "requests (one at a time). rate: done per second of that. Latencies "
        "are what a client sees; the p99 of fewer than 100 samples is about "
        "the maximum.\n"
        "Lag: the service answers 201 after the event is committed; from then "
        "a poller in this process (its own psycopg connection) looks for the "
        "row every 2 ms. That leaves out the response's way back to the client "
        "and adds up to a poll interval. Read-your-writes: the service's "
        "wait polls the projection's position from 5 ms, doubling up to 100 ms.",
        highlight=False,
        style="dim",
    )
    _print_cpu(console, read.rows)
    _print_errors(console, read.rows)
    for name, text in read.logs.items():
        _print_log(console, name, text)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _exit_on_sigterm()
    started = time.monotonic()
    out = Console()
    if not out.is_terminal:
        out = Console(width=max(out.width, 190))
    progress = Console(stderr=True, log_path=False)
    try:
        from dotmac.ticketing.service.auth import issue_token
        from dotmac.ticketing.service.logging import configure_logging

        # The rebuild runs the projection worker in this process: its log
        # lines go to stderr, warnings and errors only.
        configure_logging("console", "warning")
        secret = secrets.token_urlsafe(48)
        token = issue_token(
            secret, tenant_id=TENANT, sub="bench-agent", roles=["agent"]
        )
        admin = issue_token(
            secret, tenant_id=TENANT, sub="bench-admin", roles=["admin"]
        )
        load = background_load()
        out.print()
        _print_machine(out, load)
        with tempfile.TemporaryDirectory(prefix="ticketing-bench-") as tmp:
            if args.only in (None, "write"):
                _run_write_side(
                    args,
                    secret=secret,
                    token=token,
                    tmp=Path(tmp),
                    out=out,
                    progress=progress,
                )
            if args.only == "spans":
                _run_span_cost_alone(
                    args,
                    secret=secret,
                    token=token,
                    tmp=Path(tmp),
                    out=out,
                    progress=progress,
                )
            if args.only in (None, "overload"):
                with bench_database() as db:
                    overload = run_overload(
                        args, db.url, secret, token, tmp=Path(tmp), progress=progress
                    )
                print_overload(out, overload)
            if args.only in (None, "product"):
                product = run_full_product(
                    args, token=token, secret=secret, tmp=Path(tmp), progress=progress
                )
                _print_full_product(out, product)
            if args.only in (None, "read"):
                read = run_read_side(
                    args,
                    tenant=TENANT,
                    agent_token=token,
                    admin_token=admin,
                    secret=secret,
                    tmp=Path(tmp),
                    progress=progress,
                )
                _print_read_side(out, read)
            if args.only in (None, "views"):
                counts = run_view_counts(
                    args,
                    tenant=TENANT,
                    agent_token=token,
                    admin_token=admin,
                    secret=secret,
                    tmp=Path(tmp),
                    progress=progress,
                )
                print_view_counts(out, counts)
                _print_errors(out, counts.rows)
            if args.only in (None, "kafka"):
                kafka = run_kafka_side(
                    args, tenant=TENANT, tmp=Path(tmp), progress=progress
                )
                print_kafka_side(out, kafka)
                _print_cpu(out, kafka.rows)
                _print_errors(out, kafka.rows)
            if args.only in (None, "timers"):
                timers = run_timer_precision(
                    args, tenant=TENANT, tmp=Path(tmp), progress=progress
                )
                print_timer_precision(out, timers)
                _print_cpu(out, timers.rows)
                _print_errors(out, timers.rows)
            if args.only in (None, "mail"):
                print_mail_in(out, run_mail_in(args, progress=progress))
            if args.only in (None, "privacy"):
                cost = run_privacy(
                    args,
                    tenant=TENANT,
                    token=token,
                    secret=secret,
                    tmp=Path(tmp),
                    progress=progress,
                )
                print_privacy(out, cost)
            if args.only in (None, "bulk"):
                print_bulk(
                    out,
                    run_bulk(
                        args,
                        token=token,
                        secret=secret,
                        tmp=Path(tmp),
                        progress=progress,
                    ),
                )
            if args.only in (None, "simulation"):
                speed = run_simulation_bench(args, tenant=TENANT, progress=progress)
                print_simulation(out, speed)
            if args.only in (None, "macros"):
                print_macros(out, run_macros(args, tenant=TENANT, progress=progress))
    except KeyboardInterrupt:
        progress.print("[yellow]interrupted; processes stopped, databases dropped[/]")
        return 130
    except BenchError as error:
        progress.print(f"[bold red]error:[/] {error}", highlight=False)
        return 1
    minutes, seconds = divmod(time.monotonic() - started, 60)
    out.print(
        f"whole run: {minutes:.0f} min {seconds:02.0f} s", highlight=False, style="dim"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
