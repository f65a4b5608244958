"""Bulk job throughput beside single HTTP commands, in the same run.

One ``ticketing api`` process on a fresh database (its bulk runner in it,
``TICKETING_BULK_CONCURRENCY`` threads). Its tickets are opened over HTTP
first (not counted), then split in two: the first half is assigned one
``POST /tickets/{id}/assign`` at a time by ``--concurrency`` clients (the
baseline: the same command, the same process), the second half by one
``POST /tickets/bulk`` whose job is timed from the request until
``GET /jobs/{id}`` says it finished.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from tests.bench.harness import bench_database, running_service

ASSIGN = {"assignee_id": "agent-7"}


@dataclass
class BulkThroughput:
    tickets: int
    single_seconds: float
    single_errors: int
    bulk_seconds: float
    bulk_outcomes: dict[str, int]
    runner_concurrency: int
    clients: int

    @property
    def single_rate(self) -> float:
        return (self.tickets - self.single_errors) / self.single_seconds

    @property
    def bulk_rate(self) -> float:
        applied = self.bulk_outcomes["done"] + self.bulk_outcomes["conflict_retried"]
        return applied / self.bulk_seconds


def run_bulk(
    args: argparse.Namespace,
    *,
    token: str,
    secret: str,
    tmp: Path,
    progress: Console,
) -> BulkThroughput:
    auth = {"Authorization": f"Bearer {token}"}
    half = args.bulk_tickets // 2
    with (
        bench_database() as db,
        running_service(
            db.url,
            secret,
            tmp / "service-bulk.log",
            TICKETING_BULK_CONCURRENCY=str(args.bulk_concurrency),
        ) as service,
        httpx.Client(base_url=f"{service.base_url}/api/v1", headers=auth) as client,
        ThreadPoolExecutor(args.concurrency) as pool,
    ):
        progress.log(f"bulk: opening {2 * half:,} tickets over HTTP (not counted)")

        def open_one(n: int) -> str:
            answer = client.post(
                "/tickets/",
                json={"title": f"Bulk {n}", "customer_id": f"c-{n % 100}"},
            )
            answer.raise_for_status()
            return str(answer.json()["id"])

        ids = list(pool.map(open_one, range(2 * half)))

        progress.log(f"bulk: {half:,} single HTTP assigns")

        def assign(ticket_id: str) -> bool:
            answer = client.post(f"/tickets/{ticket_id}/assign", json=ASSIGN)
            return answer.status_code == 200

        began = time.perf_counter()
        results = list(pool.map(assign, ids[:half]))
        single_seconds = time.perf_counter() - began

        progress.log(f"bulk: one job assigning {half:,} tickets")
        began = time.perf_counter()
        started = client.post(
            "/tickets/bulk", json={"ids": ids[half:], "action": {"assign": ASSIGN}}
        )
        started.raise_for_status()
        job_url = f"/jobs/{started.json()['id']}"
        while True:
            job = client.get(job_url, params={"limit": 0}).json()
            if job["state"] == "finished":
                break
            time.sleep(0.01)
        bulk_seconds = time.perf_counter() - began
    return BulkThroughput(
        tickets=half,
        single_seconds=single_seconds,
        single_errors=results.count(False),
        bulk_seconds=bulk_seconds,
        bulk_outcomes=job["counts"],
        runner_concurrency=args.bulk_concurrency,
        clients=args.concurrency,
    )


def print_bulk(console: Console, result: BulkThroughput) -> None:
    table = Table(title="bulk job vs single HTTP commands (assign)")
    for column in ("row", "tickets", "seconds", "rate", "vs single"):
        table.add_column(column, justify="left" if column == "row" else "right")
    table.add_row(
        f"single POST /tickets/{{id}}/assign, {result.clients} clients",
        f"{result.tickets:,}",
        f"{result.single_seconds:.2f}",
        f"{result.single_rate:,.0f} tickets/s",
        "1.00",
    )
    table.add_row(
        f"one POST /tickets/bulk, {result.runner_concurrency} runner threads",
        f"{result.tickets:,}",
        f"{result.bulk_seconds:.2f}",
        f"{result.bulk_rate:,.0f} tickets/s",
        f"{result.bulk_rate / result.single_rate:.2f}",
    )
    console.print()
    console.print(table)
    outcomes = result.bulk_outcomes
    console.print(
        "Both in the same `ticketing api` process on the same fresh database,"
        " singles first. The job's time runs from its POST until GET /jobs"
        f" says finished (polled every 10 ms). Job outcomes: {outcomes['done']:,}"
        f" done, {outcomes['conflict_retried']:,} after a conflict,"
        f" {outcomes['refused']:,} refused; single errors: {result.single_errors:,}.",
        style="dim",
        highlight=False,
    )
