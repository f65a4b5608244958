"""View counts at 200k tickets: ``GET /views`` with 20 views, one statement.

On a database of its own: the read side's big tenant (read_data.py), a
rebuild of the projection (rebuild.py), a ``VACUUM ANALYZE`` of the build's
tickets table (what autovacuum does soon after a rebuild: the counts' scan
is index-only once the visibility map is set), then ``ticketing api`` in
its own process. An admin saves 20 views shared with the tenant, with the
filters agents keep (statuses, priorities, teams, agents, tags, SLA,
escalations, dates; no full text). Timed, one request at a time and
interleaved, so a slow moment of the shared machine hits each kind alike:

- ``GET /views``: the 20 views and their counts;
- the baselines, in the same run: ``GET /tickets/`` (its default page) and
  one plain ``SELECT count(*)`` of the tenant's tickets over psycopg.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from tests.bench.harness import (
    BenchError,
    ReadRow,
    bench_database,
    percentile,
    running_service,
)
from tests.bench.http_creates import TICKETS
from tests.bench.read_data import AGENTS, TEAMS, generate
from tests.bench.rebuild import run_rebuild

VIEWS = f"{TICKETS.rsplit('/tickets', 1)[0]}/views"
WARMUP = 5


def _views(now: datetime) -> list[dict[str, Any]]:
    """Twenty views as a desk keeps them."""
    week_ago = (now - timedelta(days=7)).isoformat()
    month_ago = (now - timedelta(days=30)).isoformat()
    views: list[dict[str, Any]] = [
        {"name": "Open", "filters": {"status": ["new", "open", "in_progress"]}},
        {"name": "Mine", "filters": {"assignee_id": ["me"]}},
        {"name": "Unassigned", "filters": {"unassigned": True, "status": ["new"]}},
        {
            "name": "Urgent and critical open",
            "filters": {
                "priority": ["urgent", "critical"],
                "status": ["new", "open", "in_progress"],
            },
        },
        {"name": "Breached", "filters": {"sla_breached": True}},
        {"name": "Resolved this week", "filters": {"status": ["resolved"]}},
        {"name": "Pending escalation", "filters": {"escalation_pending": True}},
        {"name": "VIP", "filters": {"tags": ["vip"]}},
        {
            "name": "Network or security",
            "filters": {"tags": ["network", "security"], "tags_match": "any"},
        },
        {"name": "Created this week", "filters": {"created_from": week_ago}},
        {
            "name": "Untouched for a month",
            "filters": {"updated_to": month_ago, "status": ["new", "open"]},
        },
        {"name": "No team", "filters": {"assigned_team": ["none"]}},
    ]
    views += [
        {"name": f"Team {team}", "filters": {"assigned_team": [team]}}
        for team in TEAMS[:4]
    ]
    views += [
        {
            "name": f"agent-{n} open",
            "filters": {"assignee_id": [f"agent-{n}"], "status": ["open"]},
        }
        for n in range(0, AGENTS, AGENTS // 4)
    ][:4]
    for view in views:
        view["shared"] = "tenant"
    return views[:20]


@dataclass
class ViewCounts:
    tickets: int
    views: int
    counts: dict[str, int]
    rows: list[ReadRow] = field(default_factory=list)


def run_view_counts(
    args: argparse.Namespace,
    *,
    tenant: str,
    agent_token: str,
    admin_token: str,
    secret: str,
    tmp: Path,
    progress: Console,
) -> ViewCounts:
    with bench_database() as db:
        progress.log(f"view counts: storing {args.list_tickets:,} tickets")
        data = generate(db.url, tenant=tenant, tickets=args.list_tickets, min_events=0)
        progress.log(f"view counts: rebuilding over {data.events:,} events")
        run_rebuild(db.url, tickets=data.tickets)
        schema = _vacuum_active_build(db.url)
        with running_service(db.url, secret, tmp / "views-service.log") as service:
            base = service.base_url
            admin = {"Authorization": f"Bearer {admin_token}"}
            agent = {"Authorization": f"Bearer {agent_token}"}
            with httpx.Client(base_url=base, timeout=30) as client:
                for view in _views(datetime.now(UTC)):
                    saved = client.post(VIEWS, json=view, headers=admin)
                    if saved.status_code != 201:
                        raise BenchError(f"POST /views -> {saved.text[:300]}")
                listed = client.get(VIEWS, headers=agent)
                if listed.status_code != 200:
                    raise BenchError(f"GET /views -> {listed.text[:300]}")
                counts = {v["name"]: v["count"] for v in listed.json()}
                progress.log(
                    f"view counts: {args.view_requests} timed GET /views "
                    f"({len(counts)} views), each beside its baselines"
                )
                rows = _timed(client, agent, db.url, schema, tenant, args)
    return ViewCounts(data.tickets, len(counts), counts, rows)


def _vacuum_active_build(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT schema_name FROM projection_builds"
            " WHERE projection = 'tickets' AND state = 'active'"
        ).fetchone()
        if row is None:
            raise BenchError("no active tickets build after the rebuild")
        schema = str(row[0])
        conn.execute(
            sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, "tickets"))
        )
    return schema


def _timed(
    client: httpx.Client,
    agent: dict[str, str],
    url: str,
    schema: str,
    tenant: str,
    args: argparse.Namespace,
) -> list[ReadRow]:
    views = ReadRow("GET /views (20 views, counts)", 0, 0.0, "req", "")
    tickets = ReadRow("baseline: GET /tickets/ (default page)", 0, 0.0, "req", "")
    counted = ReadRow(
        "baseline: SELECT count(*) of the tenant (psycopg)", 0, 0.0, "q", ""
    )
    count_sql = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(
        sql.Identifier(schema, "tickets")
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(WARMUP + args.view_requests):
            timed = n >= WARMUP
            for row, run in (
                (views, lambda: client.get(VIEWS, headers=agent)),
                (tickets, lambda: client.get(f"{TICKETS}/", headers=agent)),
                (counted, lambda: conn.execute(count_sql, (tenant,)).fetchone()),
            ):
                start = time.perf_counter()
                answer = run()
                elapsed = time.perf_counter() - start
                if isinstance(answer, httpx.Response) and answer.status_code != 200:
                    row.record_error(f"{answer.status_code}: {answer.text[:200]}")
                if timed:
                    row.count += 1
                    row.seconds += elapsed
                    row.latencies_ms.append(elapsed * 1000)
    return [views, tickets, counted]


def print_view_counts(console: Console, result: ViewCounts) -> None:
    table = Table(
        title=f"View counts at {result.tickets:,} tickets ({result.views} views)"
    )
    table.add_column("what", no_wrap=True)
    for column in ("requests", "p50 ms", "p95 ms", "p95 / GET /tickets/ p95"):
        table.add_column(column, justify="right")
    baseline = percentile(result.rows[1].latencies_ms, 95)
    for row in result.rows:
        p95 = row.percentile(95)
        table.add_row(
            row.name,
            f"{row.count:,}" + (f" ({row.errors} errors)" if row.errors else ""),
            f"{row.percentile(50):.1f}",
            f"{p95:.1f}",
            f"{p95 / baseline:.2f}",
        )
    console.print(table)
    console.print(
        "The counts, as GET /views answered them: "
        + ", ".join(f"{name} {count:,}" for name, count in result.counts.items()),
        highlight=False,
        style="dim",
    )
