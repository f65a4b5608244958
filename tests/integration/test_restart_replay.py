"""A restart against an empty broker (what every `make run` is) replays little.

The bundled broker keeps nothing, so after a restart the relay publishes
again only from the first event some consumer group has not applied, and
the consumers skip what is below their partitions' watermarks. Everything
is real: PostgreSQL, the bundled broker, the workers as ``ticketing dev``
runs them, and an SMTP server (aiosmtpd) receiving the acknowledgment.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from psycopg import sql

from dotmac.ticketing.consumers.kafka.broker import DevBroker, start_dev_broker
from dotmac.ticketing.consumers.kafka.log_positions import partition_for
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.consumers.notify.notifier import NOTIFIER_NAME
from dotmac.ticketing.domain.enums import TicketPriority
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.processes import (
    build_relay,
    close_relay,
    service_consumer_groups,
    start_notifier,
    start_relay,
    start_timers,
    start_workflows,
)
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.application import TicketApplication
from tests.kafka_fixtures import read_topic
from tests.notifications.servers import SmtpSink, smtp_sink, wait_until

TENANT = "acme-restart"
SMTP_FROM = "Acme Support <support@acme.test>"
# The acknowledgment at once (not held for a merging window): its delay
# after a restart is what is measured.
CONFIG: dict[str, Any] = {"notifications": {"email_coalesce_seconds": 0}, "tenants": {}}
HISTORY_EVENTS = 20_000
# Every ticket of the history: created, then nine priority changes.
EVENTS_PER_TICKET = 10


@pytest.fixture
def broker() -> Iterator[DevBroker]:
    with start_dev_broker() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


def service_settings(
    database_url: str, broker: DevBroker, smtp: SmtpSink, **extra: Any
) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        # A consumer joins its group in about a second on the bundled broker.
        kafka_session_timeout_ms=2000,
        # What `ticketing dev` sets for the bundled broker.
        kafka_fetch_max_wait_ms=20,
        jwt_secret="restart-secret-" + "x" * 40,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=SMTP_FROM,
        **extra,
    )


def customer(n: int | str) -> RequestContext:
    return RequestContext(TENANT, f"cust-{n}", frozenset({"customer"}))


def open_ticket(ticketing: Ticketing, n: int | str) -> None:
    ticketing.tickets.create_ticket(
        customer(n), title=f"Request {n}", customer_email=f"cust-{n}@example.test"
    )


def ticket_events(app: TicketApplication) -> Iterator[tuple[int, bytes]]:
    """(position, key) of every ticket event in the store, in log order."""
    prefix = Ticket.TOPIC.split(":")[0] + ":"
    position = 0
    while batch := app.recorder.select_notifications(
        start=position, limit=5000, inclusive_of_start=False
    ):
        for notification in batch:
            if notification.topic.startswith(prefix):
                yield notification.id, str(notification.originator_id).encode()
        position = batch[-1].id


def write_history(app: TicketApplication, events: int) -> None:
    """``events`` ticket events, written through the application in batches."""
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    provenance = Provenance(TENANT, Actor("agent-1", "agent"))
    priorities = [TicketPriority.HIGH, TicketPriority.LOW]
    tickets_per_save = 100
    for first in range(0, events // EVENTS_PER_TICKET, tickets_per_save):
        tickets = []
        for number in range(first, first + tickets_per_save):
            ticket = Ticket.create(
                ticket_id=uuid4(),
                number=number,
                title=f"Old ticket {number}",
                description="",
                category="general",
                priority="normal",
                channel="api",
                customer_id=f"old-{number}",
                customer_email=None,
                tags=[],
                custom_fields={},
                provenance=Provenance(TENANT, Actor(f"old-{number}", "customer")),
                at=at,
            )
            for change in range(EVENTS_PER_TICKET - 1):
                ticket.change_priority(
                    priorities[change % 2],
                    provenance=provenance,
                    at=at + timedelta(minutes=change + 1),
                )
            tickets.append(ticket)
        app.save_aggregates(*tickets)


def record_previous_run(settings: Settings, app: TicketApplication) -> None:
    """What the relay and the consumers leave once they worked through the log.

    Written directly, as a previous run of ``ticketing dev`` leaves it: the
    relay's position at the head; per consumer group and partition the next
    offset and the highest log position applied (what the consumers record
    for each record they apply; the other test shows them doing it), and
    the event-id ledger of everything they applied.
    """
    partitions = settings.kafka_partitions
    offsets = dict.fromkeys(range(partitions), 0)
    marks = dict.fromkeys(range(partitions), 0)
    for position, key in ticket_events(app):
        partition = partition_for(key, partitions)
        offsets[partition] += 1
        marks[partition] = position
    relay = build_relay(settings)
    try:
        relay.tracking.insert_tracking(Tracking(app.name, app.head_position()))
    finally:
        close_relay(relay)
    assert settings.database_url is not None
    events_table = app.recorder.events_table_name  # type: ignore[attr-defined]
    with psycopg.connect(settings.database_url) as conn:
        for group in service_consumer_groups():
            for partition in range(partitions):
                conn.execute(
                    "INSERT INTO consumer_positions (consumer, stream, next_offset,"
                    " log_position, partitions) VALUES (%s, %s, %s, %s, %s)",
                    (
                        group,
                        f"{TICKET_EVENTS}:{partition}",
                        offsets[partition],
                        marks[partition],
                        partitions,
                    ),
                )
            conn.execute(
                sql.SQL(
                    "INSERT INTO consumer_processed_events (consumer, event_id)"
                    " SELECT %s, originator_id::text || ':' || originator_version"
                    " FROM {} WHERE topic LIKE 'ticketing.ticket:%%'"
                ).format(sql.Identifier(events_table)),
                (group,),
            )


def test_a_new_tickets_acknowledgment_arrives_within_5_s_of_a_restart(
    isolated_database_url: str, broker: DevBroker, smtp: SmtpSink
) -> None:
    settings = service_settings(isolated_database_url, broker, smtp)
    ticketing = initialize_ticketing(settings)
    workers: list[Any] = []
    try:
        write_history(ticketing.app, HISTORY_EVENTS)
        assert sum(1 for _ in ticket_events(ticketing.app)) == HISTORY_EVENTS
        record_previous_run(settings, ticketing.app)

        # `make run`: an empty broker, then the relay and every consumer.
        restarted = time.monotonic()
        workers = [
            start_relay(settings),
            start_notifier(settings, config=CONFIG),
            start_timers(settings),
            start_workflows(settings),
        ]
        open_ticket(ticketing, "new")
        (mail,) = smtp.wait_for(1, timeout=60)
        elapsed = time.monotonic() - restarted
    finally:
        for worker in reversed(workers):
            worker.stop()
        ticketing.close()
    print(f"acknowledgment {elapsed:.2f} s after the restart")
    assert mail.rcpt_tos == ("cust-new@example.test",)
    assert elapsed < 5.0, f"the acknowledgment came {elapsed:.1f} s after the restart"


def notifier_applied(database_url: str, app: TicketApplication, upto: int) -> bool:
    """Whether the notifier's watermarks cover every ticket event up to ``upto``."""
    with psycopg.connect(database_url) as conn:
        try:
            rows = conn.execute(
                "SELECT stream, log_position FROM consumer_positions"
                " WHERE consumer = %s",
                (NOTIFIER_NAME,),
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return False
    marks = {int(stream.rsplit(":", 1)[1]): mark or 0 for stream, mark in rows}
    return all(
        position <= marks.get(partition_for(key, 3), 0)
        for position, key in ticket_events(app)
        if position <= upto
    )


def test_events_not_consumed_before_a_restart_are_delivered_once_after_it(
    isolated_database_url: str, broker: DevBroker, smtp: SmtpSink
) -> None:
    """Applied, consumed halfway, published only, and not even published.

    The notifier stops in the middle of a stream (so some partitions are
    ahead of others), the relay publishes the rest, stops, more tickets
    come; then the broker loses everything. After the restart each
    customer has exactly one acknowledgment, and what every group had
    applied was not published again.
    """
    settings = service_settings(isolated_database_url, broker, smtp, kafka_partitions=3)
    ticketing = initialize_ticketing(settings)
    app = ticketing.app
    # Only the notifier runs here: only its needs count.
    relay_options = {"consumer_groups": (NOTIFIER_NAME,), "check_interval": 0.5}
    relay = start_relay(settings, **relay_options)
    notifier = start_notifier(settings, config=CONFIG)
    stopped: list[Any] = []
    try:
        for n in range(10):
            open_ticket(ticketing, n)
        smtp.wait_for(10, timeout=30)
        applied_head = app.head_position()
        wait_until(
            lambda: notifier_applied(isolated_database_url, app, applied_head),
            timeout=30,
            what="the notifier to apply the first tickets",
        )

        # Consumed halfway: the notifier stops while tickets keep coming.
        writer = threading.Thread(
            target=lambda: [open_ticket(ticketing, n) for n in range(10, 40)]
        )
        writer.start()
        smtp.wait_for(15, timeout=30)
        notifier.stop()
        stopped.append(notifier)
        writer.join(30)
        # Published but not consumed, then not even published.
        wait_until(
            lambda: (
                relay.relay.tracking.max_tracking_id(app.name) == app.head_position()
            ),
            timeout=30,
            what="the relay to publish everything",
        )
        relay.stop()
        stopped.append(relay)
        for n in range(40, 50):
            open_ticket(ticketing, n)
        consumed_before = len(smtp.received())
        assert consumed_before < 40, "the notifier was to stop halfway"

        broker.stop()
        broker.start()  # the same port, empty
        relay = start_relay(settings, **relay_options)
        notifier = start_notifier(settings, config=CONFIG)
        stopped = []
        smtp.wait_for(50, timeout=60)
        time.sleep(1.0)  # a second copy would arrive now
        with psycopg.connect(isolated_database_url) as conn:
            row = conn.execute("SELECT from_position FROM relay_republished").fetchone()
    finally:
        for worker in (notifier, relay):
            if worker not in stopped:
                worker.stop()
        ticketing.close()

    recipients = sorted(m.rcpt_tos for m in smtp.received())
    assert recipients == sorted((f"cust-{n}@example.test",) for n in range(50))
    assert row is not None
    republished_from = row[0]
    assert republished_from > applied_head, "applied events were published again"
    republished = read_topic(
        broker.bootstrap_servers, TICKET_EVENTS, until=lambda _: False, timeout=2
    )
    positions = [json.loads(r.value)["logposition"] for r in republished]
    assert positions and min(positions) >= republished_from
