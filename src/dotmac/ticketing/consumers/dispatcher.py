"""The dispatcher: sends pending deliveries of the ledger through their channels.

The notifier writes a ``pending`` row per e-mail, SMS and webhook call in
the transaction that consumes the event; this loop sends them. Each pass
claims up to ``batch_size`` due rows with ``FOR UPDATE SKIP LOCKED`` (so
several dispatchers share the work and never send one row twice at once),
sends them concurrently while holding the claim, and in the same
transaction marks each one sent, or schedules its next attempt with
exponential back-off and jitter. If the process dies mid-batch the row locks
go with its connection and the rows are due again at once; what was
accepted by a provider but not yet marked is sent a second time with the
same delivery key (Message-ID, ``Idempotency-Key``, ``X-Ticketing-Delivery``),
which is how the provider or receiver recognises it.

A delivery failing for longer than its channel's give-up time, or refused
outright (an unsafe URL, a rejected address), is marked failed and sent to
the dead-letter topic with the error and the original.

Pending rows are announced with ``NOTIFY notification_deliveries`` by the
notifier; the loop listens, so a delivery leaves within milliseconds of
its event's commit rather than at the next poll.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import psycopg
import structlog
from aiokafka import AIOKafkaProducer
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.channels import (
    Channel,
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
)

log = structlog.get_logger(__name__)

WAKE_CHANNEL = "notification_deliveries"
DISPATCHER_NAME = "ticketing-notifier-dispatcher"
# E-mail and SMS are retried for a day; webhooks for their configured time.
DEFAULT_GIVE_UP_SECONDS = 24 * 3600.0

_CLAIM = """
SELECT d.delivery_key, d.tenant_id, d.event_id, d.event_type, d.channel,
       d.recipient, d.payload, d.attempts, d.created_at,
       extract(epoch FROM now() - d.created_at) AS age_seconds,
       w.secret AS webhook_secret
  FROM notification_deliveries d
  LEFT JOIN webhooks w
    ON d.channel = 'webhook' AND w.id::text = d.payload->>'webhook_id'
 WHERE d.status = 'pending' AND d.next_attempt_at <= now()
 ORDER BY d.next_attempt_at
 LIMIT %s
   FOR UPDATE OF d SKIP LOCKED
"""


class DeadLetters(Protocol):
    async def send(self, key: str, letter: Mapping[str, Any]) -> None:
        """Publish a letter durably (returns once the broker acknowledged)."""


class KafkaDeadLetters:
    """Dead letters as JSON on a Kafka topic, keyed by delivery key."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, key: str, letter: Mapping[str, Any]) -> None:
        await self._producer.send_and_wait(
            self._topic, json.dumps(letter).encode(), key=key.encode()
        )


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off, capped, with jitter (±50 % by default).

    Jitter spreads the retries of many deliveries that failed together
    (a receiver's outage) instead of retrying them all at the same moment.
    """

    base_seconds: float = 2.0
    max_seconds: float = 600.0
    jitter: float = 0.5

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        raw = self.base_seconds * 2 ** max(attempts - 1, 0)
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)
        return min(raw, self.max_seconds) * spread


@dataclass(frozen=True)
class _Outcome:
    delivery: Delivery
    age_seconds: float
    error: DeliveryFailed | None


class Dispatcher:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        channels: Mapping[str, Channel],
        dead_letters: DeadLetters,
        *,
        give_up_seconds: Mapping[str, float] | None = None,
        backoff: Backoff | None = None,
        batch_size: int = 50,
        poll_interval: float = 1.0,
        listen_conninfo: str | None = None,
    ) -> None:
        self._pool = pool
        self._channels = dict(channels)
        self._dead_letters = dead_letters
        self._give_up = dict(give_up_seconds or {})
        self._backoff = backoff or Backoff()
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listen_conninfo = listen_conninfo

    async def run(self, stop: asyncio.Event) -> None:
        """Send due deliveries until ``stop`` is set."""
        listener = await self._listen()
        try:
            while not stop.is_set():
                try:
                    sent = await self.dispatch_due()
                except Exception as error:  # the database away, say: try again
                    log.warning("dispatch pass failed", error=repr(error))
                    sent = 0
                if sent < self._batch_size:
                    if listener is not None and listener.closed:
                        listener = await self._listen()
                    await self._wait(listener, stop)
        finally:
            if listener is not None:
                await listener.close()

    async def dispatch_due(self) -> int:
        """One pass: claim due deliveries, send them, record the outcomes."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_CLAIM, (self._batch_size,))
            rows = await cur.fetchall()
            if not rows:
                return 0
            outcomes = await asyncio.gather(*(self._send(row) for row in rows))
            for outcome in outcomes:
                await self._record(cur, outcome)
        return len(rows)

    async def _send(self, row: Mapping[str, Any]) -> _Outcome:
        delivery = Delivery(
            key=row["delivery_key"],
            tenant_id=row["tenant_id"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            channel=row["channel"],
            recipient=row["recipient"],
            payload=row["payload"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            secret=row["webhook_secret"],
        )
        channel = self._channels.get(delivery.channel)
        error: DeliveryFailed | None = None
        try:
            if channel is None:
                raise DeliveryFailed(f"no {delivery.channel} channel configured")
            await channel.send(delivery)
        except DeliveryFailed as failure:
            error = failure
        except Exception as unexpected:  # a bug in a channel must not stop the loop
            log.exception("channel raised", delivery_key=delivery.key)
            error = DeliveryFailed(repr(unexpected))
        return _Outcome(delivery, float(row["age_seconds"]), error)

    async def _record(self, cur: psycopg.AsyncCursor[Any], outcome: _Outcome) -> None:
        delivery, error = outcome.delivery, outcome.error
        attempts = delivery.attempts + 1
        if error is None:
            await cur.execute(
                "UPDATE notification_deliveries SET status = 'sent',"
                " sent_at = clock_timestamp(), attempts = %s, last_error = NULL"
                " WHERE delivery_key = %s",
                (attempts, delivery.key),
            )
            return
        give_up = self._give_up.get(delivery.channel, DEFAULT_GIVE_UP_SECONDS)
        if isinstance(error, DeliveryRefused) or outcome.age_seconds >= give_up:
            try:
                await self._dead_letter(delivery, attempts, error)
            except Exception as letter_error:
                # Never fail the batch (its sent rows would be sent again):
                # the row stays pending and gives up on a later pass.
                log.warning(
                    "dead letter not published; retrying later",
                    delivery_key=delivery.key,
                    error=repr(letter_error),
                )
            else:
                await cur.execute(
                    "UPDATE notification_deliveries SET status = 'failed',"
                    " attempts = %s, last_error = %s WHERE delivery_key = %s",
                    (attempts, str(error)[:2000], delivery.key),
                )
                return
        delay = self._backoff.delay(attempts)
        # clock_timestamp(), not now(): now() is when this transaction began,
        # before the sends, and would shorten the wait by the batch's time.
        log.info(
            "delivery failed; will retry",
            delivery_key=delivery.key,
            attempts=attempts,
            retry_in=round(delay, 3),
            error=str(error),
        )
        await cur.execute(
            "UPDATE notification_deliveries SET attempts = %s, last_error = %s,"
            " next_attempt_at = clock_timestamp() + %s WHERE delivery_key = %s",
            (attempts, str(error)[:2000], timedelta(seconds=delay), delivery.key),
        )

    async def _dead_letter(
        self, delivery: Delivery, attempts: int, error: DeliveryFailed
    ) -> None:
        log.error(
            "delivery given up",
            delivery_key=delivery.key,
            channel=delivery.channel,
            attempts=attempts,
            error=str(error),
        )
        payload = dict(delivery.payload)
        original = payload.get("body") if delivery.channel == "webhook" else None
        letter = {
            "consumer": DISPATCHER_NAME,
            "delivery_key": delivery.key,
            "tenant_id": delivery.tenant_id,
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "channel": delivery.channel,
            "recipient": delivery.recipient,
            "attempts": attempts,
            "error": str(error)[:2000],
            # The original: the webhook's CloudEvent body as it was sent
            # (base64, like the consumers' letters), or the rendered message.
            "original": base64.b64encode(str(original).encode()).decode()
            if original is not None
            else None,
            "payload": payload if original is None else {"url": payload.get("url")},
        }
        await self._dead_letters.send(delivery.key, letter)

    async def _listen(self) -> psycopg.AsyncConnection[Any] | None:
        if self._listen_conninfo is None:
            return None
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._listen_conninfo, autocommit=True
            )
            await conn.execute(f"LISTEN {WAKE_CHANNEL}")
        except psycopg.Error as error:
            log.warning("cannot LISTEN; polling only", error=repr(error))
            return None
        return conn

    async def _wait(
        self, listener: psycopg.AsyncConnection[Any] | None, stop: asyncio.Event
    ) -> None:
        """Until a NOTIFY, ``stop``, or the poll interval, whichever is first."""
        if listener is None or listener.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_interval)
            return
        try:
            async for _ in listener.notifies(timeout=self._poll_interval, stop_after=1):
                pass
        except psycopg.Error as error:
            log.warning("LISTEN connection lost; polling", error=repr(error))
            await listener.close()
