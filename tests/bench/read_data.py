"""A big tenant for the read side, written straight through the application.

Going through HTTP would take an hour for 200k tickets; building the
aggregates here and saving 500 of them per transaction with
``TicketApplication.save_aggregates`` stores the same events (the same
domain code validates them) in well under a minute. The events are the
ones the service writes; only their timestamps are chosen, spread over the
last :data:`SPREAD_DAYS` days so that date ranges select a share of them.

Every ticket is created; one in :data:`WORKED_EVERY` is assigned, answered
(a public agent reply, the first response) and resolved, and another one in
:data:`WORKED_EVERY` only assigned. If that makes fewer events than asked
for, internal notes are added, spread over the tickets, until it does not.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from dotmac.ticketing.domain.enums import TicketCategory, TicketChannel, TicketPriority
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.sla import SLAPolicy
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env
from tests.bench.harness import ReadRow, client_cpu_probe, cpu_used

AGGREGATES_PER_SAVE = 500
SPREAD_DAYS = 90
WORKED_EVERY = 20
RESOLVED_AT, ASSIGNED_AT = 0, WORKED_EVERY // 2  # n % WORKED_EVERY

# Twenty subjects: a word of one of them finds about one ticket in twenty.
SUBJECTS = (
    "printer offline",
    "invoice mismatch",
    "password reset",
    "vpn disconnects",
    "slow dashboard",
    "refund request",
    "email bounces",
    "billing address change",
    "api timeout",
    "login loop",
    "export fails",
    "duplicate charge",
    "mobile app crash",
    "sso configuration",
    "data import error",
    "webhook retries",
    "license upgrade",
    "account locked",
    "missing report",
    "two factor setup",
)
TAGS = (
    "billing",
    "network",
    "hardware",
    "vip",
    "mobile",
    "security",
    "onboarding",
    "integration",
    "followup",
    "feedback",
)
TEAMS = ("tier1", "tier2", "billing", "network", "platform")
AGENTS = 25
CUSTOMERS = 2000
PRIORITY_WEIGHTS = {
    TicketPriority.LOW: 3,
    TicketPriority.NORMAL: 10,
    TicketPriority.HIGH: 4,
    TicketPriority.URGENT: 2,
    TicketPriority.CRITICAL: 1,
}


@dataclass(frozen=True)
class DataSet:
    tenant: str
    tickets: int
    events: int  # the head of the log: every event stored, in this tenant
    row: ReadRow


def generate(
    database_url: str,
    *,
    tenant: str,
    tickets: int,
    min_events: int,
    on_progress: Callable[[int], None] | None = None,
    seal: bool = True,
    spread_days: int = SPREAD_DAYS,
    sla_policy: SLAPolicy | None = None,
) -> DataSet:
    """Store ``tickets`` tickets of ``tenant`` and at least ``min_events`` events
    (their personal data sealed, unless ``seal`` is False)."""
    app = TicketApplication(
        eventsourcing_env(database_url, pool_size=2), seal_personal_data=seal
    )
    try:
        row = ReadRow(
            "store the data set",
            0,
            0.0,
            "events",
            notes="",
        )
        extra = max(0, min_events - _base_events(tickets))
        with cpu_used(_probe, row):
            start = time.perf_counter()
            _store(app, tenant, tickets, extra, on_progress, spread_days, sla_policy)
            row.seconds = time.perf_counter() - start
        # Numbers handed out later over HTTP continue after ours.
        with app.transaction() as cursor:
            cursor.execute(
                "INSERT INTO ticket_numbers (tenant_id, last_number) VALUES (%s, %s)"
                " ON CONFLICT (tenant_id) DO UPDATE SET last_number = %s",
                (tenant, tickets, tickets),
            )
        events = app.head_position()
    finally:
        app.close()
    row.count = events
    row.notes = (
        f"{tickets:,} tickets over {spread_days} days, 1 in {WORKED_EVERY} "
        f"resolved, 1 in {WORKED_EVERY} assigned"
        + (f", {extra:,} internal notes" if extra else "")
        + "; built in this process, save_aggregates() of "
        f"{AGGREGATES_PER_SAVE} tickets per transaction"
    )
    return DataSet(tenant, tickets, events, row)


def _probe() -> dict[str, float]:
    return {
        "this process" if name == "client" else name: value
        for name, value in client_cpu_probe().items()
    }


def _base_events(tickets: int) -> int:
    """Events of the lifecycles alone: 1 each, +3 and +1 for the worked ones."""
    return (
        tickets
        + 3 * _how_many(tickets, WORKED_EVERY, RESOLVED_AT)
        + _how_many(tickets, WORKED_EVERY, ASSIGNED_AT)
    )


def _how_many(total: int, every: int, offset: int) -> int:
    """How many n in range(total) have n % every == offset."""
    return max(0, (total - offset + every - 1) // every)


def _store(
    app: TicketApplication,
    tenant: str,
    tickets: int,
    extra: int,
    on_progress: Callable[[int], None] | None,
    spread_days: int = SPREAD_DAYS,
    sla_policy: SLAPolicy | None = None,
) -> None:
    rnd = random.Random(20240601)
    agent = Provenance(tenant, Actor("bench-agent", "agent"))
    now = datetime.now(UTC)
    priorities = list(PRIORITY_WEIGHTS)
    weights = list(PRIORITY_WEIGHTS.values())
    categories = list(TicketCategory)
    channels = list(TicketChannel)
    notes_each, notes_rest = divmod(extra, tickets) if tickets else (0, 0)

    def later(minutes: float, after: datetime) -> datetime:
        """A while after ``after``, but never in the future."""
        return min(after + timedelta(minutes=minutes), now)

    batch: list[Ticket] = []
    for n in range(tickets):
        subject = SUBJECTS[n % len(SUBJECTS)]
        at = now - timedelta(minutes=rnd.uniform(60, spread_days * 24 * 60))
        ticket = Ticket.create(
            ticket_id=UUID(int=rnd.getrandbits(128), version=4),
            number=n + 1,
            title=f"{subject.capitalize()} for customer {n % CUSTOMERS}",
            description=(
                f"Customer reports: {subject}. It started after the last update "
                f"and happens about {1 + n % 9} times a day. Reference {n}."
            ),
            category=categories[n % len(categories)],
            priority=rnd.choices(priorities, weights)[0],
            channel=channels[n % len(channels)],
            customer_id=f"cust-{n % CUSTOMERS}",
            customer_email=None,
            tags=rnd.sample(TAGS, 1 + n % 2),
            custom_fields={},
            provenance=agent,
            at=at,
            sla_policy=sla_policy,
        )
        # Only every (WORKED_EVERY / 2)-th ticket is assigned: count those,
        # so the teams and agents take turns among them.
        worked = n // ASSIGNED_AT
        team = TEAMS[worked % len(TEAMS)]
        assignee = f"agent-{worked % AGENTS}"
        step = at
        if n % WORKED_EVERY in (RESOLVED_AT, ASSIGNED_AT):
            step = later(rnd.uniform(2, 120), step)
            ticket.assign(provenance=agent, at=step, assignee_id=assignee, team=team)
        if n % WORKED_EVERY == RESOLVED_AT:
            step = later(rnd.uniform(5, 600), step)
            ticket.add_comment(
                "Thanks, we are looking into it.",
                internal=False,
                provenance=agent,
                at=step,
            )
            step = later(rnd.uniform(30, 4000), step)
            ticket.resolve(
                resolution="Fixed.",
                resolution_code="fixed",
                provenance=agent,
                at=step,
            )
        for _ in range(notes_each + (1 if n < notes_rest else 0)):
            step = later(1, step)
            ticket.add_comment(
                "Internal note.", internal=True, provenance=agent, at=step
            )
        batch.append(ticket)
        if len(batch) == AGGREGATES_PER_SAVE:
            app.save_aggregates(*batch)
            batch = []
            if on_progress is not None:
                on_progress(n + 1)
    if batch:
        app.save_aggregates(*batch)
    if on_progress is not None:
        on_progress(tickets)
