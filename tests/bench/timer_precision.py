"""Timer precision: how late an SLA breach is recorded, on the real clock.

One run, one fresh database, one fresh development broker, two parts:

1. The baseline, before anything of the service runs: the bare mechanism
   the timers are built on. A plain table (``bench_timer_rows``, the same
   columns' roles and index as ``timer_deadlines``) holds as many far rows
   (due in days) as the service will hold, plus one near row per measured
   ticket, due at the same pace (``--timer-tickets`` over
   ``--timer-seconds``) after a short lead. One asyncio loop does what
   ``TimerLoop`` does with the same SQL: claim due rows ``ORDER BY due_at
   LIMIT 50 FOR UPDATE SKIP LOCKED``, per row insert a "fired" row stamped
   with ``clock_timestamp()`` and delete the claimed one, commit, look up
   the next due time, and sleep until then (at most the poll interval) in
   ``notifies(timeout=...)`` on a LISTEN connection, the way the service's
   loop sleeps. Delay = fired − due.
2. The service: ``initialize_ticketing``, the relay and the timers
   (``start_relay`` / ``start_timers``, production code and defaults,
   ``TICKETING_TIMERS_POLL_INTERVAL`` from the environment) on threads of
   this process, topics created first. The tenant's settings make critical
   tickets' first response due after ``--timer-response`` minutes (24x7
   calendar, so business minutes are wall minutes); low priority keeps its
   defaults (2 and 7 days). The pending timers are low-priority tickets,
   each with a warning and a breach of two clocks (4 rows), built in this
   process and saved 500 per transaction, like read_data.py does (the
   same events ``create_ticket`` writes, in a second rather than a
   minute); the relay publishes them and the timers' consumer fills
   ``timer_deadlines`` from them. Once it holds them all, the measured
   critical tickets are created through ``TicketService.create_ticket`` at
   a steady pace, open loop; nobody answers them, so each records a
   warning (at 80 %) and then a breach of its first-response target.

Service delay = the ``SLABreached`` event's timestamp − its ``due_at``.
The timestamp is the clock reading of the ``check_sla`` command that
appended it: taken after the ticket was loaded, before the save. A
second, indented row times the save too: an ``AFTER INSERT`` trigger that
this benchmark adds to ``ticketing_events`` (SLABreached rows only) stamps
each inserted row with ``clock_timestamp()``, like the baseline's fired
row (both before their commit). Everything reads the one machine clock.

Checks: every measured ticket has exactly one first-response breach, none
before its due time, and the event log holds no warning or breach of the
far tickets. Anything else is counted as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from dotmac.ticketing.consumers.kafka.broker import DevBroker, ensure_topics
from dotmac.ticketing.consumers.kafka.topics import service_topics
from dotmac.ticketing.consumers.supervision import RunningWorker
from dotmac.ticketing.consumers.timers.worker import BATCH_SIZE
from dotmac.ticketing.domain.deadlines import ticket_deadlines
from dotmac.ticketing.domain.enums import TicketCategory, TicketChannel, TicketPriority
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import FIRST_RESPONSE, policy_for
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.processes import RunningRelay, start_relay, start_timers
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from tests.bench.harness import (
    BenchDatabase,
    BenchError,
    ReadRow,
    bench_database,
    deferred_interrupts,
)
from tests.bench.kafka_relay import broker_cpu_probe
from tests.bench.kafka_side import dev_broker

AGGREGATES_PER_SAVE = 500
# The critical tickets' resolution target: far beyond the run.
RESOLUTION_MINUTES = 600
# The baseline's first near row is due this long after its loop starts.
BASELINE_LEAD_SECONDS = 2.0
# A breach not recorded this long after the last due time counts as missing.
BREACH_TIMEOUT = 30.0
# The deadline table must grow at least once in this long while it fills.
FILL_STALL_TIMEOUT = 60.0
POLL_INTERVAL = 0.05

BREACHED_TOPIC: str = Ticket.SLABreached.TOPIC  # type: ignore[attr-defined]
WARNING_TOPIC: str = Ticket.SLAWarning.TOPIC  # type: ignore[attr-defined]

BASELINE_DDL = """
CREATE TABLE bench_timer_rows (
    id     bigint      PRIMARY KEY,
    due_at timestamptz NOT NULL
);
CREATE INDEX bench_timer_rows_due_at ON bench_timer_rows (due_at);
CREATE TABLE bench_timer_fired (
    id       bigint      NOT NULL,
    due_at   timestamptz NOT NULL,
    fired_at timestamptz NOT NULL
);
"""

# Stamps each SLABreached row as it is inserted (before the commit).
APPENDED_DDL = """
CREATE TABLE bench_breach_appended (
    originator_id      uuid        NOT NULL,
    originator_version bigint      NOT NULL,
    appended_at        timestamptz NOT NULL
);
CREATE FUNCTION bench_breach_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_breach_appended
    VALUES (NEW.originator_id, NEW.originator_version, clock_timestamp());
    RETURN NULL;
END $$;
CREATE TRIGGER bench_breach_appended AFTER INSERT ON ticketing_events
FOR EACH ROW WHEN (NEW.topic = {topic}) EXECUTE FUNCTION bench_breach_appended();
"""


@dataclass
class PrecisionRow(ReadRow):
    """A row of the timers table: delays, and how many fired exactly once."""

    pending: int = 0  # rows in the deadline table when the measured set began
    once: int = 0


@dataclass(frozen=True)
class Filled:
    """The far timers, and how long the consumer took to write them."""

    tickets: int
    rows: int
    events: int
    store_seconds: float
    fill_seconds: float


@dataclass(frozen=True)
class TimerPrecision:
    db: BenchDatabase
    partitions: int
    poll_interval: float
    filled: Filled
    rows: list[PrecisionRow]


def run_timer_precision(
    args: argparse.Namespace, *, tenant: str, tmp: Path, progress: Console
) -> TimerPrecision:
    settings_here = Settings()
    partitions = settings_here.kafka_partitions
    poll_interval = settings_here.timers_poll_interval
    pace = args.timer_tickets / args.timer_seconds

    def step(message: str) -> None:
        progress.log(message)

    with (
        bench_database() as db,
        dev_broker(tmp / "broker-timers.log") as broker,
    ):
        step(
            f"timers baseline: {args.pending_timers:,} far rows + "
            f"{args.timer_tickets} near rows at {pace:g}/s, raw SKIP LOCKED loop"
        )
        probe = broker_cpu_probe(broker)
        before = probe()
        baseline = asyncio.run(
            _baseline(
                db.url,
                far=args.pending_timers,
                near=args.timer_tickets,
                pace=pace,
                poll_interval=poll_interval,
            )
        )
        after = probe()
        baseline.cpu_seconds = {
            name: after[name] - before[name] for name in after if name in before
        }
        filled, service = _service(
            db.url,
            broker,
            tenant=tenant,
            pending=args.pending_timers,
            tickets=args.timer_tickets,
            pace=pace,
            response_minutes=args.timer_response,
            partitions=partitions,
            on_step=step,
        )
    progress.log("timers part: threads and broker stopped, database dropped")
    return TimerPrecision(db, partitions, poll_interval, filled, [baseline, *service])


# -- the baseline: the bare mechanism --------------------------------------------


async def _baseline(
    database_url: str, *, far: int, near: int, pace: float, poll_interval: float
) -> PrecisionRow:
    row = PrecisionRow(
        "baseline: raw SKIP LOCKED loop",
        near,
        0.0,
        "timers",
        notes=(
            f"one asyncio loop, TimerLoop's SQL (claim by {BATCH_SIZE}, FOR UPDATE "
            "SKIP LOCKED; per row insert a fired row stamped clock_timestamp() "
            "and delete; next due; sleep ≤ poll interval in notifies()); "
            "fired − due"
        ),
    )
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(BASELINE_DDL)
        now = datetime.now(UTC)
        rnd = random.Random(20241126)
        async with (
            conn.cursor() as cur,
            cur.copy("COPY bench_timer_rows (id, due_at) FROM STDIN") as copy,
        ):
            for n in range(far):
                # Like the far tickets' rows: 1.6 to 7 days ahead.
                await copy.write_row((n, now + timedelta(days=rnd.uniform(1.6, 7.0))))
        await conn.commit()
        # Planner statistics, which autovacuum gives timer_deadlines soon
        # after the far rows arrive: the claim then walks the due_at index.
        await conn.execute("ANALYZE bench_timer_rows")
        await conn.commit()
        start = datetime.now(UTC) + timedelta(seconds=BASELINE_LEAD_SECONDS)
        due = [start + timedelta(seconds=n / pace) for n in range(near)]
        await conn.cursor().executemany(
            "INSERT INTO bench_timer_rows (id, due_at) VALUES (%s, %s)",
            [(far + n, at) for n, at in enumerate(due)],
        )
        await conn.commit()
        row.pending = far
        until = due[-1] + timedelta(seconds=BREACH_TIMEOUT) if due else start
        clock = time.perf_counter()
        await _raw_loop(conn, database_url, far, near, poll_interval, until)
        row.seconds = time.perf_counter() - clock
        cur = await conn.execute(
            "SELECT id, count(*), extract(epoch FROM min(fired_at) - min(due_at))"
            " FROM bench_timer_fired WHERE id >= %s GROUP BY id",
            (far,),
        )
        fired = await cur.fetchall()
        early = await conn.execute(
            "SELECT count(*) FROM bench_timer_fired WHERE id < %s", (far,)
        )
        fired_far = (await early.fetchone() or (0,))[0]
    row.latencies_ms = [float(delay) * 1000 for _, _, delay in fired]
    row.once = sum(1 for _, count, _ in fired if count == 1)
    if len(fired) < near:
        row.record_error(f"{near - len(fired)} near rows not fired in time")
    if row.once < len(fired):
        row.record_error(f"{len(fired) - row.once} near rows fired more than once")
    if fired_far:
        row.record_error(f"{fired_far} far rows fired")
    return row


async def _raw_loop(
    conn: psycopg.AsyncConnection[Any],
    database_url: str,
    far: int,
    near: int,
    poll_interval: float,
    until: datetime,
) -> None:
    """Fire due rows until every near one has fired (or ``until`` passes)."""
    fired = 0
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True
    ) as listener:
        await listener.execute("LISTEN bench_timer_rows")
        while fired < near and datetime.now(UTC) < until:
            now = datetime.now(UTC)
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT id, due_at FROM bench_timer_rows WHERE due_at <= %s"
                    " ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
                    (now, BATCH_SIZE),
                )
                claimed = await cur.fetchall()
                for ident, due_at in claimed:
                    await conn.execute(
                        "INSERT INTO bench_timer_fired (id, due_at, fired_at)"
                        " VALUES (%s, %s, clock_timestamp())",
                        (ident, due_at),
                    )
                    await conn.execute(
                        "DELETE FROM bench_timer_rows WHERE id = %s AND due_at = %s",
                        (ident, due_at),
                    )
                next_due = None
                if len(claimed) < BATCH_SIZE:
                    cur = await conn.execute(
                        "SELECT min(due_at) FROM bench_timer_rows WHERE due_at > %s",
                        (now,),
                    )
                    next_due = (await cur.fetchone() or (None,))[0]
            fired += sum(1 for ident, _ in claimed if ident >= far)
            if len(claimed) >= BATCH_SIZE:
                continue
            timeout = poll_interval
            if next_due is not None:
                until_due = (next_due - datetime.now(UTC)).total_seconds()
                timeout = min(timeout, max(until_due, 0.0))
            if timeout > 0:
                async for _ in listener.notifies(timeout=timeout, stop_after=1):
                    pass


# -- the service -----------------------------------------------------------------


def _service(
    database_url: str,
    broker: DevBroker,
    *,
    tenant: str,
    pending: int,
    tickets: int,
    pace: float,
    response_minutes: float,
    partitions: int,
    on_step: Callable[[str], None],
) -> tuple[Filled, list[PrecisionRow]]:
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_partitions=partitions,
    )
    ticketing: Ticketing | None = None
    relay: RunningRelay | None = None
    timers: RunningWorker | None = None
    try:
        asyncio.run(ensure_topics(broker.bootstrap_servers, service_topics(partitions)))
        ticketing = initialize_ticketing(settings)
        admin = RequestContext(tenant, "bench-admin", frozenset({"admin"}))
        ticketing.settings_service.replace(
            admin,
            {
                "sla_config": {
                    "critical": {
                        "response": response_minutes,
                        "resolution": max(RESOLUTION_MINUTES, 10 * response_minutes),
                    }
                }
            },
        )
        with psycopg.connect(database_url) as conn:
            conn.execute(
                sql.SQL(APPENDED_DDL).format(topic=sql.Literal(BREACHED_TOPIC))
            )
        relay = start_relay(settings)
        timers = start_timers(settings)
        on_step("timers: relay and timers started on threads; storing far tickets")
        filled = _fill(database_url, ticketing, tenant, pending, timers, on_step)
        return filled, _measure(
            database_url,
            ticketing,
            timers,
            broker,
            tenant=tenant,
            tickets=tickets,
            pace=pace,
            response_minutes=response_minutes,
            far_tickets=filled.tickets,
            on_step=on_step,
        )
    finally:
        with deferred_interrupts():
            if timers is not None:
                timers.stop()
            if relay is not None:
                relay.stop()
            if ticketing is not None:
                ticketing.close()


def _fill(
    database_url: str,
    ticketing: Ticketing,
    tenant: str,
    pending: int,
    timers: RunningWorker,
    on_step: Callable[[str], None],
) -> Filled:
    """Store low-priority tickets until ``pending`` timers wait; until they do."""
    version, document = ticketing.settings_service.get(tenant)
    agent = Provenance(tenant, Actor("bench-agent", "agent"))
    start = time.perf_counter()
    batch: list[Ticket] = []
    count, rows_each = 0, 0
    while count * rows_each < pending or count == 0:
        n = count
        title = f"Far benchmark ticket {n}"
        description = "Waiting, with days to go."
        facts = TicketFacts(
            category=TicketCategory.GENERAL.value,
            priority=TicketPriority.LOW.value,
            channel=TicketChannel.API.value,
            tags=("bench",),
            custom_fields={},
            title=title,
            description=description,
        )
        ticket = Ticket.create(
            ticket_id=uuid4(),
            number=n + 1,
            title=title,
            description=description,
            category=TicketCategory.GENERAL,
            priority=TicketPriority.LOW,
            channel=TicketChannel.API,
            customer_id=f"cust-far-{n}",
            customer_email=None,
            tags=["bench"],
            custom_fields={},
            provenance=agent,
            at=datetime.now(UTC),
            sla_policy=policy_for(parse(document), version, facts),
        )
        if rows_each == 0:
            rows_each = len(ticket_deadlines(ticket, parse(document)))
            if rows_each == 0:
                raise BenchError("a low-priority ticket has no deadlines to keep")
        batch.append(ticket)
        count += 1
        if len(batch) == AGGREGATES_PER_SAVE:
            ticketing.app.save_aggregates(*batch)
            batch = []
    if batch:
        ticketing.app.save_aggregates(*batch)
    store_seconds = time.perf_counter() - start
    with ticketing.app.transaction() as cursor:
        # The measured tickets' numbers continue after ours.
        cursor.execute(
            "INSERT INTO ticket_numbers (tenant_id, last_number) VALUES (%s, %s)"
            " ON CONFLICT (tenant_id) DO UPDATE SET last_number = %s",
            (tenant, count, count),
        )
    events = ticketing.app.head_position()
    rows = count * rows_each
    on_step(
        f"timers: {count:,} far tickets ({events:,} events) stored in "
        f"{store_seconds:.1f} s; waiting for {rows:,} rows in timer_deadlines"
    )
    seen, last_change = 0, time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            # The migrated database has the table from the start.
            found = _scalar(conn, "SELECT count(*) FROM timer_deadlines")
            if found >= rows:
                break
            if found != seen:
                seen, last_change = found, time.monotonic()
            if not timers.thread.is_alive():
                raise BenchError("the timers stopped (their log is on stderr)")
            if time.monotonic() - last_change > FILL_STALL_TIMEOUT:
                raise BenchError(
                    f"timer_deadlines stuck at {found:,} of {rows:,} rows for "
                    f"{FILL_STALL_TIMEOUT:.0f} s"
                )
            time.sleep(POLL_INTERVAL)
    fill_seconds = time.perf_counter() - start
    on_step(f"timers: {rows:,} pending timers after {fill_seconds:.1f} s")
    return Filled(count, rows, events, store_seconds, fill_seconds)


@dataclass
class _Created:
    due_at: dict[UUID, datetime] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _measure(
    database_url: str,
    ticketing: Ticketing,
    timers: RunningWorker,
    broker: DevBroker,
    *,
    tenant: str,
    tickets: int,
    pace: float,
    response_minutes: float,
    far_tickets: int,
    on_step: Callable[[str], None],
) -> list[PrecisionRow]:
    timestamp = PrecisionRow(
        "due -> SLABreached (event timestamp)",
        tickets,
        0.0,
        "breaches",
        notes=(
            f"TicketService.create_ticket(priority=critical) at {pace:g}/s in this "
            f"process, first response due {response_minutes:g} min later, never "
            "answered; the event's timestamp (check_sla's clock, after loading the "
            "ticket) − its due_at"
        ),
    )
    appended = PrecisionRow(
        "  due -> event row inserted",
        tickets,
        0.0,
        "breaches",
        notes=(
            "the same breaches: clock_timestamp() of an AFTER INSERT trigger on "
            "ticketing_events (the save, before its commit) − due_at"
        ),
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        pending = _scalar(conn, "SELECT count(*) FROM timer_deadlines")
    timestamp.pending = appended.pending = pending
    on_step(
        f"timers: {tickets} critical tickets at {pace:g}/s, breaches due "
        f"{response_minutes:g} min after each; waiting for them"
    )
    probe = broker_cpu_probe(broker)
    before = probe()
    start = time.perf_counter()
    created = _paced(ticketing, tenant, tickets, pace)
    last_due = max(created.due_at.values(), default=datetime.now(UTC))
    _wait_for_breaches(database_url, created, timers, last_due, on_step)
    after = probe()
    seconds = time.perf_counter() - start
    cpu = {name: after[name] - before[name] for name in after if name in before}
    timestamp.seconds = appended.seconds = seconds
    timestamp.cpu_seconds = cpu  # one window for both rows: printed once
    for description in created.errors:
        timestamp.record_error(description)
    _read_breaches(database_url, ticketing, created, timestamp, appended)
    _check_far(database_url, created, far_tickets, timestamp)
    return [timestamp, appended]


def _paced(ticketing: Ticketing, tenant: str, total: int, rate: float) -> _Created:
    """Create ``total`` critical tickets, ticket n at ``start + n / rate``."""
    ctx = RequestContext(tenant, "bench-agent", frozenset({"agent"}))
    created = _Created()
    start = time.perf_counter()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            result = ticketing.tickets.create_ticket(
                ctx,
                title=f"Critical benchmark ticket {n}",
                description="Nobody answers this one.",
                priority=TicketPriority.CRITICAL,
                customer_id=f"cust-near-{n}",
                tags=["bench"],
            )
        except Exception as error:
            created.errors.append(f"create {n}: {type(error).__name__}: {error}")
            continue
        clocks = result.ticket.sla_clocks
        clock = clocks.get(FIRST_RESPONSE) if clocks is not None else None
        due = clock.due_at if clock is not None else None
        if due is None:
            created.errors.append(f"create {n}: no first-response due time")
            continue
        created.due_at[result.ticket.id] = due
    return created


def _wait_for_breaches(
    database_url: str,
    created: _Created,
    timers: RunningWorker,
    last_due: datetime,
    on_step: Callable[[str], None],
) -> None:
    """Until each ticket has a breach row, or ``BREACH_TIMEOUT`` after the last due."""
    ids = list(created.due_at)
    until = last_due + timedelta(seconds=BREACH_TIMEOUT)
    reported = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            done = _scalar(
                conn,
                "SELECT count(DISTINCT originator_id) FROM bench_breach_appended"
                " WHERE originator_id = ANY(%s)",
                (ids,),
            )
            if done >= len(ids) or datetime.now(UTC) > until:
                return
            if not timers.thread.is_alive():
                raise BenchError("the timers stopped (their log is on stderr)")
            if time.monotonic() - reported > 15:
                reported = time.monotonic()
                left = (last_due - datetime.now(UTC)).total_seconds()
                on_step(
                    f"timers: {done} of {len(ids)} breaches recorded; the last is "
                    f"due in {max(left, 0):.0f} s"
                )
            time.sleep(0.2)


def _read_breaches(
    database_url: str,
    ticketing: Ticketing,
    created: _Created,
    timestamp: PrecisionRow,
    appended: PrecisionRow,
) -> None:
    """Delays from the event store; one error per missing, early or double breach."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        stamped = {
            (UUID(str(ident)), int(version)): at
            for ident, version, at in conn.execute(
                "SELECT originator_id, originator_version, appended_at"
                " FROM bench_breach_appended"
            ).fetchall()
        }
    for ticket_id, due_at in created.due_at.items():
        breaches = [
            event
            for event in ticketing.app.events.get(ticket_id)
            if isinstance(event, Ticket.SLABreached) and event.target == FIRST_RESPONSE
        ]
        if not breaches:
            timestamp.record_error(
                f"ticket {ticket_id}: no breach within {BREACH_TIMEOUT:.0f} s of "
                "the last due time"
            )
            continue
        if len(breaches) > 1:
            timestamp.record_error(
                f"ticket {ticket_id}: {len(breaches)} first-response breaches"
            )
        else:
            timestamp.once += 1
        event = breaches[0]
        if event.due_at != due_at:
            timestamp.record_error(
                f"ticket {ticket_id}: breach of {event.due_at}, due at {due_at}"
            )
        if event.timestamp < event.due_at:
            timestamp.record_error(f"ticket {ticket_id}: breach recorded early")
        timestamp.latencies_ms.append(
            (event.timestamp - event.due_at).total_seconds() * 1000
        )
        inserted = stamped.get((ticket_id, event.originator_version))
        if inserted is not None:
            appended.latencies_ms.append(
                (inserted - event.due_at).total_seconds() * 1000
            )
            appended.once += 1 if len(breaches) == 1 else 0
    timestamp.count = appended.count = len(created.due_at) + len(created.errors)


def _check_far(
    database_url: str,
    created: _Created,
    far_tickets: int,
    row: PrecisionRow,
) -> None:
    """No warning or breach but the measured tickets' (one each at most)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        counts = conn.execute(
            "SELECT topic, count(*) FROM ticketing_events"
            " WHERE topic = ANY(%s) AND NOT originator_id = ANY(%s)"
            " GROUP BY topic",
            ([BREACHED_TOPIC, WARNING_TOPIC], list(created.due_at)),
        ).fetchall()
    for topic, count in counts:
        name = "breaches" if topic == BREACHED_TOPIC else "warnings"
        row.record_error(f"{count} {name} of the {far_tickets:,} far tickets")


def _scalar(
    conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()
) -> int:
    found = conn.execute(query, params).fetchone()
    return int(found[0]) if found else 0


# -- the table -------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def precision_table(rows: list[PrecisionRow], baseline: PrecisionRow) -> Table:
    table = Table(title="Timers: delay from due time to breach recorded, real clock")
    table.add_column("what", no_wrap=True)
    for column in (
        "pending",
        "timers",
        "exactly once",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "vs baseline",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("notes", ratio=1)
    for row in rows:
        delays = row.latencies_ms
        vs = "-"
        if row is not baseline and delays and baseline.latencies_ms:
            vs = (
                f"+{row.percentile(50) - baseline.percentile(50):.1f} / "
                f"+{row.percentile(99) - baseline.percentile(99):.1f}"
            )
        notes = row.notes
        if row.errors:
            notes = f"{row.errors} ERRORS (below). {notes}"
        table.add_row(
            row.name,
            f"{row.pending:,}",
            f"{row.count:,}",
            f"{row.once:,}",
            _ms(row.percentile(50)),
            _ms(row.percentile(95)),
            _ms(row.percentile(99)),
            _ms(max(delays) if delays else math.nan),
            vs,
            notes,
            style="red" if row.errors else None,
            end_section=row is baseline,
        )
    return table


def print_timer_precision(console: Console, result: TimerPrecision) -> None:
    filled = result.filled
    console.print()
    console.print(
        f"[bold]timers[/]      fresh database {result.db.name} on the same server; "
        "a fresh development broker (Tansu, in memory, loopback), topics created "
        f"first with {result.partitions} partitions; relay and timers (consumer "
        "and firing loop) on threads of this process; "
        f"TICKETING_TIMERS_POLL_INTERVAL={result.poll_interval:g} s; "
        f"pending: {filled.tickets:,} low-priority tickets ({filled.rows:,} "
        f"timers, due in 1.6 to 7 days) from {filled.events:,} events, stored in "
        f"{filled.store_seconds:.1f} s, all in timer_deadlines after "
        f"{filled.fill_seconds:.1f} s "
        f"({filled.events / filled.fill_seconds:,.0f} events/s through relay "
        "and consumer)",
        highlight=False,
    )
    baseline = result.rows[0]
    console.print(precision_table(result.rows, baseline))
    console.print(
        "pending: far rows waiting in the table throughout, besides the near "
        "ones (the service's near tickets add 4 rows each as they are created). "
        "timers: near timers measured; exactly once: recorded once and only "
        "once. vs baseline: extra p50 / p99 ms. The service's loop also fires "
        "each measured ticket's warning (at 80 % of the target) in the same "
        "window, and its consumer rewrites the ticket's rows after each event. "
        "One machine, one clock (Python's and PostgreSQL's).",
        highlight=False,
        style="dim",
    )
