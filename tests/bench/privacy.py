"""What sealing personal data costs: creates and a rebuild, sealed and clear.

Each pair runs in the same bench run on the same machine: HTTP creates
against ``ticketing api`` with ``TICKETING_SEAL_PERSONAL_DATA`` off, then on
(the same database, the same clients); and a rebuild of the projection
from position zero over a log stored clear, then over one stored sealed
(two fresh databases of the same size), where every ticket's key is read
once from ``privacy_keys``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench.harness import Measurement, ReadRow, bench_database, running_service
from tests.bench.http_creates import run_creates
from tests.bench.read_data import generate
from tests.bench.rebuild import run_rebuild


@dataclass
class PrivacyCost:
    creates_clear: Measurement
    creates_sealed: Measurement
    rebuild_clear: ReadRow
    rebuild_sealed: ReadRow


def run_privacy(
    args: argparse.Namespace,
    *,
    tenant: str,
    token: str,
    secret: str,
    tmp: Path,
    progress: Console,
) -> PrivacyCost:
    # Each row takes turns with its twin (clear, sealed, then sealed,
    # clear, ...) so that a change in the machine's other load falls on
    # both; each side keeps its fastest round.
    creates: dict[bool, list[Measurement]] = {False: [], True: []}
    with bench_database() as db:
        for round_ in range(args.privacy_rounds):
            for seal in _turns(round_):
                creates[seal].append(
                    _creates(args, db.url, token, secret, tmp, seal, progress)
                )
    rebuilds: dict[bool, list[ReadRow]] = {False: [], True: []}
    for round_ in range(args.privacy_rounds):
        for seal in _turns(round_):
            rebuilds[seal].append(_rebuild(args, tenant, seal, progress))
    fastest = {
        s: max(rows, key=lambda r: r.ops_per_second) for s, rows in creates.items()
    }
    best = {s: max(rows, key=lambda r: r.rate) for s, rows in rebuilds.items()}
    return PrivacyCost(fastest[False], fastest[True], best[False], best[True])


def _turns(round_: int) -> tuple[bool, bool]:
    return (False, True) if round_ % 2 == 0 else (True, False)


def _creates(
    args: argparse.Namespace,
    url: str,
    token: str,
    secret: str,
    tmp: Path,
    seal: bool,
    progress: Console,
) -> Measurement:
    state = "on" if seal else "off"
    progress.log(f"privacy: HTTP creates, sealing {state}")
    with running_service(
        url,
        secret,
        tmp / f"service-seal-{state}.log",
        TICKETING_SEAL_PERSONAL_DATA=str(seal).lower(),
    ) as service:
        row = run_creates(
            service.base_url,
            token,
            requests=args.requests,
            concurrency=args.concurrency,
            warmup=args.warmup,
            cpu_probe=service.cpu_probe,
        )
    row.name = f"HTTP create ticket, sealing {state}"
    return row


def _rebuild(
    args: argparse.Namespace, tenant: str, seal: bool, progress: Console
) -> ReadRow:
    with bench_database() as db:
        progress.log(
            f"privacy: storing {args.privacy_tickets:,} tickets"
            f" {'sealed' if seal else 'clear'}, then a rebuild"
        )
        generate(
            db.url, tenant=tenant, tickets=args.privacy_tickets, min_events=0, seal=seal
        )
        row = run_rebuild(db.url, tickets=args.privacy_tickets)
    row.name = f"rebuild, events stored {'sealed' if seal else 'clear'}"
    return row


def print_privacy(console: Console, cost: PrivacyCost) -> None:
    table = Table(title="personal data sealed (AES-256-GCM per ticket) vs clear")
    for column in (
        "row",
        "rate",
        "p50 ms",
        "p99 ms",
        "vs clear",
        "CPU",
        "CPU vs clear",
    ):
        table.add_column(column, justify="left" if column == "row" else "right")
    clear, sealed = cost.creates_clear, cost.creates_sealed
    for row in (clear, sealed):
        table.add_row(
            row.name,
            f"{row.ops_per_second:,.0f} creates/s",
            f"{row.percentile(50):.1f}",
            f"{row.percentile(99):.1f}",
            f"{row.ops_per_second / clear.ops_per_second:.2f}",
            f"{_service_cpu(row) * 1000:.2f} ms/create",
            f"{_service_cpu(row) / _service_cpu(clear):.2f}",
        )
    base = cost.rebuild_clear
    for read in (base, cost.rebuild_sealed):
        table.add_row(
            read.name,
            f"{read.rate:,.0f} events/s",
            "",
            "",
            f"{read.rate / base.rate:.2f}",
            f"{_rebuild_cpu(read) * 1e6:.0f} µs/event",
            f"{_rebuild_cpu(read) / _rebuild_cpu(base):.2f}",
        )
    console.print()
    console.print(table)
    console.print(
        "vs clear: the row's rate over the same row with sealing off, measured"
        " in this run (target: at least 0.85). Creates: the same database and"
        " clients. Rebuilds: fresh databases of the same"
        " tickets, taking turns; the fastest of each side's rounds. CPU: the"
        " API process's per create, the rebuilding process's per event.",
        style="dim",
        highlight=False,
    )


def _service_cpu(row: Measurement) -> float:
    """Seconds of the API process's CPU per successful create."""
    done = row.operations - row.errors
    return row.cpu_seconds.get("service", 0.0) / done if done else float("nan")


def _rebuild_cpu(row: ReadRow) -> float:
    """Seconds of the rebuilding process's CPU per event (the database's is
    not counted: it runs the same statements either way)."""
    used = row.cpu_seconds.get("this process (the rebuild)", 0.0)
    return used / row.count if row.count else float("nan")
