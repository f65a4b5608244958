"""Relay throughput: a stored event log published to the broker, timed.

One run, one fresh database, one development broker:

1. store ``events`` tickets (one ``TicketCreated`` event each) straight
   through the application, :data:`AGGREGATES_PER_SAVE` per
   ``save_aggregates()`` transaction;
2. read the log back and turn every event into the record the relay sends
   (key = ticket id, value = the CloudEvent), timed: the relay's own work
   without the broker;
3. the baseline: a raw aiokafka producer (``acks="all"``, like the relay's)
   sends those very records to a topic of its own with the same partition
   count, in batches of the relay's size, awaiting every acknowledgement
   of a batch before the next, as the relay does: the broker's own speed;
4. the relay (``build_relay()`` from settings, production defaults) on a
   thread of this process, timed from the thread's start until its
   position (advanced after the broker acknowledged a batch and the
   position was written to ``relay_tracking``) reaches the head of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from dotmac.ticketing.consumers.kafka.broker import DevBroker, ensure_topics
from dotmac.ticketing.consumers.kafka.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    encode_cloudevent,
    to_cloudevent,
)
from dotmac.ticketing.consumers.relay import BATCH_SIZE
from dotmac.ticketing.domain.enums import TicketCategory, TicketChannel, TicketPriority
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.processes import build_relay, close_relay
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env
from tests.bench.harness import (
    BenchError,
    CpuProbe,
    ReadRow,
    client_cpu_probe,
    cpu_used,
    deferred_interrupts,
    process_cpu_seconds,
)

AGGREGATES_PER_SAVE = 500
BASELINE_TOPIC = "bench.raw-producer.v1"
RELAY_TIMEOUT_SECONDS = 180.0
POLL_INTERVAL = 0.005
_HEADERS = [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode())]

Records = list[tuple[bytes, bytes]]  # (key, value) as the relay sends them


@dataclass(frozen=True)
class RelayRows:
    stored: ReadRow
    encode: ReadRow
    baseline: ReadRow
    relay: ReadRow

    @property
    def rows(self) -> list[ReadRow]:
        return [self.stored, self.encode, self.baseline, self.relay]


def run_relay_throughput(
    database_url: str,
    broker: DevBroker,
    *,
    tenant: str,
    events: int,
    partitions: int,
    on_step: Callable[[str], None] = lambda message: None,
) -> RelayRows:
    on_step(f"relay: storing {events:,} events")
    stored = _store(database_url, tenant, events)
    on_step("relay: reading the log back as CloudEvent records")
    records, encode = _records(database_url)
    if len(records) != events:
        raise BenchError(f"stored {events} events, read back {len(records)}")
    probe = broker_cpu_probe(broker)
    on_step(
        f"relay: baseline, a raw aiokafka producer sending {len(records):,} records"
    )
    baseline = asyncio.run(
        _raw_producer(broker.bootstrap_servers, records, partitions, probe)
    )
    on_step(f"relay: the relay publishing {events:,} events")
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_partitions=partitions,
    )
    relay = _time_relay(settings, events, probe)
    size = sum(len(k) + len(v) for k, v in records) / len(records)
    ratio = relay.rate / baseline.rate if baseline.rate else float("nan")
    relay.notes = (
        f"{ratio:.2f}x the raw producer's rate. " + relay.notes + f" Records: "
        f"{size:,.0f} bytes on average (key + CloudEvent)."
    )
    return RelayRows(stored, encode, baseline, relay)


# -- the log ------------------------------------------------------------------


def _store(database_url: str, tenant: str, events: int) -> ReadRow:
    row = ReadRow(
        "store the event log",
        events,
        0.0,
        "events",
        notes=(
            f"one TicketCreated per ticket, {AGGREGATES_PER_SAVE} tickets per "
            "save_aggregates() transaction, in this process"
        ),
    )
    app = TicketApplication(eventsourcing_env(database_url, pool_size=2))
    try:
        agent = Provenance(tenant, Actor("bench-agent", "agent"))
        now = datetime.now(UTC)
        with cpu_used(_this_process, row):
            start = time.perf_counter()
            batch: list[Ticket] = []
            for n in range(events):
                batch.append(
                    Ticket.create(
                        ticket_id=uuid4(),
                        number=n + 1,
                        title=f"Benchmark ticket {n}",
                        description="Created by the benchmark " * 8,
                        category=TicketCategory.GENERAL,
                        priority=TicketPriority.NORMAL,
                        channel=TicketChannel.API,
                        customer_id=f"cust-{n % 100}",
                        customer_email=f"cust-{n % 100}@bench.example.test",
                        tags=["bench"],
                        custom_fields={},
                        provenance=agent,
                        at=now,
                    )
                )
                if len(batch) == AGGREGATES_PER_SAVE:
                    app.save_aggregates(*batch)
                    batch = []
            if batch:
                app.save_aggregates(*batch)
            row.seconds = time.perf_counter() - start
        head = app.head_position()
    finally:
        app.close()
    if head != events:
        raise BenchError(f"stored {events} events but the log's head is {head}")
    return row


def _records(database_url: str) -> tuple[Records, ReadRow]:
    """Every event of the log as the relay's (key, value), and how long that took."""
    row = ReadRow(
        "read + encode, no broker",
        0,
        0.0,
        "events",
        notes=(
            f"the relay's work without Kafka: select_notifications() by "
            f"{BATCH_SIZE}, decode the event, to_cloudevent(), encode"
        ),
    )
    records: Records = []
    app = TicketApplication(eventsourcing_env(database_url, pool_size=2))
    try:
        with cpu_used(_this_process, row):
            start = time.perf_counter()
            position = 0
            while True:
                notifications = app.recorder.select_notifications(
                    start=position, limit=BATCH_SIZE, inclusive_of_start=False
                )
                if not notifications:
                    break
                for notification in notifications:
                    event = app.mapper.to_domain_event(notification)
                    assert isinstance(event, Ticket.Event)
                    records.append(
                        (
                            str(event.originator_id).encode(),
                            encode_cloudevent(to_cloudevent(event)),
                        )
                    )
                position = notifications[-1].id
            row.seconds = time.perf_counter() - start
    finally:
        app.close()
    row.count = len(records)
    return records, row


# -- the baseline: the broker's own speed -----------------------------------------


async def _raw_producer(
    bootstrap_servers: str, records: Records, partitions: int, probe: CpuProbe
) -> ReadRow:
    row = ReadRow(
        "raw aiokafka producer (baseline)",
        len(records),
        0.0,
        "msgs",
        notes=(
            f"the same keys and values to topic {BASELINE_TOPIC} ({partitions} "
            f"partitions), acks=all, in batches of {BATCH_SIZE}: send all, "
            "await every acknowledgement, next batch; connected before the clock "
            "starts"
        ),
    )
    await ensure_topics(bootstrap_servers, {BASELINE_TOPIC: partitions})
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, client_id="bench-raw", acks="all"
    )
    await producer.start()
    try:
        await producer.partitions_for(BASELINE_TOPIC)
        with cpu_used(probe, row):
            start = time.perf_counter()
            for first in range(0, len(records), BATCH_SIZE):
                sends = [
                    await producer.send(
                        BASELINE_TOPIC, key=key, value=value, headers=_HEADERS
                    )
                    for key, value in records[first : first + BATCH_SIZE]
                ]
                await asyncio.gather(*sends)
            row.seconds = time.perf_counter() - start
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 10)
    return row


# -- the relay ------------------------------------------------------------------


def _time_relay(settings: Settings, head: int, probe: CpuProbe) -> ReadRow:
    row = ReadRow(
        "relay -> broker",
        head,
        0.0,
        "events",
        notes="",
    )
    relay = build_relay(settings)
    stop = threading.Event()
    thread = threading.Thread(
        target=relay.run_sync, args=(stop,), name="bench-relay", daemon=True
    )
    try:
        with cpu_used(probe, row):
            start = time.perf_counter()
            thread.start()
            first: tuple[float, int] | None = None
            while (position := relay.position) < head:
                now = time.perf_counter()
                if first is None and position > 0:
                    first = (now, position)
                if not thread.is_alive():
                    raise BenchError(f"the relay stopped at position {position}")
                if now - start > RELAY_TIMEOUT_SECONDS:
                    raise BenchError(
                        f"the relay reached position {position} of {head} in "
                        f"{RELAY_TIMEOUT_SECONDS:.0f} s"
                    )
                time.sleep(POLL_INTERVAL)
            row.seconds = time.perf_counter() - start
    finally:
        with deferred_interrupts():
            stop.set()
            thread.join(15)
            if not thread.is_alive():
                close_relay(relay)
    notes = (
        f"build_relay() with the defaults (batches of {relay.batch_size}, "
        f"acks=all), on a thread of this process; from its start (connecting, "
        "topic checks) until its acknowledged and recorded position is the "
        "head, polled every 5 ms."
    )
    if first is not None and row.seconds > first[0] - start:
        after_first = (head - first[1]) / (row.seconds - (first[0] - start))
        notes += (
            f" First batch recorded after {(first[0] - start) * 1000:.0f} ms; "
            f"{after_first:,.0f} events/s from then on."
        )
    row.notes = notes
    return row


# -- CPU ------------------------------------------------------------------------


def _this_process() -> dict[str, float]:
    return {
        "this process" if name == "client" else name: value
        for name, value in client_cpu_probe().items()
    }


def broker_cpu_probe(broker: DevBroker) -> CpuProbe:
    """CPU of this process (the producer or the relay), the broker, the machine."""
    pid = _broker_pid(broker.port)

    def probe() -> dict[str, float]:
        used = _this_process()
        seconds = process_cpu_seconds(pid) if pid is not None else None
        if seconds is not None:
            used["broker"] = seconds
        return used

    return probe


def _broker_pid(port: int) -> int | None:
    """The broker's process: the child of this one listening on ``port``."""
    for pid in _children():
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if f"tcp://127.0.0.1:{port}".encode() in cmdline:
                return pid
    return None


def _children() -> Iterator[int]:
    with contextlib.suppress(OSError):
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                for pid in (task / "children").read_text().split():
                    yield int(pid)
