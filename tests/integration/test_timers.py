"""The timers end to end: the deadline table, and firing with two replicas.

The main test opens 1000 tickets over four minutes of fake time with
first-response targets of two to six minutes; a fifth of them is answered
well before the warning, a tenth between the warning and the due time. The
fake time is a file (``TICKETING_CLOCK_FILE``) read by this process (the
write side and the relay) and by two ``ticketing worker timers`` processes.
Time moves in ten-second steps, each create and answer at its own instant
within its step; at each step's end it stands still until the timers have
consumed every event and fired everything due. Halfway through, one
replica is SIGKILLed while inside a transaction, and started again later.
In the end, per ticket and target, every warning and breach that fell due
is in the event store exactly once, none before its time, and none for a
ticket answered in time. (Precision on the real clock is a benchmark's
business, not a test's.)
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from prometheus_client import REGISTRY, generate_latest

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS_DLQ, service_topics
from dotmac.ticketing.domain.deadlines import ticket_deadlines
from dotmac.ticketing.domain.enums import TicketPriority, TicketStatus
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.processes import start_relay
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.clock import FileClock
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    EPOCH,
    PARTITIONS,
    MovableClock,
    Stack,
    admin,
    agent,
    customer,
    events_of,
    running_stack,
    stack_settings,
    wait_until,
    worker_env,
)
from tests.integration.worker_process import WorkerProcess
from tests.metrics import sample
from tests.notifications.running import publish, read_topic

TENANT = "timers-acme"
TICKETS = 1000
# First-response targets (minutes) by priority; resolution is far away.
RESPONSE_MINUTES = {"critical": 2, "urgent": 3, "high": 4, "normal": 5, "low": 6}
RESOLUTION_MINUTES = 600
CREATION_SPAN = timedelta(minutes=4)
# At most 12 s (80 % to 90 % of two minutes): a step boundary falls between
# the warning and a late answer, and the timers settle at each boundary.
STEP = timedelta(seconds=10)


@pytest.fixture
def broker() -> Iterator[DevBroker]:
    with start_dev_broker() as running:
        yield running


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    """The timers in this process, on a clock this module moves by hand."""
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as running_broker,
        running_stack(
            stack_settings(database_url, running_broker), clock=MovableClock()
        ) as running,
    ):
        yield running


def table_rows(stack: Stack, ticket_id: UUID) -> set[tuple[str, str, datetime]]:
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT kind, key, due_at FROM timer_deadlines WHERE ticket_id = %s",
            (ticket_id,),
        ).fetchall()
    return {(kind, key, due_at) for kind, key, due_at in rows}


def mirrors(stack: Stack, ticket_id: UUID) -> set[tuple[str, str, datetime]] | None:
    """The ticket's rows, once they are what ``ticket_deadlines`` says."""
    ticket = stack.ticketing.app.repository.get(ticket_id)
    _, document = stack.ticketing.settings_service.get(ticket.tenant_id)
    wanted = {
        (d.kind, d.key, d.due_at) for d in ticket_deadlines(ticket, parse(document))
    }
    rows = table_rows(stack, ticket_id)
    return rows if rows == wanted else None


def test_the_deadline_table_follows_each_change_of_the_ticket(stack: Stack) -> None:
    tenant = f"table-{secrets.token_hex(4)}"
    stack.ticketing.settings_service.replace(
        admin(tenant),
        {
            "escalation_rules": [
                {
                    "name": "stale",
                    "measured_from": "last_update",
                    "escalation_time_hours": 2,
                    "escalate_to_team": "Engineering",
                }
            ]
        },
    )
    tickets = stack.ticketing.tickets
    lead = agent(tenant, "lead-1")
    ticket_id = tickets.create_ticket(
        customer(tenant), title="Slow", priority=TicketPriority.HIGH
    ).ticket.id
    rows = wait_until(lambda: mirrors(stack, ticket_id), what="the first rows")
    assert {(kind, key) for kind, key, _ in rows} == {
        ("sla_warning", "first_response"),
        ("sla_breach", "first_response"),
        ("sla_warning", "resolution"),
        ("sla_breach", "resolution"),
        ("escalation", "stale"),
    }

    # A new priority moves the due times; the activity moves the threshold.
    stack.clock.advance(timedelta(minutes=10))
    tickets.update_ticket(lead, ticket_id, priority=TicketPriority.CRITICAL)
    moved = wait_until(
        lambda: (found := mirrors(stack, ticket_id)) != rows and found,
        what="the recalculated rows",
    )
    assert ("escalation", "stale", stack.clock.now + timedelta(hours=2)) in moved

    # Answered: the first-response rows go. Pending: the resolution clock
    # pauses, its rows go too; only the escalation is left.
    tickets.add_comment(lead, ticket_id, body="Which version?")
    tickets.change_status(lead, ticket_id, TicketStatus.PENDING)
    left = wait_until(
        lambda: (found := mirrors(stack, ticket_id)) and len(found) == 1 and found,
        what="only the escalation to be left",
    )
    assert {(kind, key) for kind, key, _ in left} == {("escalation", "stale")}

    # Resolved: nothing to watch any more.
    tickets.resolve(lead, ticket_id, resolution="Fixed", resolution_code="fixed")
    wait_until(
        lambda: (
            mirrors(stack, ticket_id) == set() and table_rows(stack, ticket_id) == set()
        ),
        what="the rows to go",
    )


def test_a_late_breach_shows_in_the_lateness_histogram(stack: Stack) -> None:
    tenant = f"late-{secrets.token_hex(4)}"
    ticket_id = stack.ticketing.tickets.create_ticket(
        customer(tenant), title="Down", priority=TicketPriority.CRITICAL
    ).ticket.id
    rows = wait_until(lambda: mirrors(stack, ticket_id), what="the ticket's rows")
    (breach,) = [
        due
        for kind, key, due in rows
        if (kind, key) == ("sla_breach", "first_response")
    ]
    late = lateness_over(10.0)

    # The timers were away (the clock jumps): the breach fires 30 s late.
    stack.clock.advance(breach - stack.clock.now + timedelta(seconds=30))

    wait_until(
        lambda: lateness_over(10.0) > late, what="a lateness above 10 s on /metrics"
    )


def lateness_over(seconds: float) -> float:
    """Deadlines fired more than ``seconds`` late, so far in this process."""
    text = generate_latest(REGISTRY).decode()
    name = "ticketing_timer_lateness_seconds"
    within = sample(text, f"{name}_bucket", le=str(seconds))
    return sample(text, f"{name}_count") - within


def test_events_of_unknown_types_are_skipped(stack: Stack) -> None:
    tenant = f"unknown-{secrets.token_hex(4)}"
    tickets = stack.ticketing.tickets
    ticket_id = tickets.create_ticket(customer(tenant), title="Hello").ticket.id
    wait_until(lambda: mirrors(stack, ticket_id), what="the first rows")
    # A newer producer's event on the ticket's partition, then ours again.
    stranger = {
        "specversion": "1.0",
        "id": f"{ticket_id}:future",
        "source": "/ticketing",
        "type": "ticketing.ticket.ticket_teleported.v1",
        "subject": str(ticket_id),
        "time": stack.clock.now.isoformat(),
        "tenantid": tenant,
        "data": {"where": "mars"},
    }
    assert stack.settings.kafka_bootstrap_servers is not None
    asyncio.run(publish(stack.settings.kafka_bootstrap_servers, [stranger]))
    tickets.add_comment(agent(tenant), ticket_id, body="Answered")
    wait_until(
        lambda: (
            (rows := mirrors(stack, ticket_id)) is not None
            and {(kind, key) for kind, key, _ in rows}
            == {("sla_warning", "resolution"), ("sla_breach", "resolution")}
        ),
        what="the answer to reach the table",
    )
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        (skipped,) = conn.execute(
            "SELECT count(*) FROM consumer_processed_events"
            " WHERE consumer = 'ticketing-timers' AND event_id = %s",
            (stranger["id"],),
        ).fetchone() or (0,)
    assert skipped == 1
    letters = asyncio.run(
        read_topic(stack.settings.kafka_bootstrap_servers, TICKET_EVENTS_DLQ, timeout=1)
    )
    assert letters == []


@dataclass(frozen=True)
class Action:
    at: datetime
    kind: str  # "create" or "answer"
    index: int


def story(chance: random.Random) -> tuple[list[Action], dict[int, str], set[int]]:
    """The timeline: creates spread over the span, answers in between.

    Returns the actions in time order, each ticket's priority, and which
    tickets are answered before their warning.
    """
    priorities = list(RESPONSE_MINUTES)
    priority = {i: priorities[i % len(priorities)] for i in range(TICKETS)}
    created = {i: EPOCH + CREATION_SPAN * i / TICKETS for i in range(TICKETS)}
    actions = [Action(created[i], "create", i) for i in range(TICKETS)]
    shuffled = chance.sample(range(TICKETS), TICKETS)
    in_time = set(shuffled[: TICKETS // 5])
    late_answer = set(shuffled[TICKETS // 5 : TICKETS // 5 + TICKETS // 10])
    for i in in_time | late_answer:
        target = timedelta(minutes=RESPONSE_MINUTES[priority[i]])
        # Warning at 80 % and due at 100 %: answer at 50 % or at 90 %.
        share = 0.5 if i in in_time else 0.9
        actions.append(Action(created[i] + target * share, "answer", i))
    actions.sort(key=lambda a: (a.at, a.kind != "create"))
    return actions, priority, in_time


def test_two_replicas_fire_every_warning_and_breach_once_despite_a_kill(
    isolated_database_url: str, broker: DevBroker, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    chance = random.Random(seed)
    clock = FileClock(tmp_path / "clock")
    clock.set(EPOCH)
    settings = stack_settings(isolated_database_url, broker, clock_file=clock.path)
    asyncio.run(ensure_topics(broker.bootstrap_servers, service_topics(PARTITIONS)))
    ticketing = initialize_ticketing(settings, clock=clock)
    ticketing.settings_service.replace(
        admin(TENANT),
        {
            "sla_config": {
                p: {"response": minutes, "resolution": RESOLUTION_MINUTES}
                for p, minutes in RESPONSE_MINUTES.items()
            },
            "business_hours": "24x7",
        },
    )
    env = worker_env(settings, TICKETING_CLOCK_FILE=str(clock.path))
    replicas = [
        WorkerProcess("timers", env, tmp_path, name=f"timers-{n}") for n in (1, 2)
    ]
    relay = start_relay(settings, idle_wait=0.2)
    for replica in replicas:
        replica.start()
    actions, priority, answered_in_time = story(chance)
    last_due = actions[-1].at + timedelta(minutes=max(RESPONSE_MINUTES.values()))
    steps = int((last_due - EPOCH) / STEP) + 2
    victim = replicas[chance.randrange(2)]
    mid_work = False
    ids: dict[int, UUID] = {}
    pending = iter(actions)
    action: Action | None = next(pending)
    started = time.monotonic()
    try:
        for step in range(1, steps + 1):
            boundary = EPOCH + step * STEP
            # The story up to the boundary, each action at its own instant.
            while action is not None and action.at <= boundary:
                clock.set(action.at)
                ids[action.index] = perform(ticketing, action, priority, ids)
                action = next(pending, None)
            clock.set(boundary)
            if step == steps // 2:
                # Mid-work: while it holds a transaction open (claimed rows
                # whose commands run, or an event being applied).
                mid_work = busy(isolated_database_url, victim.pid)
                victim.kill()
            if step == 3 * steps // 4:
                victim.start()
            # Time stands still until everything due by now has fired, so
            # that an answer due at 90 % comes after the warning at 80 %.
            wait_until(
                lambda boundary=boundary: settled(isolated_database_url, boundary),
                timeout=30,
                what=f"the timers to settle at {boundary.isoformat()}",
            )
        expected = expected_events(ticketing, clock())
        time.sleep(1.0)  # a duplicate would be in the store by now
    except BaseException:
        print(f"seed={seed}")
        for replica in replicas:
            print(f"--- {replica.name}\n{replica.tail()}")
        raise
    finally:
        for replica in replicas:
            replica.stop()
        relay.stop()
    print(
        f"seed={seed}: {steps} steps in {time.monotonic() - started:.1f} s;"
        f" killed inside a transaction: {mid_work}"
    )

    try:
        warnings = events_of(ticketing, [Ticket.SLAWarning])
        breaches = events_of(ticketing, [Ticket.SLABreached])
        clocks = started_clocks(ticketing)
        # Exactly once per ticket and target.
        assert Counter((e.originator_id, e.target) for e in warnings) == Counter(
            expected["warning"]
        )
        assert Counter((e.originator_id, e.target) for e in breaches) == Counter(
            expected["breach"]
        )
        # None early.
        for e in warnings:
            assert e.timestamp >= clocks[e.originator_id, e.target]["warning_at"]
            assert e.actor["id"] == "sla-timer"
            assert e.causation_id.startswith(f"timer:{e.originator_id}:sla_")
        for e in breaches:
            assert e.timestamp >= clocks[e.originator_id, e.target]["due_at"]
        # None for tickets answered in time; those answered late warned.
        in_time = {ids[i] for i in answered_in_time}
        assert not {e.originator_id for e in [*warnings, *breaches]} & in_time
        assert len(expected["warning"]) == TICKETS - len(in_time)
        assert len(expected["breach"]) == TICKETS - len(in_time) - TICKETS // 10
        assert {target for _, target in expected["warning"]} == {"first_response"}
    finally:
        ticketing.close()


def perform(
    ticketing: Any, action: Action, priority: dict[int, str], ids: dict[int, UUID]
) -> UUID:
    if action.kind == "create":
        return ticketing.tickets.create_ticket(
            customer(TENANT, f"cust-{action.index}"),
            title=f"Request {action.index}",
            priority=priority[action.index],
        ).ticket.id
    ticket_id = ids[action.index]
    ticketing.tickets.add_comment(agent(TENANT), ticket_id, body="On it")
    return ticket_id


def started_clocks(ticketing: Any) -> dict[tuple[UUID, str], dict[str, Any]]:
    """Each clock's due and warning time, as ``SLAStarted`` recorded them."""
    return {
        (e.originator_id, e.target): {"due_at": e.due_at, "warning_at": e.warning_at}
        for e in events_of(ticketing, [Ticket.SLAStarted])
    }


def expected_events(ticketing: Any, now: datetime) -> dict[str, set[Any]]:
    """Which warnings and breaches fell due by ``now``, from the store.

    A clock counts until it stops (the first reply): it warns if its
    warning time came while it ran, and breaches likewise. (The story
    never answers at exactly a warning or due time.)
    """
    stopped = {
        (e.originator_id, e.target): e.timestamp
        for e in events_of(ticketing, [Ticket.SLAStopped])
    }
    expected: dict[str, set[Any]] = {"warning": set(), "breach": set()}
    for key, started in started_clocks(ticketing).items():
        until = stopped.get(key, now)
        if started["warning_at"] <= until:
            expected["warning"].add(key)
        if started["due_at"] <= until:
            expected["breach"].add(key)
    return expected


def settled(database_url: str, now: datetime) -> bool:
    """The timers consumed every ticket event, and nothing due is left."""
    with psycopg.connect(database_url) as conn:
        try:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM ticketing_events"
                "        WHERE topic LIKE 'ticketing.ticket:%%'),"
                " (SELECT count(*) FROM consumer_processed_events"
                "  WHERE consumer = 'ticketing-timers'),"
                " (SELECT count(*) FROM timer_deadlines WHERE due_at <= %s)",
                (now,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # the timers have not begun
            return False
    assert row is not None
    events, consumed, due = row
    return bool(events == consumed and due == 0)


def busy(database_url: str, pid: int, timeout: float = 5.0) -> bool:
    """Wait (bounded) until the timers process ``pid`` is inside a transaction."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (inside,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND state = 'idle in transaction'",
                (f"ticketing-timers:{pid}",),
            ).fetchone() or (0,)
            if inside:
                return True
            time.sleep(0.002)
    return False
