"""The shape every Kafka consumer shares: effect and position, one transaction.

A consumer reads records of its group's partitions and, for each record,
in one PostgreSQL transaction:

- claims the record's CloudEvent id (a duplicate — the relay re-publishing
  after a crash, a producer retry — is then skipped, effect and all);
- applies its handler's effect (rows of its own tables);
- records the partition's next offset under ``<topic>:<partition>``, with
  the identity of the record just processed and the partition's log
  position watermark (``consumer_positions``).

On partition assignment it seeks to the record before that offset and
checks it is the one processed there: the same log, so it goes on from
the recorded offset (Kafka's own committed offset is only an
optimisation). Any other record there, or a partition shorter than the
recorded offset, means a different log under the same name (the topic
was recreated, the development broker restarted empty); the partition is
then read from its start.

Records whose ``logposition`` is at or below the partition's watermark are
skipped in memory, with no database round trip: the group applied them
before (``log_positions.py`` says why the watermark is contiguous). That
is what makes a republish after a lost topic cheap for a group that is
ahead of the others. Everything else still goes through the event-id
ledger, so a copy above the watermark is caught there.

A consumer whose handler keeps every effect in that transaction (its
``batch_size`` above 1) applies a partition's records that arrived together
in one transaction, up to ``batch_size`` of them: the same claims, effects
and position, all or nothing, for a fraction of the round trips. A batch
that fails is rolled back and its records are applied one by one, so a bad
record is retried and dead-lettered alone.

A consumer may apply several partitions at once (``partitions_at_once``):
each partition's records stay in order, and a ticket's events share a
partition (its key).

A record that still fails after retries goes to a dead-letter topic with
the error and the original, and the partition moves on. Effects outside
PostgreSQL (e-mail, SMS, webhooks) are written here as pending deliveries
and sent afterwards by their own loop, never from inside this transaction.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from psycopg import AsyncCursor
from psycopg.rows import DictRow, tuple_row
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.kafka.broker import TopicMismatch, prepare_topics
from dotmac.ticketing.consumers.kafka.log_positions import already_applied
from dotmac.ticketing.consumers.kafka.security import PLAINTEXT, KafkaSecurity
from dotmac.ticketing.consumers.kafka.topics import (
    TICKET_EVENTS,
    TICKET_EVENTS_DLQ,
    service_topics,
)
from dotmac.ticketing.consumers.supervision import (
    WorkerHealth,
    current_health,
    until_done,
)
from dotmac.ticketing.domain.trace_context import parse_traceparent
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.span_export import (
    EVERY_TRACE,
    SpanExport,
    SpanSampling,
    span_export,
)
from dotmac.ticketing.service.tracing import working_for

log = structlog.get_logger(__name__)

# A record that failed is tried again after 0.2 s, 0.4 s, ... (±50 %),
# uncapped: ``max_attempts`` ends it.
RECORD_RETRY = Backoff(initial=0.2, maximum=float("inf"), jitter=0.5)

CONSUMER_LAG = Gauge(
    "ticketing_consumer_lag_records",
    "Records of the partition the group's consumer here has not read yet"
    " (set with each heartbeat).",
    ("group", "partition"),
)
RECORDS = Counter(
    "ticketing_consumer_records",
    "Records consumed, by outcome: applied, duplicate (skipped by the event"
    " id ledger), dead_lettered.",
    ("group", "outcome"),
)

#: Records per transaction for a handler whose effects are all in it: a
#: bound on the rows a batch holds locked, and on what a rollback redoes.
TRANSACTION_BATCH = 50


@dataclass(frozen=True)
class Record:
    """One Kafka record as a handler sees it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    # The broker's timestamp of the record (ms); part of its identity.
    timestamp: int = 0

    @cached_property
    def event(self) -> dict[str, Any]:
        """The CloudEvent (structured mode) carried by the record."""
        decoded = json.loads(self.value)
        if not isinstance(decoded, dict) or "id" not in decoded:
            raise ValueError("the record is not a CloudEvent")
        return decoded

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def stream(self) -> str:
        return f"{self.topic}:{self.partition}"

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @cached_property
    def log_position(self) -> int | None:
        """The CloudEvent's ``logposition``; None when absent or unreadable."""
        try:
            position = self.event.get("logposition")
        except (ValueError, TypeError):
            return None
        return position if type(position) is int and position > 0 else None

    @cached_property
    def identity(self) -> str:
        """Tells this record apart from one at the same offset of another log.

        The timestamp is the producer's send time (or the broker's append
        time): a copy of the same event published again differs in it.
        """
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self.timestamp.to_bytes(8, "big", signed=True))
        digest.update((self.key or "").encode())
        digest.update(b"\0")
        digest.update(self.value)
        return digest.hexdigest()


class Handler(Protocol):
    async def handle(self, record: Record, cur: AsyncCursor[DictRow]) -> None:
        """Apply the record's effect inside the consumer's transaction."""


class _SeekToRecordedOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: ConsumerWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self._worker.seek_to_recorded(assigned)
        self._worker.joined()


class ConsumerWorker:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        bootstrap_servers: str,
        pool: AsyncConnectionPool[Any],
        handler: Handler,
        dlq_topic: str,
        max_attempts: int = 5,
        retry: Backoff = RECORD_RETRY,
        session_timeout_ms: int = 10_000,
        fetch_max_wait_ms: int = 500,
        topic_partitions: Mapping[str, int] | None = None,
        recreate_mismatched_topics: bool = False,
        batch_size: int = 1,
        partitions_at_once: int = 1,
        spans: SpanExport | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.name = name
        self._spans = spans
        self._security = security
        # At zero from the start: an alert on increase() sees the first one.
        for outcome in ("applied", "duplicate", "dead_lettered"):
            RECORDS.labels(name, outcome)
        # Partitions hold different tickets: a handler that mostly waits
        # (on saves, on integrations) may consume several at once, each in
        # its order. Each takes a connection of the pool meanwhile.
        self._partitions_at_once = asyncio.Semaphore(partitions_at_once)
        # 1 for a handler with effects outside the transaction (a failed
        # batch would repeat them for the records before the bad one).
        self._batch_size = batch_size
        self._topics = list(topics)
        self._bootstrap = bootstrap_servers
        self._pool = pool
        self._handler = handler
        self._dlq_topic = dlq_topic
        self._max_attempts = max_attempts
        self._retry = retry
        # How long a consumer that died (SIGKILL, a lost host) keeps its
        # partitions before the group hands them to the others. Joining a
        # group also waits about half of it on the development broker.
        self._session_timeout_ms = session_timeout_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        # Per assigned partition: the log position watermark (in memory,
        # loaded at assignment, advanced as records commit), and the record
        # expected first after the seek (offset, identity), to check the log.
        self._watermarks: dict[TopicPartition, int] = {}
        self._expected: dict[TopicPartition, tuple[int, str]] = {}
        self._partition_counts: dict[str, int] = {}
        # The partition count each topic must have (created so before the
        # clients start; checked again at every assignment).
        self._topic_partitions = dict(topic_partitions or {})
        self._recreate_mismatched = recreate_mismatched_topics
        self._mismatch: TopicMismatch | None = None
        self._health: WorkerHealth | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set.

        Raises :class:`TopicMismatch` when a topic's partition count
        changed under it (the broker came back and a client had it created
        with the broker's default): the supervisor restarts the consumer,
        which prepares the topics again first.
        """
        self._mismatch = None
        if self._topic_partitions:
            await prepare_topics(
                self._bootstrap,
                self._topic_partitions,
                recreate_mismatched=self._recreate_mismatched,
                security=self._security,
            )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            **self._security.client_options(),
            group_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(self._session_timeout_ms // 3, 100),
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            **self._security.client_options(),
        )
        await self._consumer.start()
        await self._producer.start()
        self._health = health = current_health()
        if health is not None:
            health.watch_lag(self.name, self.lag)
            # Until the group hands this consumer its partitions (seconds
            # after start on a fresh broker), nothing it should do happens:
            # readiness says so instead of promising the events are handled.
            health.down(self._joining_part, "joining its consumer group")
        try:
            self._consumer.subscribe(
                self._topics, listener=_SeekToRecordedOffsets(self)
            )
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=200)
                if self._mismatch is not None:
                    raise self._mismatch
                await asyncio.gather(
                    *(self._partition(tp, records) for tp, records in batches.items())
                )
        finally:
            if health is not None:
                health.unwatch_lag(self.name)
                health.up(self._joining_part)
            await self._consumer.stop()
            await self._producer.stop()
            if self._spans is not None:
                # The SDK sends a batch every few seconds: the last records'
                # spans would otherwise wait for the process to exit.
                await asyncio.to_thread(self._spans.flush)

    async def _partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Consume what one partition's fetch brought, in order."""
        async with self._partitions_at_once:
            fresh = await self._same_log(tp, records)
            if fresh is None:
                return  # rewound to the start of a new log
            await self._consume_all([_record(r) for r in fresh])
            assert self._consumer is not None
            await self._consumer.commit({tp: records[-1].offset + 1})

    @property
    def _joining_part(self) -> str:
        return f"consumer {self.name}"

    def joined(self) -> None:
        """The group assigned this consumer its partitions (maybe none)."""
        # The rebalance listener runs in aiokafka's coordinator task, so
        # the health is the one this run found, not looked up again.
        if self._health is not None:
            self._health.up(self._joining_part)

    async def lag(self) -> int | None:
        """Records on this consumer's partitions that it has not read yet."""
        consumer = self._consumer
        if consumer is None:
            return None
        behind = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                partition_lag = max(highwater - await consumer.position(tp), 0)
                CONSUMER_LAG.labels(self.name, str(tp.partition)).set(partition_lag)
                behind += partition_lag
        return behind

    async def seek_to_recorded(self, assigned: Sequence[TopicPartition]) -> None:
        """Start each assigned partition where our own transactions left it."""
        assert self._consumer is not None
        if not assigned:
            return
        self._mismatch = self._partition_mismatch()
        if self._mismatch is not None:
            log.error(
                "topic partitions changed; restarting the consumer",
                consumer=self.name,
                error=str(self._mismatch),
            )
            return
        streams = {f"{tp.topic}:{tp.partition}": tp for tp in assigned}
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                "SELECT stream, next_offset, log_position, partitions, last_record"
                " FROM consumer_positions WHERE consumer = %s AND stream = ANY(%s)",
                (self.name, list(streams)),
            )
            recorded = {row[0]: row[1:] for row in await cur.fetchall()}
        ends = await self._consumer.end_offsets(list(assigned))
        for tp in assigned:
            count = len(self._consumer.partitions_for_topic(tp.topic) or ())
            self._partition_counts[tp.topic] = count
            self._expected.pop(tp, None)
            stream = f"{tp.topic}:{tp.partition}"
            offset, position, partitions, last_record = recorded.get(
                stream, (None, None, None, None)
            )
            # A watermark holds for the routing it was recorded under.
            self._watermarks[tp] = (position or 0) if partitions == count else 0
            if offset is None:
                continue
            if offset > ends[tp]:
                # The log is shorter than what we processed: the topic was
                # recreated (or an in-memory development broker restarted).
                # Read it from the start; what is below the watermark is
                # skipped in memory, the rest by the event-id ledger.
                log.warning(
                    "partition shorter than recorded position; rereading",
                    consumer=self.name,
                    stream=stream,
                    recorded=offset,
                    end=ends[tp],
                )
                self._consumer.seek(tp, 0)
            elif last_record is not None and offset > 0:
                # Re-read the last record processed, to know the log is ours.
                self._consumer.seek(tp, offset - 1)
                self._expected[tp] = (offset - 1, last_record)
            else:
                self._consumer.seek(tp, offset)

    async def _same_log(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]] | None:
        """The records to consume, after checking the first one after a seek.

        None when the partition turned out to be another log and was
        rewound to its start (the records fetched are then dropped).
        """
        expected = self._expected.pop(tp, None)
        if expected is None:
            return records
        offset, identity = expected
        first = records[0]
        if first.offset > offset:
            # What we processed last is no longer kept (retention); the
            # records after it are.
            return records
        if first.offset == offset and _record(first).identity == identity:
            return records[1:]  # processed already: the log is ours
        log.warning(
            "partition holds another log than the one processed; reading it "
            "from the start",
            consumer=self.name,
            stream=f"{tp.topic}:{tp.partition}",
            offset=offset,
        )
        if first.offset < offset:
            # The consumer already reset to the log's start (our offset was
            # out of range): these records are where it begins.
            return records
        assert self._consumer is not None
        await self._consumer.seek_to_beginning(tp)
        return None

    async def _consume_all(self, records: list[Record]) -> None:
        """Process a partition's records in order, in batches where allowed."""
        for start in range(0, len(records), self._batch_size):
            batch = [
                r for r in records[start : start + self._batch_size] if self._new(r)
            ]
            if len(batch) > 1 and await self._apply_together(batch):
                continue
            for record in batch:
                if self._new(record):
                    await self._process(record)

    def _new(self, record: Record) -> bool:
        """Not below its partition's watermark (applied before)."""
        return not already_applied(
            record.log_position, self._watermarks.get(record.topic_partition, 0)
        )

    async def _apply_together(self, batch: list[Record]) -> bool:
        """Apply the records in one transaction; False if it rolled back."""
        try:
            ids = [record.event_id for record in batch]
        except (ValueError, TypeError, KeyError):
            return False  # not a CloudEvent: its own attempts dead-letter it
        try:
            async with self._pool.connection() as conn, conn.transaction():
                claim = conn.cursor(row_factory=tuple_row)
                await claim.execute(
                    "INSERT INTO consumer_processed_events (consumer, event_id)"
                    " SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING"
                    " RETURNING event_id",
                    (self.name, ids),
                )
                claimed = {row[0] for row in await claim.fetchall()}
                cur = conn.cursor()
                applied = 0
                for record in batch:
                    if record.event_id in claimed:
                        claimed.discard(record.event_id)  # a copy later is skipped
                        await self._handle(record, cur)
                        applied += 1
                watermark = await self._record_position(cur, batch[-1], batch)
        except Exception as error:
            log.info(
                "batch rolled back; applying its records one by one",
                consumer=self.name,
                stream=batch[0].stream,
                offsets=f"{batch[0].offset}-{batch[-1].offset}",
                error=repr(error),
            )
            return False
        self._watermarks[batch[-1].topic_partition] = watermark
        RECORDS.labels(self.name, "applied").inc(applied)
        RECORDS.labels(self.name, "duplicate").inc(len(batch) - applied)
        return True

    def _partition_mismatch(self) -> TopicMismatch | None:
        assert self._consumer is not None
        for topic in self._topics:
            configured = self._topic_partitions.get(topic)
            partitions = self._consumer.partitions_for_topic(topic) or set()
            if configured is not None and len(partitions) != configured:
                return TopicMismatch(
                    topic, len(partitions), configured, "changed while consuming"
                )
        return None

    async def _process(self, record: Record) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._apply(record)
                return
            except Exception as error:
                if attempt == self._max_attempts:
                    await self._dead_letter(record, error)
                    return
                log.warning(
                    "record failed; retrying",
                    consumer=self.name,
                    stream=record.stream,
                    offset=record.offset,
                    attempt=attempt,
                    error=repr(error),
                )
                await asyncio.sleep(self._retry.delay(attempt))

    async def _apply(self, record: Record) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            await cur.execute(
                "INSERT INTO consumer_processed_events (consumer, event_id)"
                " VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING event_id",
                (self.name, record.event_id),
            )
            fresh = await cur.fetchone() is not None
            if fresh:
                await self._handle(record, cur)
            watermark = await self._record_position(cur, record)
        self._watermarks[record.topic_partition] = watermark
        RECORDS.labels(self.name, "applied" if fresh else "duplicate").inc()

    async def _handle(self, record: Record, cur: AsyncCursor[Any]) -> None:
        """The handler's effect, as a step of the record's trace: what it
        saves carries the trace on (``service.tracing``); a span of its own
        when spans are exported."""
        caused_by = parse_traceparent(record.event.get("traceparent"))
        if self._spans is None:
            with working_for(caused_by.child() if caused_by is not None else None):
                await self._handler.handle(record, cur)
            return
        with self._spans.span(
            f"{self.name} {record.event.get('type', 'record')}",
            caused_by,
            kind=SpanKind.CONSUMER,
        ) as span:
            if span.recording:
                span.set(self._span_attributes(record))
            with working_for(span.trace):
                await self._handler.handle(record, cur)

    def _span_attributes(self, record: Record) -> dict[str, str | int]:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": self.name,
        }

    async def _dead_letter(self, record: Record, error: Exception) -> None:
        """Park a record that keeps failing, then move past it."""
        assert self._producer is not None
        log.error(
            "record dead-lettered",
            consumer=self.name,
            stream=record.stream,
            offset=record.offset,
            error=repr(error),
        )
        letter = {
            "consumer": self.name,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key,
            "error": repr(error)[:2000],
            "original": base64.b64encode(record.value).decode(),
        }
        await self._producer.send_and_wait(
            self._dlq_topic,
            json.dumps(letter).encode(),
            key=record.key.encode() if record.key else None,
        )
        async with self._pool.connection() as conn, conn.transaction():
            watermark = await self._record_position(conn.cursor(), record)
        self._watermarks[record.topic_partition] = watermark
        RECORDS.labels(self.name, "dead_lettered").inc()

    async def _record_position(
        self, cur: AsyncCursor[Any], record: Record, batch: Sequence[Record] = ()
    ) -> int:
        """Record the partition's progress up to ``record`` (the last of
        ``batch``, if given); return its new watermark.

        A record is consumed only after every earlier one of its partition,
        so the highest position consumed so far is contiguous per partition
        (``log_positions.py``). A dead-lettered record counts as consumed:
        the partition moved past it.
        """
        watermark = max(
            self._watermarks.get(record.topic_partition, 0),
            *(r.log_position or 0 for r in (*batch, record)),
        )
        await cur.execute(
            "INSERT INTO consumer_positions"
            " (consumer, stream, next_offset, log_position, partitions, last_record)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (consumer, stream)"
            " DO UPDATE SET next_offset = EXCLUDED.next_offset,"
            " log_position = EXCLUDED.log_position,"
            " partitions = EXCLUDED.partitions, last_record = EXCLUDED.last_record",
            (
                self.name,
                record.stream,
                record.offset + 1,
                watermark,
                self._partition_counts.get(record.topic),
                record.identity,
            ),
        )
        return watermark


def _record(record: ConsumerRecord[bytes, bytes]) -> Record:
    return Record(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode() if record.key is not None else None,
        value=record.value or b"",
        timestamp=record.timestamp,
    )


# ----------------------------------------------------------------------
# What every worker on the ticket topic sets up the same way


def worker_pool(
    database_url: str, name: str, *, max_size: int, **kwargs: Any
) -> AsyncConnectionPool[Any]:
    """A worker's own pool (opened by the caller), named per process.

    The name (``<worker>:<pid>``) tells replicas apart in
    ``pg_stat_activity``.
    """
    return AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs={"application_name": f"{name}:{os.getpid()}", **kwargs},
        open=False,
        name=name,
    )


@dataclass(frozen=True)
class KafkaConfig:
    """What a worker's Kafka clients are given (the entry layer reads it)."""

    bootstrap_servers: str
    partitions: int = 6
    recreate_mismatched_topics: bool = False
    session_timeout_ms: int = 10_000
    fetch_max_wait_ms: int = 500
    #: Where the consumers' record spans go (service.span_export); None: none.
    otlp_endpoint: str | None = None
    #: Which of those spans are exported (the trace context rides on anyway).
    span_sampling: SpanSampling = EVERY_TRACE
    #: TLS / SASL of every client (consumers.kafka.security).
    security: KafkaSecurity = PLAINTEXT


async def ensure_service_topics(
    worker: str, kafka: KafkaConfig, stop: asyncio.Event
) -> None:
    """Create the service's topics (or refuse mismatched ones), waiting for the broker.

    Until that succeeds the worker reports itself down with the reason.
    """
    await until_done(
        worker,
        "topics",
        lambda: prepare_topics(
            kafka.bootstrap_servers,
            service_topics(kafka.partitions),
            recreate_mismatched=kafka.recreate_mismatched_topics,
            security=kafka.security,
        ),
        stop,
    )


def ticket_events_consumer(
    kafka: KafkaConfig,
    *,
    name: str,
    pool: AsyncConnectionPool[Any],
    handler: Handler,
    dlq_topic: str = TICKET_EVENTS_DLQ,
    batch_size: int = 1,
    partitions_at_once: int = 1,
) -> ConsumerWorker:
    """A consumer of the ticket event topic in group ``name``; ``batch_size``
    above 1 only for a handler whose effects are all in its transaction."""
    return ConsumerWorker(
        name=name,
        topics=[TICKET_EVENTS],
        bootstrap_servers=kafka.bootstrap_servers,
        pool=pool,
        handler=handler,
        dlq_topic=dlq_topic,
        session_timeout_ms=kafka.session_timeout_ms,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        topic_partitions=service_topics(kafka.partitions),
        recreate_mismatched_topics=kafka.recreate_mismatched_topics,
        batch_size=batch_size,
        partitions_at_once=partitions_at_once,
        spans=span_export(
            kafka.otlp_endpoint, process=name, sampling=kafka.span_sampling
        ),
        security=kafka.security,
    )
