"""A consumer that applies a partition's records in batches, one transaction
each: every effect once, in order, and a bad record still isolated.

The real broker and PostgreSQL; the handler writes a row per record in the
consumer's transaction, with the transaction's id, so the test sees which
records went together.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from psycopg import AsyncCursor

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.consumer_loop import (
    ConsumerWorker,
    Record,
    worker_pool,
)
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.span_export import SpanExport
from dotmac.ticketing.service.tracing import current_traceparent
from tests.conftest import fresh_database
from tests.kafka_fixtures import read_topic
from tests.otlp_receiver import otlp_receiver

BAD = "event-bad"
CONSUMER = 5  # SPAN_KIND_CONSUMER in OTLP


@pytest.fixture(scope="module")
def database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE test_effects (event_id text, record_offset bigint,"
                " txid bigint, trace text)"
            )
        yield url


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevBroker]:
    log_path = tmp_path_factory.mktemp("batches") / "broker.log"
    with start_dev_broker(log_path=log_path) as running:
        yield running


class EffectPerRecord:
    """Writes the record's effect in the consumer's transaction; fails one."""

    async def handle(self, record: Record, cur: AsyncCursor[Any]) -> None:
        if record.event_id == BAD:
            raise RuntimeError("this record always fails")
        await cur.execute(
            "INSERT INTO test_effects VALUES (%s, %s, txid_current(), %s)",
            (record.event_id, record.offset, current_traceparent()),
        )


def cloudevent(event_id: str, position: int, trace: str | None = None) -> bytes:
    event: dict[str, object] = {"id": event_id, "logposition": position}
    if trace is not None:
        event["traceparent"] = trace
    return json.dumps(event).encode()


async def publish(servers: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"one-key")
    finally:
        await producer.stop()


async def consume_until(
    worker: ConsumerWorker, database_url: str, consumer: str, offset: int
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True
        ) as conn:
            for _ in range(600):
                row = await (
                    await conn.execute(
                        "SELECT max(next_offset) FROM consumer_positions"
                        " WHERE consumer = %s",
                        (consumer,),
                    )
                ).fetchone()
                if row is not None and row[0] is not None and row[0] >= offset:
                    return
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        raise AssertionError("the consumer did not reach the last record")
    finally:
        stop.set()
        await task


@dataclass(frozen=True)
class Topics:
    topic: str
    dlq: str
    consumer: str


def consume_all(
    database_url: str,
    broker: DevBroker,
    names: Topics,
    values: list[bytes],
    spans: SpanExport | None = None,
) -> None:
    """Publish ``values`` to a fresh topic, then consume them all in batches."""

    async def scenario() -> None:
        pool = worker_pool(database_url, names.consumer, max_size=2)
        await pool.open()
        try:
            worker = ConsumerWorker(
                name=names.consumer,
                topics=[names.topic],
                bootstrap_servers=broker.bootstrap_servers,
                pool=pool,
                handler=EffectPerRecord(),
                dlq_topic=names.dlq,
                max_attempts=2,
                retry=Backoff(initial=0.01, maximum=0.01, jitter=0.0),
                session_timeout_ms=6000,
                fetch_max_wait_ms=50,
                topic_partitions={names.topic: 1, names.dlq: 1},
                batch_size=50,
                spans=spans,
            )
            # The topics first, then every record, so they arrive together.
            partitions = {names.topic: 1, names.dlq: 1}
            await ensure_topics(broker.bootstrap_servers, partitions)
            await publish(broker.bootstrap_servers, names.topic, values)
            await consume_until(worker, database_url, names.consumer, len(values))
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_records_that_arrive_together_share_a_transaction_and_a_bad_one_is_alone(
    database_url: str, broker: DevBroker
) -> None:
    suffix = secrets.token_hex(3)
    topic, dlq, consumer = f"batches-{suffix}", f"batches-dlq-{suffix}", f"c-{suffix}"
    events = [f"event-{n}" for n in range(1, 13)]
    # In log order, with a bad record sixth and, later, a copy of the
    # fourth published again (a relay retry).
    published = [*events[:5], BAD, *events[5:8], events[3], *events[8:]]
    positions = {event: n for n, event in enumerate([*events[:5], BAD, *events[5:]], 1)}
    values = [cloudevent(e, positions[e]) for e in published]

    consume_all(database_url, broker, Topics(topic, dlq, consumer), values)

    with psycopg.connect(database_url) as conn:
        effects = conn.execute(
            "SELECT event_id, txid FROM test_effects ORDER BY record_offset"
        ).fetchall()
    # The batch holding the bad record rolled back and its records were
    # applied one by one: each effect once, in order, the copy skipped.
    assert [event for event, _ in effects] == events
    letters = read_topic(broker.bootstrap_servers, dlq, until=lambda r: len(r) >= 1)
    assert len(letters) == 1
    letter = json.loads(letters[0].value)
    assert letter["offset"] == 5
    assert json.loads(base64.b64decode(letter["original"]))["id"] == BAD


def test_a_batch_without_failures_is_one_transaction(
    database_url: str, broker: DevBroker
) -> None:
    suffix = secrets.token_hex(3)
    topic, dlq, consumer = f"batches-{suffix}", f"batches-dlq-{suffix}", f"c-{suffix}"
    events = [f"clean-{suffix}-{n}" for n in range(1, 21)]

    values = [cloudevent(e, n) for n, e in enumerate(events, start=1)]
    consume_all(database_url, broker, Topics(topic, dlq, consumer), values)

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id, txid FROM test_effects WHERE event_id = ANY(%s)"
            " ORDER BY record_offset",
            (events,),
        ).fetchall()
        position = conn.execute(
            "SELECT next_offset, log_position FROM consumer_positions"
            " WHERE consumer = %s",
            (consumer,),
        ).fetchone()
    assert [event for event, _ in rows] == events
    assert len({txid for _, txid in rows}) < len(events)  # batched
    assert position == (len(events), len(events))


def test_each_record_is_a_span_of_its_events_trace_and_its_work_carries_it(
    database_url: str, broker: DevBroker
) -> None:
    suffix = secrets.token_hex(3)
    names = Topics(f"traced-{suffix}", f"traced-dlq-{suffix}", f"c-{suffix}")
    trace_id, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    events = [f"traced-{suffix}-{n}" for n in range(1, 4)]
    values = [
        cloudevent(e, n, f"00-{trace_id}-{caller}-01")
        for n, e in enumerate(events, start=1)
    ]

    with otlp_receiver() as receiver:
        spans = SpanExport(receiver.endpoint, process="test-consumer")
        consume_all(database_url, broker, names, values, spans)
        spans.close()
        received = [s for s in receiver.received() if s.trace_id == trace_id]

    assert len(received) == 3
    assert {(s.kind, s.parent_span_id) for s in received} == {(CONSUMER, caller)}
    assert {s.attributes["messaging.destination.name"] for s in received} == {
        names.topic
    }
    with psycopg.connect(database_url) as conn:
        traces = conn.execute(
            "SELECT trace FROM test_effects WHERE event_id = ANY(%s)", (events,)
        ).fetchall()
    # The handler ran inside its record's span: what it saves carries it.
    assert {trace for (trace,) in traces} == {
        f"00-{trace_id}-{s.span_id}-01" for s in received
    }
