"""Notification latency: from a ticket's create to its e-mail accepted by SMTP.

Everything is real and runs in this process, each part on its own thread:
the relay and the notifier (``start_relay`` / ``start_notifier``, the
production code with its defaults) against a development broker, and an
SMTP server (aiosmtpd) on a loopback port that the notifier's e-mail
channel speaks SMTP to.

Tickets are created through ``TicketService.create_ticket`` (the use case
the HTTP route calls, on the service's own connection pool), at a steady
rate, open loop: create ``n`` starts at ``start + n / rate``, or at once
when the creator is behind. Each has a ``customer_email`` of its own, so
its ``TicketCreated`` sends one acknowledgment e-mail. The append time is
when ``create_ticket`` returned (the event committed); the accept time is
when the SMTP server's DATA handler received the message, just before it
answers 250. The e-mail is matched to its ticket by its Message-ID, which
the e-mail channel derives from the delivery key (event id, channel,
recipient); the recipient and the ``[#<number>]`` in the subject are
checked too. Both times come from ``time.perf_counter()`` in this process.

The breakdown splits each latency in three legs on the wall clock (one
machine, one clock: ``time.time()`` here, PostgreSQL's ``now()``, the
producer's record timestamps): append → relay send (the record's
CreateTime, read back from the topic afterwards: the relay woke, read and
encoded the event), relay send → ledger row (the broker, the notifier's
consumer, up to the start of the transaction that writes the e-mail's
ledger row, its ``created_at``), ledger row → accepted (the dispatcher and
the SMTP exchange).

Untimed warm-up creates first, at the same rate, until their e-mails
arrive: the notifier's consumer group must have joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from aiosmtpd.controller import Controller

from dotmac.ticketing.consumers.kafka.broker import DevBroker, ensure_topics, free_port
from dotmac.ticketing.consumers.kafka.cloudevents import cloudevent_id
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS, service_topics
from dotmac.ticketing.consumers.supervision import RunningWorker
from dotmac.ticketing.domain.mail_threading import mail_domain, thread_headers
from dotmac.ticketing.entry.processes import RunningRelay, start_notifier, start_relay
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from tests.bench.harness import (
    BenchError,
    ReadRow,
    client_cpu_probe,
    cpu_used,
    deferred_interrupts,
)

SENDER = "Bench Support <support@bench.example.test>"
WARMUP_SECONDS = 1.0
WARMUP_TIMEOUT = 90.0  # joining the consumer group included
# An e-mail not accepted this long after the last create counts as an error.
DELIVERY_TIMEOUT = 30.0
POLL_INTERVAL = 0.01
PUBLISH_TIMES_TIMEOUT = 20.0


@dataclass(frozen=True)
class Accepted:
    at: float  # time.perf_counter()
    wall: float  # time.time()
    rcpt_tos: tuple[str, ...]
    message_id: str
    subject: str


class _SmtpRecorder:
    """An aiosmtpd handler that keeps every message with its accept time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mails: list[Accepted] = []
        self.ids: set[str] = set()
        self._parser = BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at, wall = time.perf_counter(), time.time()
        headers = self._parser.parsebytes(envelope.content)
        accepted = Accepted(
            at,
            wall,
            tuple(envelope.rcpt_tos),
            str(headers.get("Message-ID", "")),
            str(headers.get("Subject", "")),
        )
        with self.lock:
            self.mails.append(accepted)
            self.ids.add(accepted.message_id)
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.mails)

    def missing(self, wanted: set[str]) -> int:
        with self.lock:
            return len(wanted - self.ids)

    def received(self) -> list[Accepted]:
        with self.lock:
            return list(self.mails)


@dataclass
class _Sent:
    """A created ticket: what its e-mail must look like, and when."""

    n: int
    number: int
    event_id: str  # the CloudEvent's id
    recipient: str
    appended_at: float  # time.perf_counter() when create_ticket returned
    appended_wall: float  # time.time() then


@dataclass
class _Load:
    sent: dict[str, _Sent] = field(default_factory=dict)  # Message-ID: ticket
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotifyRows:
    latency: ReadRow
    breakdown: list[ReadRow]

    @property
    def rows(self) -> list[ReadRow]:
        return [self.latency, *self.breakdown]


def run_notify_latency(
    database_url: str,
    broker: DevBroker,
    *,
    tenant: str,
    rate: float,
    seconds: float,
    partitions: int,
    on_step: Callable[[str], None] = lambda message: None,
) -> NotifyRows:
    recorder = _SmtpRecorder()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=free_port(), ready_timeout=30
    )
    ticketing: Ticketing | None = None
    relay: RunningRelay | None = None
    notifier: RunningWorker | None = None
    try:
        try:
            controller.start()
        except TimeoutError as error:
            raise BenchError(f"the SMTP server did not start: {error}") from error
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_partitions=partitions,
            smtp_host="127.0.0.1",
            smtp_port=controller.port,
            smtp_from=SENDER,
        )
        asyncio.run(ensure_topics(broker.bootstrap_servers, service_topics(partitions)))
        ticketing = initialize_ticketing(settings)
        relay = start_relay(settings)
        notifier = start_notifier(settings, config=_config(tenant))
        ctx = RequestContext(
            tenant_id=tenant, user_id="bench-agent", roles=frozenset({"agent"})
        )
        warmup = max(1, round(rate * WARMUP_SECONDS))
        on_step(
            f"notifications: {warmup} warm-up creates, waiting for their e-mails "
            "(the notifier joins its consumer group)"
        )
        warm = _paced(ticketing, ctx, "warm", warmup, rate)
        _wait(recorder, warm, notifier, WARMUP_TIMEOUT, what="the warm-up e-mails")
        before = recorder.count()
        total = max(1, round(rate * seconds))
        on_step(f"notifications: {total} creates at {rate:g}/s, timed")
        row = ReadRow(
            "append -> e-mail accepted",
            total,
            0.0,
            "e-mails",
            notes=(
                f"TicketService.create_ticket() at {rate:g}/s for {seconds:g} s in "
                "this process, each with its own customer_email; from its return "
                "(event committed) to the SMTP server's DATA (aiosmtpd, loopback); "
                "relay + notifier on threads here; after "
                f"{warmup} untimed creates"
            ),
        )
        with cpu_used(_this_process, row):
            start = time.perf_counter()
            load = _paced(ticketing, ctx, "t", total, rate)
            row.seconds = time.perf_counter() - start
            with contextlib.suppress(BenchError):
                _wait(recorder, load, notifier, DELIVERY_TIMEOUT, what="")
        matched = _check(load, recorder, first=before)
        for description in load.errors:
            row.record_error(description)
        row.latencies_ms = [(a.at - s.appended_at) * 1000 for s, a in matched]
        # Undelivered ones have no latency but count: count = all creates.
        row.count = total
        published = asyncio.run(
            _publish_times(broker.bootstrap_servers, {s.event_id for s, _ in matched})
        )
        breakdown = _breakdown(database_url, matched, published)
        for part in breakdown:
            part.seconds = row.seconds
    finally:
        with deferred_interrupts():
            if notifier is not None:
                notifier.stop()
            if relay is not None:
                relay.stop()
            if ticketing is not None:
                ticketing.close()
            with contextlib.suppress(Exception):  # also when it did not start
                controller.stop(no_assert=True)
    return NotifyRows(row, breakdown)


def _config(tenant: str) -> dict[str, Any]:
    """The tenant's directory: one team, one agent with an address."""
    agents = [{"id": "bench-agent", "email": "agent@bench.example.test"}]
    return {
        # Latency of each acknowledgment: sent at once, not merged.
        "notifications": {"email_coalesce_seconds": 0},
        "tenants": {tenant: {"teams": [{"name": "Support", "agents": agents}]}},
    }


def _paced(
    ticketing: Ticketing, ctx: RequestContext, prefix: str, total: int, rate: float
) -> _Load:
    load = _Load()
    start = time.perf_counter()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        recipient = f"{prefix}-{n}@bench.example.test"
        try:
            result = ticketing.tickets.create_ticket(
                ctx,
                title=f"Benchmark ticket {prefix}-{n}",
                description="Created by the benchmark " * 8,
                customer_id=f"cust-{prefix}-{n}",
                customer_email=recipient,
                tags=["bench"],
            )
        except Exception as error:
            load.errors.append(f"create {n}: {type(error).__name__}: {error}")
            continue
        appended_at, appended_wall = time.perf_counter(), time.time()
        ticket = result.ticket
        # The acknowledgment answers TicketCreated, version 1 (the SLA
        # clocks that start with the ticket come after it).
        event_id = cloudevent_id(ticket.id, 1)
        thread = thread_headers(event_id, recipient, mail_domain(SENDER))
        assert thread is not None
        load.sent[thread.message_id] = _Sent(
            n, ticket.number, event_id, recipient, appended_at, appended_wall
        )
    return load


def _wait(
    recorder: _SmtpRecorder,
    load: _Load,
    notifier: RunningWorker,
    timeout: float,
    *,
    what: str,
) -> None:
    """Until every e-mail of ``load`` is in, or ``timeout`` passes.

    Raises :class:`BenchError` on a timeout when ``what`` names the e-mails.
    """
    deadline = time.monotonic() + timeout
    wanted = set(load.sent)
    while (missing := recorder.missing(wanted)) > 0:
        if not notifier.thread.is_alive():
            raise BenchError("the notifier stopped (its log is on stderr)")
        if time.monotonic() > deadline:
            if what:
                raise BenchError(
                    f"{missing} of {len(wanted)} of {what} not received within "
                    f"{timeout:.0f} s ({recorder.count()} e-mails received in all)"
                )
            return
        time.sleep(POLL_INTERVAL)


def _check(
    load: _Load, recorder: _SmtpRecorder, *, first: int
) -> list[tuple[_Sent, Accepted]]:
    """Match e-mails (from the ``first``-th on) to tickets; errors into ``load``.

    One error per ticket without its e-mail, per wrong or duplicate e-mail.
    """
    matched: dict[str, tuple[_Sent, Accepted]] = {}
    for accepted in recorder.received()[first:]:
        mid = accepted.message_id
        sent = load.sent.get(mid)
        if sent is None:
            load.errors.append(f"an e-mail nobody waited for: {mid}")
            continue
        if (
            accepted.rcpt_tos != (sent.recipient,)
            or f"[#{sent.number}]" not in accepted.subject
        ):
            load.errors.append(
                f"ticket {sent.n}: e-mail to {accepted.rcpt_tos}, "
                f"subject {accepted.subject!r}"
            )
        if mid in matched:
            load.errors.append(f"ticket {sent.n}: e-mail received twice")
            continue
        matched[mid] = (sent, accepted)
    for mid, sent in load.sent.items():
        if mid not in matched:
            load.errors.append(
                f"ticket {sent.n} (#{sent.number}): no e-mail within "
                f"{DELIVERY_TIMEOUT:.0f} s of the last create"
            )
    return list(matched.values())


async def _publish_times(bootstrap_servers: str, wanted: set[str]) -> dict[str, float]:
    """When the relay sent each wanted event: its record's timestamp (epoch s).

    The producer stamps a record (CreateTime, milliseconds) when the relay
    hands it over, before the batch goes to the broker.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id="bench-timestamps",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, float] = {}
    try:
        await consumer.topics()  # fresh metadata
        partitions = consumer.partitions_for_topic(TICKET_EVENTS) or set()
        consumer.assign([TopicPartition(TICKET_EVENTS, p) for p in partitions])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + PUBLISH_TIMES_TIMEOUT
        while len(found) < len(wanted) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        event_id = str(json.loads(record.value)["id"])
                        if event_id in wanted:
                            found[event_id] = record.timestamp / 1000
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 10)
    return found


def _breakdown(
    database_url: str,
    matched: list[tuple[_Sent, Accepted]],
    published: dict[str, float],
) -> list[ReadRow]:
    """The latency in three legs, on the wall clock (one machine, one clock)."""
    to_send, to_ledger, to_smtp = (
        ReadRow(
            name,
            len(matched),
            0.0,
            "e-mails",
            notes=notes,
        )
        for name, notes in (
            (
                "  append -> relay send",
                "the relay: woken by NOTIFY, reads, encodes, hands the record to "
                "its producer (the record's CreateTime, ms)",
            ),
            (
                "  relay send -> ledger row",
                "the broker's acknowledgement, the notifier's fetch, to its "
                "transaction's start (the ledger row's created_at: PostgreSQL's "
                "clock)",
            ),
            (
                "  ledger row -> accepted",
                "the dispatcher (woken by NOTIFY after the consumer's commit) "
                "and the SMTP exchange",
            ),
        )
    )
    legs = [to_send, to_ledger, to_smtp]
    if not matched:
        return legs
    recipients = [sent.recipient for sent, _ in matched]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT recipient, extract(epoch FROM created_at) FROM "
            "notification_deliveries WHERE channel = 'email' AND recipient = ANY(%s)",
            (recipients,),
        ).fetchall()
    created = {str(recipient): float(at) for recipient, at in rows}
    for sent, accepted in matched:
        ledger = created.get(sent.recipient)
        sent_at = published.get(sent.event_id)
        if ledger is None or sent_at is None:
            continue
        to_send.latencies_ms.append((sent_at - sent.appended_wall) * 1000)
        to_ledger.latencies_ms.append((ledger - sent_at) * 1000)
        to_smtp.latencies_ms.append((accepted.wall - ledger) * 1000)
    for leg in legs:
        leg.count = len(leg.latencies_ms)
    return legs


def _this_process() -> dict[str, float]:
    return {
        "this process" if name == "client" else name: value
        for name, value in client_cpu_probe().items()
    }
