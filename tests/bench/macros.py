"""What a macro's one save buys: its actions applied as one command, against
the same changes made as one command each (the baseline, in the same run).

In process, over one fresh database: the write side built as the API builds
it, each ticket changed by a macro of seven actions (priority, category,
tags, custom field, assignment, status, a reply) or by the seven commands
an agent would send without one. Serial, so the rows are latencies of one
agent's click, not a throughput under load.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from uuid import UUID

from rich.console import Console
from rich.table import Table

from dotmac.ticketing.domain.enums import TicketCategory, TicketPriority, TicketStatus
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.bench.harness import Measurement, bench_database

TEAMS = {"teams": [{"name": "Billing", "agents": [{"id": "bea"}]}]}
ACTIONS = [
    {"type": "set_priority", "priority": "high"},
    {"type": "set_category", "category": "billing"},
    {"type": "set_tags", "add": ["refund"]},
    {"type": "set_custom_fields", "values": {"refund": True}},
    {"type": "assign", "team": "Billing", "assignee_id": "bea"},
    {"type": "set_status", "status": "pending"},
    {"type": "public_reply", "body": "Hello {{ customer.name }}, on it."},
]


@dataclass
class MacroCost:
    separate: Measurement
    macro: Measurement


def run_macros(
    args: argparse.Namespace, *, tenant: str, progress: Console
) -> MacroCost:
    with bench_database() as db:
        ticketing = initialize_ticketing(
            {"database_url": db.url, "tenants": {tenant: {"settings": TEAMS}}}
        )
        try:
            agent = RequestContext(tenant, "bea", frozenset({"agent"}))
            admin = RequestContext(tenant, "admin-1", frozenset({"admin"}))
            tickets = ticketing.tickets
            macro = ticketing.macros.create(
                admin, name="Refund", description="", actions=ACTIONS
            )
            count = args.macro_tickets

            def open_ticket() -> UUID:
                return tickets.create_ticket(
                    agent, title="Refund", customer_id="c1", customer_name="Ada"
                ).ticket.id

            def separately(ticket_id: UUID) -> None:
                t = ticket_id
                tickets.update_ticket(agent, t, priority=TicketPriority.HIGH)
                tickets.update_ticket(agent, t, category=TicketCategory.BILLING)
                tickets.update_ticket(agent, t, tags=["refund"])
                tickets.update_ticket(agent, t, custom_fields={"refund": True})
                tickets.assign(agent, t, team="Billing", assignee_id="bea")
                tickets.change_status(agent, t, TicketStatus.PENDING)
                tickets.add_comment(agent, t, body="Hello Ada, on it.")

            def by_macro(ticket_id: UUID) -> None:
                ticketing.macros.apply(agent, ticket_id, macro["id"])

            rows = {}
            for name, change in (
                ("7 commands, 7 saves (baseline)", separately),
                ("a macro of 7 actions, 1 save", by_macro),
            ):
                progress.log(f"macros: {count:,} tickets, {name}")
                ids = [open_ticket() for _ in range(count)]
                latencies = []
                started = time.perf_counter()
                for ticket_id in ids:
                    begun = time.perf_counter()
                    change(ticket_id)
                    latencies.append((time.perf_counter() - begun) * 1000)
                rows[name] = Measurement(
                    name, 1, time.perf_counter() - started, latencies
                )
        finally:
            ticketing.close()
    separate, macro_row = rows.values()
    return MacroCost(separate=separate, macro=macro_row)


def print_macros(console: Console, cost: MacroCost) -> None:
    table = Table(title="applying a macro: one command and one save")
    for column in ("row", "tickets/s", "p50 ms", "p99 ms", "vs baseline"):
        table.add_column(column, justify="left" if column == "row" else "right")
    base = cost.separate
    for row in (base, cost.macro):
        table.add_row(
            row.name,
            f"{row.ops_per_second:,.0f}",
            f"{row.percentile(50):.1f}",
            f"{row.percentile(99):.1f}",
            f"{row.ops_per_second / base.ops_per_second:.2f}",
        )
    console.print()
    console.print(table)
    console.print(
        "vs baseline: tickets changed per second over the same seven changes"
        " made as seven commands, measured in this run (one agent, serial).",
        style="dim",
        highlight=False,
    )
