"""Merging a person's e-mail about a ticket, in the ledger and the dispatcher.

The notifier and the dispatcher against PostgreSQL, aiosmtpd and the
development broker (dead letters); the window is on an injected clock,
the events carry their own times. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    free_port,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import NOTIFICATIONS_DLQ, service_topics
from dotmac.ticketing.consumers.notify.channels.email import EmailChannel, SmtpConfig
from dotmac.ticketing.consumers.notify.dispatcher import (
    CLAIM_LOCKS,
    Dispatcher,
    KafkaDeadLetters,
)
from dotmac.ticketing.consumers.notify.notifier import Notifier
from dotmac.ticketing.consumers.notify.rendering import NotificationTemplates
from dotmac.ticketing.consumers.notify.rules import ConfigTenantDirectory
from tests.notifications.events import TicketStory
from tests.notifications.running import deliveries, handle, notifier_pool, read_topic
from tests.notifications.servers import smtp_sink

T0 = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
CUSTOMER = "cust-1@example.test"
DIRECTORY = ConfigTenantDirectory(
    {"tenants": {"acme": {"notifications": {"email_coalesce_seconds": 30}}}}
)


class NoDeadLetters:
    async def send(self, key: str, letter: Any) -> None:
        raise AssertionError(f"unexpected dead letter {key}: {letter}")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def broker() -> Iterator[DevBroker]:
    with start_dev_broker() as running:
        asyncio.run(ensure_topics(running.bootstrap_servers, service_topics(1)))
        yield running


def at(event: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The event as if it happened ``seconds`` after T0 (service clock)."""
    event["time"] = (T0 + timedelta(seconds=seconds)).isoformat()
    return event


def notifier() -> Notifier:
    return Notifier(
        directory=DIRECTORY,
        templates=NotificationTemplates(),
        public_url="https://help.acme.test",
    )


async def customer_rows(pool: Any, story: TicketStory) -> list[dict[str, Any]]:
    rows = await deliveries(
        pool,
        "ticket_id = %s AND channel = 'email' AND recipient = %s",
        (story.ticket_id, CUSTOMER),
    )
    return sorted(rows, key=lambda r: r["event_id"].rsplit(":", 1)[1].zfill(4))


def test_updates_within_the_window_are_one_mail_later_ones_the_next(
    isolated_database_url: str,
) -> None:
    story = TicketStory(customer_email=CUSTOMER)
    created = at(story.created, 0)
    reply = at(story.commented("Try again"), 10)
    resolved = at(story.resolved("Fixed it"), 29)
    reopened_reply = at(story.commented("One more thing"), 31)
    clock = Clock(T0)

    async def scenario(port: int) -> list[list[dict[str, Any]]]:
        async with notifier_pool(isolated_database_url) as pool:
            the_notifier = notifier()
            for event in (created, reply, resolved, reopened_reply):
                await handle(pool, the_notifier, event)
            # Handled twice (a replay): the ledger holds, nothing joins twice.
            await handle(pool, the_notifier, reply)
            dispatcher = Dispatcher(
                pool,
                {"email": EmailChannel(SmtpConfig(host="127.0.0.1", port=port))},
                NoDeadLetters(),
                clock=clock,
            )
            seen = [await customer_rows(pool, story)]
            clock.now = T0 + timedelta(seconds=29, microseconds=999_999)
            assert await dispatcher.dispatch_due() == 0  # the window is open
            clock.now = T0 + timedelta(seconds=30)
            assert await dispatcher.dispatch_due() == 1
            seen.append(await customer_rows(pool, story))
            clock.now = T0 + timedelta(seconds=61)
            assert await dispatcher.dispatch_due() == 1
            seen.append(await customer_rows(pool, story))
            return seen

    with smtp_sink() as sink:
        held, first_sent, all_sent = asyncio.run(scenario(sink.port))
        first, second = sink.wait_for(2)

    # Held: the first row of each window, the others merged into it.
    assert [(r["status"], r["merged_into"] is None) for r in held] == [
        ("pending", True),
        ("pending", False),
        ("pending", False),
        ("pending", True),
    ]
    assert held[0]["hold_until"] == T0 + timedelta(seconds=30)
    assert held[3]["hold_until"] == T0 + timedelta(seconds=61)
    assert {held[1]["merged_into"], held[2]["merged_into"]} == {held[0]["delivery_key"]}
    assert [len(r["payload"].get("updates", [])) for r in held] == [3, 0, 0, 1]
    assert [r["status"] for r in first_sent] == ["sent", "sent", "sent", "pending"]
    assert [r["status"] for r in all_sent] == ["sent"] * 4

    assert first.subject == "[#7] We received your request: Printer on fire"
    text = first.part("plain")
    assert "There are 3 updates on your request #7" in text
    assert text.index("We received") < text.index("Try again") < text.index("Fixed")
    # The first update is the ticket's first event: the thread's root.
    assert first.message_id == f"<ticket-{story.ticket_id}@localhost>"
    assert second.message["In-Reply-To"] == first.message_id
    assert second.subject == "[#7] New reply: Printer on fire"
    assert "One more thing" in second.part("plain")
    assert "updates" not in second.part("plain")  # a mail of one update


def test_a_mail_being_sent_is_never_changed_the_update_waits_for_the_next(
    isolated_database_url: str,
) -> None:
    story = TicketStory(customer_email=CUSTOMER)

    async def scenario() -> list[dict[str, Any]]:
        async with notifier_pool(isolated_database_url) as pool:
            the_notifier = notifier()
            await handle(pool, the_notifier, at(story.created, 0))
            (held,) = await customer_rows(pool, story)
            # A dispatcher's claim on the held mail (what sending holds).
            async with await psycopg.AsyncConnection.connect(
                isolated_database_url, autocommit=True
            ) as claim:
                await claim.execute(
                    "SELECT pg_advisory_lock(%s::int, hashtext(%s))",
                    (CLAIM_LOCKS, held["delivery_key"]),
                )
                await handle(pool, the_notifier, at(story.commented("Hello"), 5))
            return await customer_rows(pool, story)

    first, second = asyncio.run(scenario())
    assert first["merged_into"] is None and second["merged_into"] is None
    assert second["hold_until"] == T0 + timedelta(seconds=35)
    assert len(first["payload"]["updates"]) == 1


def test_merged_rows_share_the_fate_of_a_mail_given_up(
    isolated_database_url: str, broker: DevBroker
) -> None:
    story = TicketStory(customer_email=CUSTOMER)

    async def scenario() -> list[dict[str, Any]]:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, acks="all"
        )
        await producer.start()
        try:
            async with notifier_pool(isolated_database_url) as pool:
                the_notifier = notifier()
                await handle(pool, the_notifier, at(story.created, 0))
                await handle(pool, the_notifier, at(story.commented("Hello"), 5))
                nobody = free_port()  # no SMTP server: every attempt fails
                dispatcher = Dispatcher(
                    pool,
                    {"email": EmailChannel(SmtpConfig("127.0.0.1", nobody, timeout=2))},
                    KafkaDeadLetters(producer, NOTIFICATIONS_DLQ),
                    give_up_seconds={"email": 0},
                    clock=Clock(T0 + timedelta(seconds=30)),
                )
                assert await dispatcher.dispatch_due() == 1
                return await customer_rows(pool, story)
        finally:
            await producer.stop()

    rows = asyncio.run(scenario())
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert rows[1]["merged_into"] == rows[0]["delivery_key"]
    assert rows[1]["last_error"]
    letters = [
        letter
        for letter in asyncio.run(read_topic(broker.bootstrap_servers))
        if letter.get("delivery_key") in {r["delivery_key"] for r in rows}
    ]
    assert [letter["delivery_key"] for letter in letters] == [rows[0]["delivery_key"]]
    assert len(letters[0]["payload"]["updates"]) == 2
