"""The relay: every stored ticket event, published to Kafka, at least once.

It follows the application's notification log like a projector, with its
own tracking position in PostgreSQL (the library's tracking recorder, table
``relay_tracking``, row ``ticketing``). Each round reads a batch of events
after that position, sends them all to ``ticketing.ticket-events.v1``
(key = ticket id, value = the CloudEvent with its ``logposition``, the
notification id; ``acks="all"``), awaits every acknowledgement, and only
then records the batch's last position. A crash at any point therefore
re-publishes part of a batch, never skips one; consumers deduplicate by
the CloudEvent id (``<ticket id>:<version>``).

Order per partition: the relay routes each record itself (Kafka's default
partitioner on the ticket id, ``log_positions.partition_for``) and sends a
partition's records of a round as record batches, one at a time, each
only after the broker acknowledged the one before. A record batch is
appended whole or not at all, and a partition whose batch failed gets
nothing more from that round. So on every partition the *first* copy of
each event comes after the first copies of all earlier events of that
partition, whatever fails when: a failed round is sent again from the
recorded position, which only adds copies of events already there or the
missing ones in order. Consumers build their contiguous log position
watermarks on this. A consumer may still meet a copy of an event after
later ones of the same ticket; one that needs strict order compares
``version`` with what it has.

When caught up it waits on PostgreSQL ``LISTEN`` (the channel the library
notifies on each insert), reading again at the latest after ``idle_wait``
seconds: no busy polling, and a stop request is seen within a quarter of a
second.

Broker outages: any failure (broker down, a send not acknowledged within
``send_timeout``, the database away) closes the connections, waits with
exponential back-off and tries again from the recorded position. The API
is not involved: it writes to PostgreSQL only.

A broker that lost its data (the development broker keeps everything in
memory; a real cluster after a disaster, or a deleted topic) is detected
and answered by publishing again what some consumer group of the service
has not applied: from the first event, in log order, above its
partition's watermark for one of the groups (the groups record them in
``consumer_positions``; the relay knows the groups that have a row there
and those it is configured with, and a configured group without rows gets
everything). Every earlier event is applied by every group, so nothing a
group still needs is left out, and a restart with a long history costs
what the groups had not yet done instead of the whole log. The position
republishing started from is kept (``relay_republished``) so that a topic
left empty because nothing needed republishing is not taken for a loss.
The signs, checked on every (re)connection, before every batch, every
``check_interval`` seconds while idle, and on every acknowledgement:

- the topic is gone, or has fewer partitions than records were sent to;
- a partition this relay had records acknowledged on reports no records;
- the relay has published to this topic before (a ticket event lies
  between where the last republish started and its position) and no
  partition of the topic holds a record (a new, empty topic: the broker
  was replaced while the relay was down too);
- an acknowledged offset is not above one acknowledged earlier on the same
  partition (offsets only grow on a partition that keeps its data).

(End offsets are compared only with zero: the development broker reports
one per record batch, not per record.)

One relay publishes at a time: a PostgreSQL advisory lock elects it, and
further replicas wait as stand-bys.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import RecordMetadata, TopicPartition
from eventsourcing.persistence import Notification, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from prometheus_client import Counter
from psycopg import Connection, sql
from psycopg.rows import DictRow

from dotmac.ticketing.consumers.kafka.broker import TopicMismatch, prepare_topics
from dotmac.ticketing.consumers.kafka.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    EVENT_SOURCE,
    encode_cloudevent,
    to_cloudevent,
)
from dotmac.ticketing.consumers.kafka.log_positions import (
    first_unapplied,
    partition_for,
    scan_start,
)
from dotmac.ticketing.consumers.kafka.security import PLAINTEXT, KafkaSecurity
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.consumers.supervision import restarting
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.store.application import TicketApplication, open_keys_of

log = structlog.get_logger(__name__)

PUBLISHED = Counter(
    "ticketing_relay_published",
    "Ticket events the relay published to Kafka (acknowledged).",
)

LOCK_KEY = "ticketing-relay"
# Sessions restart after 0.5 s, 1 s, ... at most 30 s.
RESTART = Backoff()
# Events per round trip: one read, one batch of sends, one tracking write.
BATCH_SIZE = 500
# Bytes per record batch: a round's records of one partition fit in one or
# a few (each waits for the one before), below the broker's 1 MiB request.
RECORD_BATCH_BYTES = 512 * 1024
# Events read per query while looking for where to republish from.
SCAN_PAGE = 5000
_HEADERS = [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode())]
# The stored topics of ticket events (the only ones the relay publishes).
_TICKET_TOPICS = f"{Ticket.TOPIC.split(':')[0]}:%"


class Relay:
    """Publishes the notification log of a :class:`TicketApplication` to Kafka.

    ``app`` reads the log (it needs a pool of three connections: a LISTEN,
    reads, and a spare); ``tracking`` stores the position and holds the
    advisory lock (two connections). The relay closes neither.
    """

    def __init__(
        self,
        app: TicketApplication,
        tracking: PostgresTrackingRecorder,
        bootstrap_servers: str,
        *,
        topic: str = TICKET_EVENTS,
        partitions: int = 6,
        source: str = EVENT_SOURCE,
        batch_size: int = BATCH_SIZE,
        idle_wait: float = 5.0,
        check_interval: float = 5.0,
        send_timeout: float = 15.0,
        backoff: Backoff = RESTART,
        client_id: str = "ticketing-relay",
        recreate_mismatched_topics: bool = False,
        security: KafkaSecurity = PLAINTEXT,
        consumer_groups: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.tracking = tracking
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.source = source
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.check_interval = check_interval
        self.send_timeout = send_timeout
        self.backoff = backoff
        self.client_id = client_id
        self.recreate_mismatched_topics = recreate_mismatched_topics
        self.security = security
        # Groups whose needs a republish serves even before they have a row
        # in ``consumer_positions`` (the service's own consumers).
        self.consumer_groups = tuple(consumer_groups)
        # Where the last republish began (1 = the topic holds everything).
        self.republished_from = 1
        # The last position the broker acknowledged and the database recorded.
        self.position = 0
        # Per partition, the highest offset acknowledged to this process
        # since it last started from zero (to notice a broker's memory loss).
        self._acked_offsets: dict[int, int] = {}
        self._stop = threading.Event()

    # -- running -----------------------------------------------------------

    def run_sync(self, stop: threading.Event) -> None:
        """Run on this thread (with its own event loop) until ``stop`` is set."""
        asyncio.run(self.run(stop))

    async def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, restarting every failure with back-off."""
        self._stop = stop
        await restarting(
            "relay",
            "session",
            lambda _stop: self._session(),
            stop,
            backoff=self.backoff,
        )
        log.info("relay stopped", position=self.position)

    async def _session(self) -> None:
        """Connect to PostgreSQL and Kafka and relay until stopped or failed."""
        async with AsyncExitStack() as stack:
            lock_conn = await asyncio.to_thread(
                stack.enter_context, self.tracking.datastore.get_connection()
            )
            if not await self._acquire_lock(lock_conn):
                return
            stack.callback(_unlock, lock_conn)
            listen_conn = await asyncio.to_thread(
                stack.enter_context, self.app.datastore.get_connection()
            )
            recorder: Any = self.app.recorder  # a PostgresApplicationRecorder
            channel = sql.Identifier(recorder.channel_name)
            await asyncio.to_thread(
                listen_conn.execute, sql.SQL("LISTEN {}").format(channel)
            )
            # Back in the pool, the connection must not keep listening.
            stack.callback(_quietly, listen_conn.execute, sql.SQL("UNLISTEN *"))
            await self._prepare_topic()
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                **self.security.client_options(),
                client_id=self.client_id,
                acks="all",
                # A batch not acknowledged in time fails (and is sent again
                # by the next session) rather than waiting for ever.
                request_timeout_ms=int(self.send_timeout * 1000),
                max_batch_size=RECORD_BATCH_BYTES,
            )
            stack.push_async_callback(_close_quietly, producer)
            await producer.start()
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                **self.security.client_options(),
                client_id=f"{self.client_id}-offsets",
                enable_auto_commit=False,
                request_timeout_ms=int(self.send_timeout * 1000),
            )
            stack.push_async_callback(_close_quietly, offsets)
            await offsets.start()

            self.position = await asyncio.to_thread(self._recorded_position)
            self.republished_from = await asyncio.to_thread(self._republish_mark)
            await self._check_topic(producer, offsets)
            log.info(
                "relay connected",
                topic=self.topic,
                position=self.position,
                head=await asyncio.to_thread(self.app.head_position),
            )
            await self._follow(producer, offsets, listen_conn)

    async def _follow(
        self,
        producer: AIOKafkaProducer,
        offsets: AIOKafkaConsumer,
        listen_conn: Connection[DictRow],
    ) -> None:
        last_check = time.monotonic()
        while not self._stop.is_set():
            notifications = await asyncio.to_thread(
                self.app.recorder.select_notifications,
                start=self.position,
                limit=self.batch_size,
                inclusive_of_start=False,
            )
            if notifications:
                last_check = time.monotonic()
                if await self._check_topic(producer, offsets):
                    continue  # the position went back to zero: read again
                await self._publish(producer, notifications)
            if len(notifications) < self.batch_size:
                await asyncio.to_thread(
                    _wait_for_notify, listen_conn, self.idle_wait, self._stop
                )
                if time.monotonic() - last_check >= self.check_interval:
                    last_check = time.monotonic()
                    await self._check_topic(producer, offsets)

    async def _publish(
        self, producer: AIOKafkaProducer, notifications: Sequence[Notification]
    ) -> None:
        """Send a batch, await every acknowledgement, then record the position."""
        partitions = len(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        open_keys_of(self.app, notifications)
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            if not isinstance(event, Ticket.Event):
                log.debug("relay skips a non-ticket event", topic=notification.topic)
                continue
            key = str(event.originator_id).encode()
            cloudevent = to_cloudevent(
                event, source=self.source, log_position=notification.id
            )
            by_partition[partition_for(key, partitions)].append(
                (key, encode_cloudevent(cloudevent))
            )
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    self._send_in_order(producer, partition, records)
                    for partition, records in by_partition.items()
                ),
                return_exceptions=True,
            ),
            self.send_timeout * 2,
        )
        acks: list[tuple[int, int, int]] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            acks.extend(result)
        if await self._offsets_went_back(producer, acks):
            return
        last = notifications[-1].id
        await asyncio.to_thread(
            self.tracking.insert_tracking, Tracking(self.app.name, last)
        )
        self.position = last
        PUBLISHED.inc(sum(len(r) for r in by_partition.values()))
        log.debug(
            "relay published",
            events=sum(len(r) for r in by_partition.values()),
            position=last,
        )

    async def _send_in_order(
        self,
        producer: AIOKafkaProducer,
        partition: int,
        records: Sequence[tuple[bytes, bytes]],
    ) -> list[tuple[int, int, int]]:
        """Send one partition's records as batches, each after the last's ack.

        Returns (partition, first offset, last offset) per batch. A failure
        stops the partition's sending: nothing later of it is appended
        before what failed (see the module's "Order per partition").
        """
        acks: list[tuple[int, int, int]] = []
        pending = list(records)
        while pending:
            batch = producer.create_batch()
            count = 0
            for key, value in pending:
                if batch.append(key=key, value=value, timestamp=None, headers=_HEADERS):
                    count += 1
                else:
                    break
            batch.close()  # nothing else may join it
            future = await producer.send_batch(batch, self.topic, partition=partition)
            metadata: RecordMetadata = await future
            acks.append((partition, metadata.offset, metadata.offset + count - 1))
            pending = pending[count:]
        return acks

    async def _offsets_went_back(
        self, producer: AIOKafkaProducer, acks: Sequence[tuple[int, int, int]]
    ) -> bool:
        """Record the acknowledged offsets; start again if one went back."""
        went_back = False
        for partition, first, last in acks:
            if first <= self._acked_offsets.get(partition, -1):
                went_back = True
            self._acked_offsets[partition] = max(
                last, self._acked_offsets.get(partition, -1)
            )
        if went_back:
            await self._start_again("an acknowledged offset went back", producer)
        return went_back

    # -- the broker's memory -------------------------------------------------

    async def _check_topic(
        self, producer: AIOKafkaProducer, offsets: AIOKafkaConsumer
    ) -> bool:
        """Go back to position zero if the topic lost acknowledged records.

        Returns True when it did.
        """
        await self._check_partitions(offsets)
        lost = await self._lost_records(producer, offsets)
        if lost is None:
            return False
        await self._prepare_topic()
        await self._start_again(lost, producer)
        return True

    async def _prepare_topic(self) -> None:
        """Create the topic with its partitions (or refuse a mismatched one)."""
        await prepare_topics(
            self.bootstrap_servers,
            {self.topic: self.partitions},
            recreate_mismatched=self.recreate_mismatched_topics,
            security=self.security,
            timeout=self.send_timeout,
        )

    async def _check_partitions(self, offsets: AIOKafkaConsumer) -> None:
        """Fail the session if the topic's partition count changed under it.

        The next session prepares the topic again before publishing: a
        topic a client had created with the broker's default is recreated
        if empty, refused otherwise.
        """
        if self.topic not in await offsets.topics():  # fresh metadata
            return
        partitions = len(offsets.partitions_for_topic(self.topic) or ())
        if partitions != self.partitions:
            raise TopicMismatch(
                self.topic, partitions, self.partitions, "changed while publishing"
            )

    async def _lost_records(
        self, producer: AIOKafkaProducer, offsets: AIOKafkaConsumer
    ) -> str | None:
        """Why the topic has lost records the relay published, or None."""
        if self.topic not in await offsets.topics():  # fresh metadata
            return "the topic is gone" if self.position else None
        partitions = await producer.partitions_for(self.topic)
        if not set(self._acked_offsets) <= partitions:
            return "the topic has fewer partitions"
        ends = await offsets.end_offsets(
            [TopicPartition(self.topic, p) for p in partitions]
        )
        records = {tp.partition: end for tp, end in ends.items()}
        if any(records.get(p, 0) == 0 for p in self._acked_offsets):
            return "a partition with acknowledged records is empty"
        # Only ticket events are published: a log that so far holds tenant
        # settings alone leaves the topic rightly empty.
        if (
            self.position
            and not self._acked_offsets
            and not any(records.values())
            and await asyncio.to_thread(
                self._published_between, self.republished_from, self.position
            )
        ):
            return "the topic is empty"
        return None

    async def _start_again(self, reason: str, producer: AIOKafkaProducer) -> None:
        """Republish from the first event some consumer group has not applied."""
        partitions = len(await producer.partitions_for(self.topic))
        start = await asyncio.to_thread(self._republish_start, partitions)
        log.warning(
            "the broker lost published events; republishing what a consumer "
            "group has not applied",
            reason=reason,
            topic=self.topic,
            position=self.position,
            republish_from=start,
        )
        await asyncio.to_thread(self._restart_at, start)
        self.position = start - 1
        self.republished_from = start
        self._acked_offsets.clear()

    def _republish_start(self, partitions: int) -> int:
        """The first log position to publish again (``position + 1``: none).

        Only events up to the relay's position were acknowledged on the
        lost topic; everything after it is sent anyway.
        """
        groups = self._watermarks(partitions)
        for group in self.consumer_groups:
            groups.setdefault(group, {})
        if not groups:
            return 1  # no group known: the topic gets everything again
        after = scan_start(groups, partitions)
        found = first_unapplied(
            self._ticket_keys(after, self.position), groups, partitions
        )
        return self.position + 1 if found is None else found

    # -- PostgreSQL ----------------------------------------------------------

    def _events_table(self) -> sql.Composed:
        recorder: Any = self.app.recorder  # a PostgresApplicationRecorder
        return sql.SQL("{}.{}").format(
            sql.Identifier(recorder.datastore.schema),
            sql.Identifier(recorder.events_table_name),
        )

    def _published_between(self, first: int, last: int) -> bool:
        """Whether a ticket event (one the relay sends) is in ``[first, last]``."""
        statement = sql.SQL(
            "SELECT 1 FROM {} WHERE notification_id BETWEEN %s AND %s"
            " AND topic LIKE %s LIMIT 1"
        ).format(self._events_table())
        with self.app.datastore.transaction(commit=False) as cur:
            cur.execute(statement, (first, last, _TICKET_TOPICS))
            return cur.fetchone() is not None

    def _ticket_keys(self, after: int, upto: int) -> Iterator[tuple[int, bytes]]:
        """(position, key) of each ticket event in ``(after, upto]``, in log order."""
        statement = sql.SQL(
            "SELECT notification_id, originator_id FROM {}"
            " WHERE notification_id > %s AND notification_id <= %s"
            " AND topic LIKE %s ORDER BY notification_id LIMIT %s"
        ).format(self._events_table())
        while after < upto:
            with self.app.datastore.transaction(commit=False) as cur:
                cur.execute(statement, (after, upto, _TICKET_TOPICS, SCAN_PAGE))
                rows = cur.fetchall()
            if not rows:
                return
            for row in rows:
                yield row["notification_id"], str(row["originator_id"]).encode()
            after = rows[-1]["notification_id"]

    def _watermarks(self, partitions: int) -> dict[str, dict[int, int]]:
        """Each consumer group's watermarks on this topic, by partition.

        Watermarks recorded under another partition count are left out
        (they describe another routing): such a partition counts as
        nothing applied.
        """
        groups: dict[str, dict[int, int]] = {}
        with self.tracking.datastore.transaction(commit=False) as cur:
            cur.execute("SELECT to_regclass('consumer_positions') AS present")
            row = cur.fetchone()
            if row is None or row["present"] is None:
                return groups  # no consumer ever ran here
            cur.execute(
                "SELECT consumer, stream, log_position, partitions"
                " FROM consumer_positions WHERE stream LIKE %s",
                (f"{self.topic}:%",),
            )
            for row in cur.fetchall():
                marks: dict[int, int] = groups.setdefault(row["consumer"], {})
                if row["partitions"] == partitions and row["log_position"]:
                    partition = int(row["stream"].rsplit(":", 1)[1])
                    marks[partition] = int(row["log_position"])
        return groups

    def _recorded_position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def _republish_mark(self) -> int:
        with self.tracking.datastore.transaction(commit=False) as cur:
            cur.execute(
                "SELECT from_position FROM relay_republished"
                " WHERE application_name = %s AND topic = %s",
                (self.app.name, self.topic),
            )
            row = cur.fetchone()
        return int(row["from_position"]) if row else 1

    def _restart_at(self, start: int) -> None:
        """Record ``start - 1`` as the position and ``start`` as the republish mark."""
        table = sql.SQL("{}.{}").format(
            sql.Identifier(self.tracking.datastore.schema),
            sql.Identifier(self.tracking.tracking_table_name),
        )
        with self.tracking.datastore.transaction(commit=True) as cur:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE application_name = %s").format(table),
                (self.app.name,),
            )
            if start > 1:
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} (application_name, notification_id)"
                        " VALUES (%s, %s)"
                    ).format(table),
                    (self.app.name, start - 1),
                )
            cur.execute(
                "INSERT INTO relay_republished (application_name, topic,"
                " from_position) VALUES (%s, %s, %s)"
                " ON CONFLICT (application_name, topic)"
                " DO UPDATE SET from_position = EXCLUDED.from_position",
                (self.app.name, self.topic, start),
            )

    async def _acquire_lock(self, conn: Connection[DictRow]) -> bool:
        """Become the one active relay; False if stopped while waiting."""
        waiting_logged = False
        while not self._stop.is_set():
            row = await asyncio.to_thread(
                lambda: conn.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s)) AS locked",
                    (LOCK_KEY,),
                ).fetchone()
            )
            if row and row["locked"]:
                return True
            if not waiting_logged:
                log.info("another relay is active; standing by")
                waiting_logged = True
            await self._sleep(1.0)
        return False

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.1))


def _wait_for_notify(
    conn: Connection[DictRow], timeout: float, stop: threading.Event
) -> None:
    """Block until the log is notified of an insert, ``timeout`` passes or ``stop``.

    Waiting sends nothing to the server: psycopg waits on the socket, in
    short slices only to notice ``stop``. Notifications that arrived while
    the relay was busy are buffered by psycopg and end the wait at once;
    all buffered ones are consumed, since one read covers them all.
    """
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if any(True for _ in conn.notifies(timeout=min(remaining, 0.25), stop_after=1)):
            for _ in conn.notifies(timeout=0):
                pass
            return


def _unlock(conn: Connection[DictRow]) -> None:
    # A broken connection holds no lock: its session ended.
    _quietly(conn.execute, "SELECT pg_advisory_unlock(hashtext(%s))", (LOCK_KEY,))


def _quietly(function: Any, *args: Any) -> None:
    with contextlib.suppress(Exception):
        function(*args)


async def _close_quietly(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    """Close a Kafka client; waiting at most a few seconds when the broker is away."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), 5.0)
