"""The relay against real PostgreSQL and a real Kafka-protocol broker.

- every event arrives once, in order per ticket, in its CloudEvent envelope;
- a relay process SIGKILLed at random points loses nothing;
- with the broker down the API keeps creating tickets, and once a broker is
  back (empty: the development broker keeps nothing) the relay publishes
  the whole log again, including everything written meanwhile.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import DevBroker, start_dev_broker
from dotmac.ticketing.consumers.kafka.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    to_cloudevent,
)
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.domain.enums import TicketPriority
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.processes import RunningRelay, start_relay
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env
from tests import tickets
from tests.event_samples import tickets_with_every_event
from tests.kafka_fixtures import Record, read_topic

ROOT = Path(__file__).resolve().parents[2]
TENANT = "tenant-relay"
PRIORITIES = [TicketPriority.HIGH, TicketPriority.LOW]


@pytest.fixture
def ticket_app(isolated_database_url: str) -> Iterator[TicketApplication]:
    app = TicketApplication(eventsourcing_env(isolated_database_url, pool_size=4))
    yield app
    app.close()


def new_ticket(number: int, at: datetime) -> Ticket:
    return tickets.new_ticket(number, at, tenant=TENANT)


def change_priority(ticket: Ticket, round_: int, at: datetime) -> None:
    ticket.change_priority(
        PRIORITIES[round_ % 2],
        provenance=Provenance(TENANT, Actor("agent-1", "agent")),
        at=at,
    )


def stored_cloudevents(app: TicketApplication) -> dict[str, dict[str, Any]]:
    """The CloudEvent of every event in the store, by id."""
    expected: dict[str, dict[str, Any]] = {}
    position = 0
    while batch := app.recorder.select_notifications(
        start=position, limit=500, inclusive_of_start=False
    ):
        for notification in batch:
            event = app.mapper.to_domain_event(notification)
            cloudevent = to_cloudevent(
                event,  # type: ignore[arg-type]
                log_position=notification.id,
            )
            expected[cloudevent["id"]] = cloudevent
        position = batch[-1].id
    return expected


def read_until_published(
    bootstrap_servers: str, ids: Iterable[str], timeout: float = 30.0
) -> list[Record]:
    """Records of TICKET_EVENTS (shared by tests) with one of ``ids``, once all came."""
    wanted = set(ids)
    seen: set[str] = set()
    mine: list[Record] = []
    read = 0

    def done(records: list[Record]) -> bool:
        nonlocal read
        for record in records[read:]:
            event_id = json.loads(record.value)["id"]
            if event_id in wanted:
                seen.add(event_id)
                mine.append(record)
        read = len(records)
        return seen >= wanted

    read_topic(bootstrap_servers, TICKET_EVENTS, until=done, timeout=timeout)
    missing = wanted - seen
    assert not missing, f"{len(missing)} of {len(wanted)} events never published"
    return mine


def tracked_position(relay: RunningRelay) -> int:
    return relay.relay.tracking.max_tracking_id("ticketing") or 0


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------


def test_every_event_published_once_in_order_with_its_envelope(
    ticket_app: TicketApplication, isolated_database_url: str, kafka: DevBroker
) -> None:
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    samples = tickets_with_every_event(TENANT)
    ticket_app.save_aggregates(*samples)
    many = [new_ticket(n, at) for n in range(10, 40)]
    for round_ in range(3):
        for ticket in many:
            change_priority(ticket, round_, at + timedelta(minutes=round_ + 1))
    ticket_app.save_aggregates(*many)

    settings = Settings(
        database_url=isolated_database_url,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
    )
    # A long idle wait: events written once it is caught up can only arrive
    # in time if LISTEN/NOTIFY wakes it.
    relay = start_relay(settings, idle_wait=60.0)
    try:
        read_until_published(kafka.bootstrap_servers, stored_cloudevents(ticket_app))
        wait_for(
            lambda: tracked_position(relay) == ticket_app.head_position(),
            10,
            "the relay to record its position",
        )
        written_at = time.monotonic()
        for ticket in many[:5]:
            change_priority(ticket, 3, at + timedelta(hours=1))
            ticket_app.save_aggregates(ticket)
        expected = stored_cloudevents(ticket_app)
        records = read_until_published(kafka.bootstrap_servers, expected, timeout=10)
        assert time.monotonic() - written_at < 10
        wait_for(
            lambda: tracked_position(relay) == ticket_app.head_position(),
            10,
            "the relay to record its position",
        )
    finally:
        relay.stop()

    published = [json.loads(r.value) for r in records]
    assert sorted(e["id"] for e in published) == sorted(expected), "duplicates"
    by_ticket: dict[bytes | None, list[Record]] = defaultdict(list)
    for record, cloudevent in zip(records, published, strict=True):
        assert cloudevent == expected[cloudevent["id"]]
        assert record.key == cloudevent["subject"].encode()
        assert record.headers["content-type"] == CLOUDEVENTS_CONTENT_TYPE.encode()
        by_ticket[record.key].append(record)
    assert len(by_ticket) == len(samples) + len(many)
    for ticket_records in by_ticket.values():
        assert len({r.partition for r in ticket_records}) == 1
        ticket_records.sort(key=lambda r: r.offset)
        versions = [json.loads(r.value)["data"]["version"] for r in ticket_records]
        assert versions == list(range(1, len(versions) + 1))
    assert len({r.partition for r in records}) > 1, "one key per partition expected"


def test_relay_killed_at_random_points_publishes_every_event(
    ticket_app: TicketApplication,
    isolated_database_url: str,
    kafka: DevBroker,
    tmp_path: Path,
) -> None:
    """``ticketing worker relay`` SIGKILLed while 500 events are being written.

    The writer is released in chunks, one per relay life, so that every
    kill lands while events are being written and relayed (a relay takes
    seconds to start; killing it during start-up would prove little).
    """
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    lives = 3
    tickets = 100
    rounds = 4  # 100 creates + 400 priority changes = 500 events
    total = tickets * (rounds + 1)
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    released = threading.Semaphore(0)
    writer_error: list[BaseException] = []

    def saves() -> Iterator[Ticket]:
        created = [new_ticket(n, at) for n in range(tickets)]
        yield from created
        for round_ in range(rounds):
            for ticket in created:
                change_priority(ticket, round_, at + timedelta(minutes=round_ + 1))
                yield ticket

    def write() -> None:
        try:
            for ticket in saves():
                released.acquire()
                ticket_app.save_aggregates(ticket)
                time.sleep(0.004)
        except BaseException as error:
            writer_error.append(error)

    env = {
        **os.environ,
        "DATABASE_URL": isolated_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "LOG_FORMAT": "json",
    }
    log_path = tmp_path / "relay.log"
    log_path.touch()

    def connected_count() -> int:
        return log_path.read_text().count('"event": "relay connected"')

    def spawn() -> subprocess.Popen[bytes]:
        """Start ``ticketing worker relay``; return once it is connected."""
        connected = connected_count()
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dotmac.ticketing.entry.cli",
                    "worker",
                    "relay",
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: connected_count() > connected or process.poll() is not None,
            30,
            "the relay to connect",
        )
        assert process.poll() is None, log_path.read_text()
        return process

    def position() -> int:
        with ticket_app.transaction() as cur:
            cur.execute(
                "SELECT notification_id FROM relay_tracking "
                "WHERE application_name = 'ticketing'"
            )
            row = cur.fetchone()
            return int(row["notification_id"]) if row else 0

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    kills: list[tuple[int, int]] = []  # (relay position, head) at each kill
    chunks = [total // lives + (i < total % lives) for i in range(lives)]
    for chunk in chunks:
        relay = spawn()
        for _ in range(chunk):  # about a second of writing
            released.release()
        time.sleep(rng.uniform(0.05, 0.6))
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        kills.append((position(), ticket_app.head_position()))
    writer.join(60)
    assert not writer_error, writer_error
    assert ticket_app.head_position() == total

    relay = spawn()
    try:
        expected = stored_cloudevents(ticket_app)
        assert len(expected) == total
        records = read_until_published(kafka.bootstrap_servers, expected)
        wait_for(
            lambda: position() == ticket_app.head_position(),
            15,
            "the relay to record the head position",
        )
    finally:
        relay.send_signal(signal.SIGTERM)
        returncode = relay.wait(15)
    assert returncode == 0, log_path.read_text()  # a graceful stop on SIGTERM

    print(f"{seed=} kills (position, head): {kills}; records: {len(records)}")
    assert any(p < head for p, head in kills), f"no kill landed while behind {seed=}"
    # Per ticket, the first time each version appears follows the stored order.
    first_seen: dict[bytes | None, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        version = json.loads(record.value)["data"]["version"]
        if version not in first_seen[record.key]:
            first_seen[record.key].append(version)
    assert len(first_seen) == tickets
    for versions in first_seen.values():
        assert versions == list(range(1, rounds + 2)), f"{seed=}"


def test_broker_down_api_keeps_creating_and_relay_catches_up(
    isolated_database_url: str, jwt_secret: str, tmp_path: Path
) -> None:
    broker = start_dev_broker(log_path=tmp_path / "broker.log")
    settings = Settings(
        database_url=isolated_database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        jwt_secret=jwt_secret,
    )
    ticketing = initialize_ticketing(settings)
    headers = {
        "Authorization": "Bearer "
        + issue_token(jwt_secret, tenant_id=TENANT, sub="agent-1", roles=["agent"])
    }
    relay = start_relay(
        settings,
        idle_wait=1.0,
        check_interval=0.5,
        send_timeout=2.0,
        backoff=Backoff(initial=0.1, maximum=0.5),
    )

    def create(client: TestClient, n: int) -> None:
        response = client.post(
            "/api/v1/tickets/",
            json={"title": f"Ticket {n}", "customer_id": "customer-1"},
            headers=headers,
        )
        assert response.status_code == 201, response.text

    try:
        with TestClient(create_app(settings, ticketing=ticketing)) as client:
            for n in range(5):
                create(client, n)
            head_before = ticketing.app.head_position()
            read_until_published(
                broker.bootstrap_servers, stored_cloudevents(ticketing.app)
            )
            wait_for(lambda: tracked_position(relay) == head_before, 10, "position")

            broker.stop()
            for n in range(5, 25):
                create(client, n)  # the API does not need the broker
                time.sleep(0.05)
            time.sleep(1.0)  # the relay meets the closed port, backs off, retries
            # It kept its place: nothing written during the outage counts as sent.
            assert tracked_position(relay) == head_before
            assert ticketing.app.head_position() > head_before

            broker.start()  # same port, empty
            expected = stored_cloudevents(ticketing.app)
            assert len(expected) == 25 * 3  # each created with two SLAStarted
            # Everything is on the new broker: what the old one lost, and what
            # was written while it was away.
            read_until_published(broker.bootstrap_servers, expected)
            wait_for(
                lambda: tracked_position(relay) == ticketing.app.head_position(),
                10,
                "the relay to record the head position",
            )
    finally:
        relay.stop()
        ticketing.close()
        broker.stop()
