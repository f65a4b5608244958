"""The relay: every stored ticket event, published to Kafka, at least once.

It follows the application's notification log like a projector, with its
own tracking position in PostgreSQL (the library's tracking recorder, table
``relay_tracking``, row ``ticketing``). Each round reads a batch of events
after that position, sends them all to ``ticketing.ticket-events.v1``
(key = ticket id, value = the CloudEvent, ``acks="all"``), awaits every
acknowledgement, and only then records the batch's last position. A crash
at any point therefore re-publishes part of a batch, never skips one;
consumers deduplicate by the CloudEvent id (``<ticket id>:<version>``).

Order per ticket: records of one key go to one partition, and the producer
keeps at most one request in flight per broker, so a ticket's events are
acknowledged in the order they were stored. After a failure the batch is
sent again from the recorded position, so a consumer may meet an event
again after later ones of the same ticket (the idempotent producer, which
would prevent that, does not work with the development broker). A
consumer that needs strict order compares ``version`` with what it has.

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
and answered by publishing the whole log again from position zero, so the
topic is again a complete copy of the event store, the source of truth.
Consumers see the replayed events again and drop them by id. The signs,
checked on every (re)connection, before every batch, every
``check_interval`` seconds while idle, and on every acknowledgement:

- the topic is gone, or has fewer partitions than records were sent to;
- a partition this relay had records acknowledged on reports no records;
- the relay has published before (its position is not zero) and no
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
import random
import threading
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import psycopg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata, TopicPartition
from eventsourcing.persistence import Notification, PersistenceError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from psycopg import Connection, sql
from psycopg.rows import DictRow

from dotmac.ticketing.consumers.broker import create_missing_topics
from dotmac.ticketing.consumers.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    EVENT_SOURCE,
    encode_cloudevent,
    to_cloudevent,
)
from dotmac.ticketing.consumers.topics import TICKET_EVENTS
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.application import TicketApplication

log = structlog.get_logger(__name__)

LOCK_KEY = "ticketing-relay"
# Events per round trip: one read, one batch of sends, one tracking write.
BATCH_SIZE = 500
_HEADERS = [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode())]
# Failures of the broker or the database, as opposed to bugs.
_OUTAGES = (KafkaError, OSError, TimeoutError, psycopg.Error, PersistenceError)


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
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        client_id: str = "ticketing-relay",
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
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.client_id = client_id
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
        """Relay until ``stop`` is set, retrying every failure with back-off."""
        self._stop = stop
        failures = 0
        while not stop.is_set():
            connected_at = time.monotonic()
            try:
                await self._session()
            except Exception as error:
                # A session that ran for a while before failing starts the
                # back-off from the beginning again.
                if time.monotonic() - connected_at > self.backoff_max:
                    failures = 0
                failures += 1
                delay = min(
                    self.backoff_max, self.backoff_initial * 2 ** (failures - 1)
                ) * random.uniform(0.8, 1.2)
                # An outage is expected and told in one line; anything else
                # (an event the relay cannot convert, a bug) with its trace.
                outage = isinstance(error, _OUTAGES)
                (log.warning if outage else log.error)(
                    "relay interrupted; retrying",
                    error=f"{type(error).__name__}: {error}",
                    position=self.position,
                    failures=failures,
                    retry_in=round(delay, 2),
                    exc_info=not outage,
                )
                await self._sleep(delay)
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
            await create_missing_topics(
                self.bootstrap_servers,
                {self.topic: self.partitions},
                timeout=self.send_timeout,
            )
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                acks="all",
                # A batch not acknowledged in time fails (and is sent again
                # by the next session) rather than waiting for ever.
                request_timeout_ms=int(self.send_timeout * 1000),
            )
            stack.push_async_callback(_close_quietly, producer)
            await producer.start()
            partitions = len(await producer.partitions_for(self.topic))
            if partitions != self.partitions:
                # Kept as it is: a topic's partitions cannot shrink, and the
                # development broker cannot add any (it creates a topic with
                # four when a client asks for one it does not have).
                log.warning(
                    "the topic's partition count is not the configured one",
                    topic=self.topic,
                    partitions=partitions,
                    configured=self.partitions,
                )
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=f"{self.client_id}-offsets",
                enable_auto_commit=False,
                request_timeout_ms=int(self.send_timeout * 1000),
            )
            stack.push_async_callback(_close_quietly, offsets)
            await offsets.start()

            self.position = await asyncio.to_thread(self._recorded_position)
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
        sends: list[asyncio.Future[Any]] = []
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            if not isinstance(event, Ticket.Event):
                log.debug("relay skips a non-ticket event", topic=notification.topic)
                continue
            sends.append(
                await producer.send(
                    self.topic,
                    key=str(event.originator_id).encode(),
                    value=encode_cloudevent(to_cloudevent(event, source=self.source)),
                    headers=_HEADERS,
                )
            )
        results = await asyncio.wait_for(
            asyncio.gather(*sends, return_exceptions=True), self.send_timeout * 2
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if await self._offsets_went_back(results):
            return
        last = notifications[-1].id
        await asyncio.to_thread(
            self.tracking.insert_tracking, Tracking(self.app.name, last)
        )
        self.position = last
        log.debug("relay published", events=len(sends), position=last)

    async def _offsets_went_back(self, acks: Sequence[RecordMetadata]) -> bool:
        """Record the acknowledged offsets; start again if one went back."""
        went_back = False
        for ack in acks:
            if ack.offset <= self._acked_offsets.get(ack.partition, -1):
                went_back = True
            self._acked_offsets[ack.partition] = ack.offset
        if went_back:
            await self._start_again("an acknowledged offset went back")
        return went_back

    # -- the broker's memory -------------------------------------------------

    async def _check_topic(
        self, producer: AIOKafkaProducer, offsets: AIOKafkaConsumer
    ) -> bool:
        """Go back to position zero if the topic lost acknowledged records.

        Returns True when it did.
        """
        lost = await self._lost_records(producer, offsets)
        if lost is None:
            return False
        await create_missing_topics(
            self.bootstrap_servers,
            {self.topic: self.partitions},
            timeout=self.send_timeout,
        )
        await self._start_again(lost)
        return True

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
            and await asyncio.to_thread(self._published_before, self.position)
        ):
            return "the topic is empty"
        return None

    async def _start_again(self, reason: str) -> None:
        log.warning(
            "the broker lost published events; republishing the event log "
            "from the start",
            reason=reason,
            topic=self.topic,
            position=self.position,
        )
        await asyncio.to_thread(self._forget_position)
        self.position = 0
        self._acked_offsets.clear()

    # -- PostgreSQL ----------------------------------------------------------

    def _published_before(self, position: int) -> bool:
        """Whether a ticket event (one the relay sends) is at or before ``position``."""
        recorder: Any = self.app.recorder  # a PostgresApplicationRecorder
        statement = sql.SQL(
            "SELECT 1 FROM {}.{} WHERE notification_id <= %s AND topic LIKE %s LIMIT 1"
        ).format(
            sql.Identifier(recorder.datastore.schema),
            sql.Identifier(recorder.events_table_name),
        )
        with self.app.datastore.transaction(commit=False) as cur:
            cur.execute(statement, (position, f"{Ticket.TOPIC.split(':')[0]}:%"))
            return cur.fetchone() is not None

    def _recorded_position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def _forget_position(self) -> None:
        statement = sql.SQL("DELETE FROM {}.{} WHERE application_name = %s").format(
            sql.Identifier(self.tracking.datastore.schema),
            sql.Identifier(self.tracking.tracking_table_name),
        )
        with self.tracking.datastore.transaction(commit=True) as cur:
            cur.execute(statement, (self.app.name,))

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
