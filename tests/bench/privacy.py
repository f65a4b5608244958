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
    creates: dict[bool, Measurement] = {}
    with bench_database() as db:
        for seal in (False, True):
            progress.log(f"privacy: HTTP creates, sealing {'on' if seal else 'off'}")
            with running_service(
                db.url,
                secret,
                tmp / f"service-seal-{seal}.log",
                TICKETING_SEAL_PERSONAL_DATA=str(seal).lower(),
            ) as service:
                creates[seal] = run_creates(
                    service.base_url,
                    token,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    cpu_probe=service.cpu_probe,
                )
            creates[
                seal
            ].name = f"HTTP create ticket, sealing {'on' if seal else 'off'}"
    rebuilds: dict[bool, ReadRow] = {}
    for seal in (False, True):
        with bench_database() as db:
            progress.log(
                f"privacy: storing {args.privacy_tickets:,} tickets"
                f" {'sealed' if seal else 'clear'}, then a rebuild"
            )
            generate(
                db.url,
                tenant=tenant,
                tickets=args.privacy_tickets,
                min_events=0,
                seal=seal,
            )
            rebuilds[seal] = run_rebuild(db.url, tickets=args.privacy_tickets)
            rebuilds[
                seal
            ].name = f"rebuild, events stored {'sealed' if seal else 'clear'}"
    return PrivacyCost(creates[False], creates[True], rebuilds[False], rebuilds[True])


def print_privacy(console: Console, cost: PrivacyCost) -> None:
    table = Table(title="personal data sealed (AES-256-GCM per ticket) vs clear")
    for column in ("row", "rate", "p50 ms", "p99 ms", "vs clear"):
        table.add_column(column, justify="left" if column == "row" else "right")
    clear, sealed = cost.creates_clear, cost.creates_sealed
    for row in (clear, sealed):
        table.add_row(
            row.name,
            f"{row.ops_per_second:,.0f} creates/s",
            f"{row.percentile(50):.1f}",
            f"{row.percentile(99):.1f}",
            f"{row.ops_per_second / clear.ops_per_second:.2f}",
        )
    base = cost.rebuild_clear
    for read in (base, cost.rebuild_sealed):
        table.add_row(
            read.name,
            f"{read.rate:,.0f} events/s",
            "",
            "",
            f"{read.rate / base.rate:.2f}",
        )
    console.print()
    console.print(table)
    console.print(
        "vs clear: the row's rate over the same row with sealing off, measured"
        " in this run (target: at least 0.85). Creates: the same database and"
        " clients, sealing off first. Rebuilds: two fresh databases of the"
        " same tickets.",
        style="dim",
        highlight=False,
    )
