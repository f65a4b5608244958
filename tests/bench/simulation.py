"""What-if replay speed beside the projection rebuild, on one big tenant.

A fresh database gets ``--simulation-tickets`` tickets created over the last
30 days (``read_data.generate``, each measured against the tenant's SLA
policy, so their streams carry SLA events as the service's do), the
projection is rebuilt from position zero (timed: the baseline, and the
read model the simulation lists the period's tickets from), then one
simulation of a stricter proposal over those 30 days runs through
``SimulationService`` as ``POST /simulations`` starts it (its background
thread, in this process), timed from the start to ``done``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import policy_for
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.simulations import SimulationService
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env
from tests.bench.harness import (
    BenchError,
    ReadRow,
    bench_database,
    client_cpu_probe,
    cpu_used,
)
from tests.bench.read_data import generate
from tests.bench.rebuild import run_rebuild

DAYS = 30
OFFICE = {day: ["08:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
CURRENT: dict[str, Any] = {
    "sla_config": {
        "critical": {"response": 15, "resolution": 240},
        "urgent": {"response": 30, "resolution": 480},
        "high": {"response": 60, "resolution": 960},
        "normal": {"response": 240, "resolution": 2400},
        "low": {"response": 480, "resolution": 4800},
        "warning_percent": 80,
    },
    "business_hours": {"timezone": "Europe/Berlin", "week": OFFICE, "holidays": []},
}
#: The proposal: first responses twice as fast, one escalation rule.
PROPOSED: dict[str, Any] = {
    **CURRENT,
    "sla_config": {
        **{
            p: {"response": t["response"] // 2, "resolution": t["resolution"]}
            for p, t in CURRENT["sla_config"].items()
            if p != "warning_percent"
        },
        "warning_percent": 80,
    },
    "escalation_rules": [
        {
            "name": "urgent_unanswered",
            "conditions": {"priority": ["critical", "urgent"]},
            "level": 1,
            "escalation_time_hours": 2,
            "escalate_to_team": "Tier2",
        }
    ],
}


@dataclass
class SimulationSpeed:
    rebuild: ReadRow
    simulation: ReadRow
    tickets: int
    seconds: float


def run_simulation_bench(
    args: argparse.Namespace, *, tenant: str, progress: Console
) -> SimulationSpeed:
    tickets = args.simulation_tickets
    policy = policy_for(parse(CURRENT), 1, _any_facts())
    with bench_database() as db:
        progress.log(f"simulation: storing {tickets:,} tickets over {DAYS} days")
        # Every ticket is created in the 30 days before this instant.
        end = _now()
        generate(
            db.url,
            tenant=tenant,
            tickets=tickets,
            min_events=0,
            spread_days=DAYS,
            sla_policy=policy,
        )
        progress.log("simulation: the rebuild (baseline)")
        rebuild = run_rebuild(db.url, tickets=tickets)
        progress.log("simulation: a 30-day replay of the proposal")
        app = TicketApplication(eventsourcing_env(db.url, pool_size=2))
        service = SimulationService(app, ReadModel(app.datastore), lambda: _now())
        try:
            simulation = _simulate(service, tenant, tickets, end)
        finally:
            service.close()
            app.close()
    return SimulationSpeed(rebuild, simulation, tickets, simulation.seconds)


def _simulate(
    service: SimulationService, tenant: str, tickets: int, end: datetime
) -> ReadRow:
    ctx = RequestContext(tenant, "bench-admin", frozenset({"admin"}))
    row = ReadRow("simulation (30 days)", 0, 0.0, "events", notes="")
    with cpu_used(_probe, row):
        start = time.perf_counter()
        simulation_id = service.start(
            ctx,
            TenantSettingsDocument.model_validate(PROPOSED),
            period_start=end - timedelta(days=DAYS),
            period_end=end,
        )
        while True:
            found = service.get(ctx, simulation_id)
            if found["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        row.seconds = time.perf_counter() - start
    if found["state"] != "done":
        raise BenchError(f"the simulation failed: {found['error']}")
    result = found["result"]
    if not found["tickets_done"] == found["tickets_total"] == tickets:
        raise BenchError(
            f"replayed {found['tickets_done']} of {found['tickets_total']} tickets"
            f" listed, {tickets} stored, in {row.seconds:.1f} s"
        )
    row.count = int(result["events_replayed"])
    proposed, actual = result["proposed"], result["actual"]
    row.notes = (
        f"{tickets:,} tickets ({row.count / tickets:.1f} stored events each),"
        f" {tickets / row.seconds:,.0f} tickets/s, POST to done; breaches"
        f" {actual['breaches']:,} -> {proposed['breaches']:,}, escalations"
        f" {sum(proposed['escalations'].values()):,}, changed tickets"
        f" {result['changed_tickets']['count']:,}"
    )
    return row


def _probe() -> dict[str, float]:
    return {
        "this process" if name == "client" else name: value
        for name, value in client_cpu_probe().items()
    }


def _now() -> datetime:
    return datetime.now(UTC)


def _any_facts() -> TicketFacts:
    # The bench's policy has no conditions: any ticket's facts choose it.
    return TicketFacts("general", "normal", "web", (), {}, "", "")


def print_simulation(console: Console, speed: SimulationSpeed) -> None:
    table = Table(title="what-if replay vs projection rebuild (same log, same run)")
    for column in ("row", "events", "seconds", "rate", "vs rebuild", "notes"):
        left = column in ("row", "notes")
        table.add_column(column, justify="left" if left else "right")
    base = speed.rebuild
    for row in (base, speed.simulation):
        table.add_row(
            row.name,
            f"{row.count:,}",
            f"{row.seconds:.2f}",
            f"{row.rate:,.0f} events/s",
            f"{row.rate / base.rate:.2f}" if base.rate else "-",
            row.notes,
        )
    console.print()
    console.print(table)
    console.print(
        "vs rebuild: events/s over the rebuild's events/s, measured in this run."
        f" Target: {speed.tickets:,} tickets in 30 days within 60 s on 2 cores;"
        f" this run: {speed.seconds:.1f} s.",
        style="dim",
        highlight=False,
    )
