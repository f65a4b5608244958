"""The dispatcher: sends pending deliveries of the ledger through their channels.

The notifier writes a ``pending`` row per e-mail, SMS and webhook call in
the transaction that consumes the event; this loop sends them, fairly: the
due rows are grouped in lanes (each webhook one lane, each tenant's e-mail
and each tenant's SMS one lane, see ``delivery_lanes``), sends in flight
are capped per lane, per tenant and channel and in total, and free
capacity goes round-robin to the lanes, the least busy first. Every send
runs on its own, under its channel's time limit, and its outcome is
recorded as soon as it ends: a receiver that hangs holds its own few slots
until its timeout, never a batch, another lane or another tenant.

Claims. A pass picks candidates, then claims them in one transaction: the
rows are re-read ``FOR UPDATE SKIP LOCKED`` (still pending and due) and each
claimed key is held as a session advisory lock of the dispatcher's claim
connection until its outcome is recorded, so several dispatchers share the
work and never send one row twice at once. If the process dies, its
connection and with it every claim goes, and the rows are due again at
once; what a provider accepted but the ledger did not yet record is sent a
second time with the same delivery key (Message-ID, ``Idempotency-Key``,
``X-Ticketing-Delivery``), which is how the provider or receiver
recognises it.

Each webhook has a circuit breaker (``circuit_breaker``,
``webhook_breakers``): after a number of consecutive failures its lane is
paused, its deliveries wait in the ledger, its tenant's admins are told, and
after a cool-down one trial delivery decides whether it is back.

A delivery failing for longer than its channel's give-up time while its
endpoint is in service, or refused outright (an unsafe URL, a rejected
address), is marked failed and sent to the dead-letter topic with the error
and the original. The give-up time of a webhook's delivery counts from its
creation or from the webhook's last resume, whichever is later: deliveries
kept during a pause are not lost to it.

E-mail held for its merging window (``hold_until``, on the service clock)
is due once the window closed; a row merged into another mail
(``merged_into``) is never sent itself, it is marked sent or failed with
that mail (``consumers/notify/mail_digest.py``).

Pending rows are announced with ``NOTIFY notification_deliveries`` by the
notifier; the loop listens, so a delivery leaves within milliseconds of
its event's commit rather than at the next poll.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import psycopg
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.notify import webhook_breakers
from dotmac.ticketing.consumers.notify.channels import (
    Channel,
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
)
from dotmac.ticketing.consumers.notify.circuit_breaker import (
    Admission,
    BreakerPolicy,
    BreakerState,
    admission,
    trial_started,
)
from dotmac.ticketing.consumers.notify.delivery_lanes import (
    Candidate,
    Limits,
    Load,
    Slot,
    choose,
)
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.clock import Clock, system_clock
from dotmac.ticketing.store.notification_ledger import WAKE_CHANNEL
from dotmac.ticketing.store.notify_wait import listen, wake_on

log = structlog.get_logger(__name__)

DISPATCHER_NAME = "ticketing-notifier-dispatcher"
# E-mail and SMS are retried for a day; webhooks for their configured time.
DEFAULT_GIVE_UP_SECONDS = 24 * 3600.0
DELIVERIES = Counter(
    "ticketing_notification_deliveries",
    "Delivery attempts by channel and what became of the delivery: sent,"
    " retried (it failed and waits for its next attempt), dead_lettered (given"
    " up, on the dead-letter topic), failed (refused for good, dead-lettered).",
    ("channel", "outcome"),
)

# A send that takes longer is abandoned and retried, whatever the channel's
# own timeouts say: a slot is never held for good.
DEFAULT_SEND_TIMEOUT = 60.0
# First key of the two-key advisory locks that hold claimed deliveries.
CLAIM_LOCKS = 0x7469636B

# Every lane with pending rows (a loose index scan: one index probe per
# lane, whatever the backlog), and each lane's longest-waiting due rows: as
# many as its slots could take (a webhook's lane has a webhook id at its
# end, an e-mail or SMS lane ends with the separator). Lanes of paused
# webhooks are left out until their trial is due.
_CANDIDATES = """
WITH RECURSIVE lanes (lane) AS (
    (SELECT lane FROM notification_deliveries
      WHERE status = 'pending' ORDER BY lane LIMIT 1)
    UNION ALL
    SELECT (SELECT d.lane FROM notification_deliveries d
             WHERE d.status = 'pending' AND d.lane > lanes.lane
             ORDER BY d.lane LIMIT 1)
      FROM lanes WHERE lanes.lane IS NOT NULL
)
SELECT c.delivery_key, c.lane, c.tenant_id, c.channel, c.next_attempt_at,
       c.webhook_id, w.paused_at, w.retry_at
  FROM lanes
 CROSS JOIN LATERAL (
        SELECT d.delivery_key, d.lane, d.tenant_id, d.channel, d.next_attempt_at,
               d.payload->>'webhook_id' AS webhook_id
          FROM notification_deliveries d
         WHERE d.lane = lanes.lane AND d.status = 'pending'
           AND d.next_attempt_at <= now()
           AND d.merged_into IS NULL
           AND (d.hold_until IS NULL OR d.hold_until <= %(now)s)
         ORDER BY d.next_attempt_at
         LIMIT CASE WHEN right(lanes.lane, 1) = '|'
                    THEN %(per_shared_lane)s ELSE %(per_webhook)s END
       ) c
  LEFT JOIN webhooks w ON c.channel = 'webhook' AND w.id::text = c.webhook_id
 WHERE w.paused_at IS NULL OR w.retry_at <= %(now)s
"""

_CLAIM = """
SELECT d.delivery_key, d.tenant_id, d.event_id, d.event_type, d.channel,
       d.recipient, d.payload, d.attempts, d.created_at,
       extract(epoch FROM now() - greatest(d.created_at, w.resumed_at))
           AS age_seconds,
       w.secret AS webhook_secret
  FROM notification_deliveries d
  LEFT JOIN webhooks w
    ON d.channel = 'webhook' AND w.id::text = d.payload->>'webhook_id'
 WHERE d.delivery_key = ANY(%(keys)s) AND d.status = 'pending'
   AND d.next_attempt_at <= now()
   AND d.merged_into IS NULL
   AND (d.hold_until IS NULL OR d.hold_until <= %(now)s)
   FOR UPDATE OF d SKIP LOCKED
"""
_LOCK = (
    "SELECT key FROM unnest(%s::text[]) AS key"
    " WHERE pg_try_advisory_lock(%s::int, hashtext(key))"
)
_UNLOCK_ALL_OF = (
    "SELECT count(*) FROM unnest(%s::text[]) AS key"
    " WHERE pg_advisory_unlock(%s::int, hashtext(key))"
)


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


# Retries of many deliveries that failed together (a receiver's outage)
# spread over ±50 % instead of coming back at the same moment.
DELIVERY_BACKOFF = Backoff(initial=2.0, maximum=600.0, jitter=0.5)


@dataclass(frozen=True)
class _Outcome:
    delivery: Delivery
    age_seconds: float
    error: DeliveryFailed | None
    webhook_id: str | None


class ClaimSession:
    """The connection whose session holds the claims: an advisory lock per
    delivery in flight.

    Claims are released in batches, one statement at the start of the next
    pass (or at the next poll), not one round trip per delivery: a send
    that ended does not wait for the claim connection. A released key stays
    out of this dispatcher's candidates until its lock is gone (session
    locks stack: taking one twice and releasing once would keep it).
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()  # a claim's statements are not interleaved
        self._released: list[str] = []

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.broken

    def release(self, *keys: str) -> None:
        self._released.extend(keys)

    async def flush(self) -> None:
        """Drop the locks of released claims (under ``lock``)."""
        keys, self._released = self._released, []
        if not keys:
            return
        try:
            await self.conn.execute(_UNLOCK_ALL_OF, (keys, CLAIM_LOCKS))
        except psycopg.Error:
            self._released[:0] = keys  # the next pass tries again
            raise


@dataclass
class _Flight:
    """The sends in flight of one dispatcher loop."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    load: Load = field(default_factory=Load)
    keys: set[str] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, slot: Slot, send: Coroutine[Any, Any, None]) -> None:
        self.load.add(slot[0])
        self.keys.update(c.key for c in slot)
        task = asyncio.create_task(send)
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._finish(slot, done))

    def _finish(self, slot: Slot, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.keys.difference_update(c.key for c in slot)
        self.load.remove(slot[0])
        self.wake.set()  # a slot is free


class Dispatcher:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        channels: Mapping[str, Channel],
        dead_letters: DeadLetters,
        *,
        give_up_seconds: Mapping[str, float] | None = None,
        backoff: Backoff | None = None,
        limits: Limits | None = None,
        breaker: BreakerPolicy | None = None,
        send_timeouts: Mapping[str, float] | None = None,
        clock: Clock = system_clock,
        poll_interval: float = 1.0,
        stop_grace: float = 5.0,
        record_connections: int = 2,
        listen_conninfo: str | None = None,
    ) -> None:
        self._pool = pool
        self._channels = dict(channels)
        # At zero from the start: an alert on increase() sees the first one.
        for channel in self._channels:
            for outcome in ("sent", "retried", "dead_lettered", "failed"):
                DELIVERIES.labels(channel, outcome)
        self._dead_letters = dead_letters
        self._give_up = dict(give_up_seconds or {})
        self._backoff = backoff or DELIVERY_BACKOFF
        self._limits = limits or Limits()
        self._breaker = breaker or BreakerPolicy()
        self._send_timeouts = dict(send_timeouts or {})
        # The breakers' pauses and cool-downs are on the service's clock;
        # retries and give-up times on the database's, like the rows' times.
        self._clock = clock
        self._poll_interval = poll_interval
        self._stop_grace = stop_grace
        # Outcomes are recorded on at most this many of the pool's connections
        # at once: the consumer sharing the pool must always find one.
        self._recording = asyncio.Semaphore(record_connections)
        self._listen_conninfo = listen_conninfo

    async def run(self, stop: asyncio.Event) -> None:
        """Send due deliveries until ``stop`` is set."""
        flight = _Flight()
        helpers = [asyncio.create_task(wake_on(stop, flight.wake))]
        if self._listen_conninfo is not None:
            helpers.append(
                asyncio.create_task(
                    listen(
                        self._listen_conninfo,
                        WAKE_CHANNEL,
                        flight.wake,
                        stop,
                        retry_seconds=self._poll_interval,
                    )
                )
            )
        try:
            async with self._claim_session() as session:
                try:
                    await self._loop(session, flight, stop)
                finally:
                    await self._drain(flight)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _loop(
        self, session: ClaimSession, flight: _Flight, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            flight.wake.clear()
            try:
                started = await self._start_due(session, flight)
            except Exception as error:  # the database away, say: try again
                if session.broken:
                    raise  # its claims are gone: start over on a new session
                log.warning("dispatch pass failed", error=repr(error))
                started = 0
            if not started:
                # Until a NOTIFY, a send ending (a free slot), stop or the poll.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(flight.wake.wait(), self._poll_interval)

    async def dispatch_due(self) -> int:
        """One pass: claim due deliveries, send them, record the outcomes."""
        flight = _Flight()
        async with self._claim_session() as session:
            started = await self._start_due(session, flight)
            await asyncio.gather(*flight.tasks)
        return started

    async def _start_due(self, session: ClaimSession, flight: _Flight) -> int:
        """Claim and start what may be sent now; the number of deliveries."""
        claimed = await self._claim(session, flight)
        for slot, rows in claimed:
            flight.start(slot, self._deliver(session, rows))
        return sum(len(rows) for _, rows in claimed)

    async def _drain(self, flight: _Flight) -> None:
        """Let the sends in flight end (each has a time limit), then cancel:
        a cancelled send stays pending and is sent again, with its key."""
        if not flight.tasks:
            return
        _, late = await asyncio.wait(set(flight.tasks), timeout=self._stop_grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _claim_session(self) -> AsyncIterator[ClaimSession]:
        async with self._pool.connection() as conn:
            await conn.set_autocommit(True)
            try:
                yield ClaimSession(conn)
            finally:
                if not conn.closed:
                    # The connection goes back to the pool: without our claims.
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("SELECT pg_advisory_unlock_all()")
                        await conn.set_autocommit(False)

    # ------------------------------------------------------------------
    # Claiming

    def _candidate(self, row: Mapping[str, Any], now: Any) -> Candidate:
        admitted = Admission.OPEN
        if row["paused_at"] is not None:
            breaker = BreakerState(paused_at=row["paused_at"], retry_at=row["retry_at"])
            admitted = admission(breaker, now)
        return Candidate(
            key=row["delivery_key"],
            lane=row["lane"],
            tenant_id=row["tenant_id"],
            channel=row["channel"],
            due=row["next_attempt_at"],
            admission=admitted,
            webhook_id=row["webhook_id"],
        )

    async def _claim(
        self, session: ClaimSession, flight: _Flight
    ) -> list[tuple[Slot, list[Mapping[str, Any]]]]:
        """Slots to start, each with its claimed rows (in sending order)."""
        if flight.load.total >= self._limits.total:
            return []
        now = self._clock()
        async with session.lock:
            # Before the candidates: a key this session still holds would
            # be claimed a second time (session locks stack).
            await session.flush()
            conn = session.conn
            locked: list[str] = []
            try:
                async with conn.transaction():
                    cur = conn.cursor(row_factory=dict_row)
                    # The planner's estimate for a large backlog makes it
                    # compile the query (JIT): measured with 346,000 pending
                    # rows, 90 of its 120 ms; without, 20 ms.
                    await cur.execute("SET LOCAL jit = off")
                    limits = self._limits
                    await cur.execute(
                        _CANDIDATES,
                        {
                            "per_shared_lane": limits.per_tenant_channel
                            * limits.per_slot,
                            "per_webhook": limits.per_lane * limits.per_slot,
                            "now": now,
                        },
                    )
                    candidates = [
                        self._candidate(row, now)
                        for row in await cur.fetchall()
                        if row["delivery_key"] not in flight.keys
                    ]
                    chosen = choose(candidates, flight.load, self._limits)
                    if not chosen:
                        return []
                    keys = [c.key for slot in chosen for c in slot]
                    await cur.execute(_CLAIM, {"keys": keys, "now": now})
                    rows = {r["delivery_key"]: r for r in await cur.fetchall()}
                    await cur.execute(_LOCK, (list(rows), CLAIM_LOCKS))
                    locked = [r["key"] for r in await cur.fetchall()]
                    claimed: list[tuple[list[Candidate], list[Mapping[str, Any]]]] = []
                    for slot in chosen:
                        # What is gone was sent, or is in flight elsewhere.
                        mine = [c for c in slot if c.key in locked]
                        if not mine:
                            continue
                        if mine[0].admission is Admission.TRIAL and not (
                            await self._start_trial(cur, mine[0], now)
                        ):
                            continue
                        claimed.append((mine, [rows[c.key] for c in mine]))
            except BaseException:
                await _unlock(conn, locked)
                raise
            kept = {c.key for slot, _ in claimed for c in slot}
            await _unlock(conn, [key for key in locked if key not in kept])
        return claimed

    async def _start_trial(
        self, cur: psycopg.AsyncCursor[Any], candidate: Candidate, now: Any
    ) -> bool:
        assert candidate.webhook_id is not None
        retry_at = trial_started(BreakerState(), now, self._breaker).retry_at
        assert retry_at is not None
        started = await webhook_breakers.start_trial(
            cur, candidate.webhook_id, now, retry_at
        )
        if started:
            log.info("webhook trial delivery", webhook_id=candidate.webhook_id)
        return started

    # ------------------------------------------------------------------
    # Sending and recording

    async def _deliver(
        self, session: ClaimSession, rows: list[Mapping[str, Any]]
    ) -> None:
        """Send a slot's deliveries one after the other, each recorded and
        released as it ends. After a failure the rest are released unsent:
        they are tried again on a later pass (with the breaker's verdict)
        instead of being sent into an endpoint that just failed."""
        pending = [row["delivery_key"] for row in rows]
        try:
            for row in rows:
                outcome = await self._send(row)
                try:
                    await self._record_outcome(outcome)
                except Exception as error:
                    # The row stays pending and is sent again (with its key).
                    log.warning(
                        "delivery outcome not recorded",
                        delivery_key=row["delivery_key"],
                        error=repr(error),
                    )
                    return
                finally:
                    pending.remove(row["delivery_key"])
                    session.release(row["delivery_key"])
                if outcome.error is not None:
                    return
        finally:
            session.release(*pending)

    async def _record_outcome(self, outcome: _Outcome) -> None:
        async with (
            self._recording,
            self._pool.connection() as conn,
            conn.transaction(),
        ):
            recorded = await self._record(conn.cursor(row_factory=dict_row), outcome)
        # Counted once committed: what the ledger now says.
        DELIVERIES.labels(outcome.delivery.channel, recorded).inc()

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
        limit = self._send_timeouts.get(delivery.channel, DEFAULT_SEND_TIMEOUT)
        error: DeliveryFailed | None = None
        try:
            if channel is None:
                raise DeliveryFailed(f"no {delivery.channel} channel configured")
            async with asyncio.timeout(limit):
                await channel.send(delivery)
        except DeliveryFailed as failure:
            error = failure
        except TimeoutError:
            error = DeliveryFailed(f"no answer within {limit:g} s")
        except Exception as unexpected:  # a bug in a channel must not stop the loop
            log.exception("channel raised", delivery_key=delivery.key)
            error = DeliveryFailed(repr(unexpected))
        webhook_id = delivery.payload.get("webhook_id")
        return _Outcome(
            delivery,
            float(row["age_seconds"]),
            error,
            str(webhook_id) if delivery.channel == "webhook" and webhook_id else None,
        )

    async def _record(self, cur: psycopg.AsyncCursor[Any], outcome: _Outcome) -> str:
        """Record the attempt; what became of the delivery (``DELIVERIES``)."""
        delivery, error = outcome.delivery, outcome.error
        attempts = delivery.attempts + 1
        webhook_id = outcome.webhook_id
        if error is None:
            await cur.execute(
                "UPDATE notification_deliveries SET status = 'sent',"
                " sent_at = clock_timestamp(), attempts = %s, last_error = NULL"
                " WHERE delivery_key = %s",
                (attempts, delivery.key),
            )
            if delivery.channel == "email":
                await _settle_merged(cur, delivery.key, "sent")
            if webhook_id is not None and await webhook_breakers.record_success(
                cur, webhook_id
            ):
                log.info("webhook back in service", webhook_id=webhook_id)
            return "sent"
        refused = isinstance(error, DeliveryRefused)
        breaker = (
            await webhook_breakers.breaker_of(cur, webhook_id) if webhook_id else None
        )
        # A paused endpoint's deliveries (a trial's, or ones in flight when
        # it paused) wait for it: they are not given up.
        in_service = breaker is None or not breaker.paused
        give_up = self._give_up.get(delivery.channel, DEFAULT_GIVE_UP_SECONDS)
        if refused or (in_service and outcome.age_seconds >= give_up):
            gave_up = await self._give_up_on(cur, delivery, attempts, error)
            recorded = (
                ("failed" if refused else "dead_lettered") if gave_up else "retried"
            )
        else:
            await self._retry_later(cur, delivery, attempts, error)
            recorded = "retried"
        if webhook_id is not None and not refused:
            after = await webhook_breakers.record_failure(
                cur, webhook_id, str(error), self._clock(), self._breaker
            )
            if after is not None and after.paused and in_service:
                log.warning(
                    "webhook paused",
                    webhook_id=webhook_id,
                    failures=after.consecutive_failures,
                    retry_at=after.retry_at,
                    error=str(error),
                )
        return recorded

    async def _give_up_on(
        self,
        cur: psycopg.AsyncCursor[Any],
        delivery: Delivery,
        attempts: int,
        error: DeliveryFailed,
    ) -> bool:
        """Dead-letter the delivery and mark it failed; False if the dead
        letter could not be published (then it is retried later)."""
        try:
            await self._dead_letter(delivery, attempts, error)
        except Exception as letter_error:
            # Never lose it: the row stays pending and gives up on a later pass.
            log.warning(
                "dead letter not published; retrying later",
                delivery_key=delivery.key,
                error=repr(letter_error),
            )
            await self._retry_later(cur, delivery, attempts, error)
            return False
        await cur.execute(
            "UPDATE notification_deliveries SET status = 'failed',"
            " attempts = %s, last_error = %s WHERE delivery_key = %s",
            (attempts, str(error)[:2000], delivery.key),
        )
        if delivery.channel == "email":
            await _settle_merged(cur, delivery.key, "failed", str(error)[:2000])
        return True

    async def _retry_later(
        self,
        cur: psycopg.AsyncCursor[Any],
        delivery: Delivery,
        attempts: int,
        error: DeliveryFailed,
    ) -> None:
        delay = self._backoff.delay(attempts)
        log.info(
            "delivery failed; will retry",
            delivery_key=delivery.key,
            attempts=attempts,
            retry_in=round(delay, 3),
            error=str(error),
        )
        # clock_timestamp(), not now(): now() is when this transaction began.
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


async def _settle_merged(
    cur: psycopg.AsyncCursor[Any], key: str, status: str, error: str | None = None
) -> None:
    """The rows merged into the mail ``key`` share its outcome."""
    await cur.execute(
        "UPDATE notification_deliveries SET status = %s, last_error = %s,"
        " sent_at = CASE WHEN %s = 'sent' THEN clock_timestamp() END"
        " WHERE merged_into = %s AND status = 'pending'",
        (status, error, status, key),
    )


async def _unlock(conn: psycopg.AsyncConnection[Any], keys: list[str]) -> None:
    """Release claims taken in a pass but not kept (under the session lock)."""
    if keys:
        with contextlib.suppress(psycopg.Error):  # gone with the session, then
            await conn.execute(_UNLOCK_ALL_OF, (keys, CLAIM_LOCKS))
