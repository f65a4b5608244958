"""The notifier's channels and dispatcher against real servers.

A real SMTP server (aiosmtpd), a real HTTP server for the SMS provider and
the webhook receivers, PostgreSQL for the ledger and the development Kafka
broker for the dead letters. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import NOTIFICATIONS_DLQ, service_topics
from dotmac.ticketing.consumers.notify.channels import (
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
)
from dotmac.ticketing.consumers.notify.channels.email import (
    EmailChannel,
    SmtpConfig,
    message_id,
)
from dotmac.ticketing.consumers.notify.channels.sms import SmsChannel
from dotmac.ticketing.consumers.notify.channels.webhook import (
    WebhookChannel,
    verify_signature,
)
from dotmac.ticketing.consumers.notify.dispatcher import (
    Dispatcher,
    KafkaDeadLetters,
)
from dotmac.ticketing.consumers.notify.notifier import Notifier
from dotmac.ticketing.consumers.notify.rendering import NotificationTemplates
from dotmac.ticketing.consumers.notify.rules import ConfigTenantDirectory
from dotmac.ticketing.entry.processes import webhook_channel
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.url_safety import (
    literal_address,
    non_public_reason,
)
from tests.conftest import fresh_database
from tests.notifications.events import TicketStory, customer_actor
from tests.notifications.running import (
    deliveries,
    dispatching,
    handle,
    notifier_pool,
    read_topic,
    register_webhook,
    wait_for,
)
from tests.notifications.servers import HttpSink, hanging_server, http_sink, smtp_sink

SECRET = "webhook-secret-1"
DIRECTORY = ConfigTenantDirectory(
    {
        "tenants": {
            "acme": {
                # Each mail at once: merging has tests of its own
                # (tests/integration/test_email_conversations.py).
                "notifications": {"email_coalesce_seconds": 0},
                "teams": [
                    {
                        "name": "Support",
                        "agents": [
                            {"id": "agent-1", "email": "a1@acme.test", "phone": "+1555"}
                        ],
                    }
                ],
            }
        }
    }
)


@pytest.fixture(scope="module")
def broker() -> Iterator[DevBroker]:
    with start_dev_broker() as running:
        asyncio.run(ensure_topics(running.bootstrap_servers, service_topics(1)))
        yield running


@pytest.fixture(scope="module")
def db(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


def a_delivery(channel: str, recipient: str, **payload: Any) -> Delivery:
    return Delivery(
        key=f"t-1:3|{channel}|{recipient}",
        tenant_id="acme",
        event_id="t-1:3",
        event_type="ticketing.ticket.comment_added.v1",
        channel=channel,
        recipient=recipient,
        payload=payload,
        secret=payload.pop("secret", None),
    )


def notifier() -> Notifier:
    return Notifier(
        directory=DIRECTORY,
        templates=NotificationTemplates(),
        public_url="https://help.acme.test",
    )


# ----------------------------------------------------------------------
# Channels


def test_email_goes_out_multipart_with_a_message_id_from_the_delivery() -> None:
    delivery = a_delivery(
        "email",
        "cust@example.test",
        subject="[#7] New reply: Printer",
        text="Try again & tell me\n",
        html="<p>Try again &amp; tell me</p>\n",
    )
    with smtp_sink() as sink:
        channel = EmailChannel(
            SmtpConfig(host="127.0.0.1", port=sink.port, sender="Help <help@acme.test>")
        )
        asyncio.run(channel.send(delivery))
        asyncio.run(channel.send(delivery))  # a re-send after a crash
        first, again = sink.wait_for(2)
    assert first.rcpt_tos == ("cust@example.test",)
    assert first.mail_from == "help@acme.test"
    assert first.subject == "[#7] New reply: Printer"
    assert first.part("plain") == "Try again & tell me\n"
    assert first.part("html") == "<p>Try again &amp; tell me</p>\n"
    assert first.message["X-Ticketing-Delivery"] == delivery.key
    # The same delivery always carries the same Message-ID: the re-send is
    # recognisable as the same message.
    assert first.message_id == again.message_id
    assert first.message_id == message_id(delivery.key, "Help <help@acme.test>")
    assert first.message_id.endswith("@acme.test>")


def test_email_carries_non_ascii_text_intact() -> None:
    delivery = a_delivery(
        "email",
        "zoë@example.test",
        subject="[#8] Réponse: Drucker brennt — 🔥",
        text="Grüße aus Köln\n",
        html="",
    )
    with smtp_sink() as sink:
        sender = "Équipe Support <help@acme.test>"
        asyncio.run(
            EmailChannel(SmtpConfig("127.0.0.1", sink.port, sender)).send(delivery)
        )
        (mail,) = sink.wait_for(1)
    assert mail.subject == "[#8] Réponse: Drucker brennt — 🔥"
    assert mail.part("plain") == "Grüße aus Köln\n"
    assert str(mail.message["From"]) == sender
    assert mail.rcpt_tos == ("zoë@example.test",)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_authenticates_when_configured() -> None:
    delivery = a_delivery("email", "c@example.test", subject="s", text="t", html="")
    with smtp_sink(credentials=("mailer", "pw-1")) as sink:
        good = EmailChannel(
            SmtpConfig(host="127.0.0.1", port=sink.port, user="mailer", password="pw-1")
        )
        asyncio.run(good.send(delivery))
        assert len(sink.wait_for(1)) == 1
        bad = EmailChannel(
            SmtpConfig(host="127.0.0.1", port=sink.port, user="mailer", password="no")
        )
        with pytest.raises(DeliveryFailed):
            asyncio.run(bad.send(delivery))
        assert len(sink.received()) == 1


def test_email_without_a_server_is_logged_and_counts_as_sent() -> None:
    delivery = a_delivery("email", "c@example.test", subject="s", text="t", html="")
    asyncio.run(EmailChannel(None).send(delivery))


def test_an_unreachable_smtp_server_is_a_retryable_failure() -> None:
    from dotmac.ticketing.consumers.kafka.broker import free_port

    delivery = a_delivery("email", "c@example.test", subject="s", text="t", html="")
    channel = EmailChannel(SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2))
    with pytest.raises(DeliveryFailed) as raised:
        asyncio.run(channel.send(delivery))
    assert not isinstance(raised.value, DeliveryRefused)


def test_sms_is_a_form_post_with_basic_auth_and_an_idempotency_key() -> None:
    statuses = {"/sms": [201], "/sms-bad": [400], "/sms-busy": [503]}

    def respond(path: str, seen: int) -> int:
        return statuses[path][0]

    delivery = a_delivery("sms", "+15550001", body="Ticket #7 assigned to you")

    async def send_all(sink: HttpSink) -> None:
        ok = SmsChannel(sink.url("/sms"), user="AC1", password="tok", sender="+1999")
        await ok.send(delivery)
        with pytest.raises(DeliveryRefused):
            await SmsChannel(sink.url("/sms-bad"), user="AC1").send(delivery)
        with pytest.raises(DeliveryFailed) as busy:
            await SmsChannel(sink.url("/sms-busy"), user="AC1").send(delivery)
        assert not isinstance(busy.value, DeliveryRefused)
        await ok.aclose()

    with http_sink(respond) as sink:
        asyncio.run(send_all(sink))
        (request,) = sink.received("/sms")
    assert parse_qs(request.body.decode()) == {
        "To": ["+15550001"],
        "From": ["+1999"],
        "Body": ["Ticket #7 assigned to you"],
    }
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert (
        request.header("Authorization")
        == "Basic " + base64.b64encode(b"AC1:tok").decode()
    )
    assert request.header("Idempotency-Key") == delivery.key


def test_webhooks_are_signed_cloudevents() -> None:
    body = json.dumps({"specversion": "1.0", "id": "t-1:3", "type": "x"})
    with http_sink() as sink:
        delivery = a_delivery(
            "webhook", "w-1", url=sink.url("/hook"), body=body, secret=SECRET
        )
        channel = WebhookChannel(allow_private=True)
        asyncio.run(channel.send(delivery))
        (request,) = sink.received("/hook")
    assert request.body == body.encode()
    assert request.header("Content-Type") == "application/cloudevents+json"
    assert request.header("X-Ticketing-Delivery") == delivery.key
    signature = request.header("X-Ticketing-Signature") or ""
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, request.body, signature)
    assert not verify_signature("another secret", request.body, signature)
    assert request.header("Host") == f"127.0.0.1:{sink.port}"


def test_webhooks_to_private_addresses_are_refused_at_send_time() -> None:
    host = socket.gethostname()  # a name, not a literal: caught after DNS
    resolved = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)[0][4][0]

    async def attempt(url: str) -> str:
        channel = WebhookChannel(allow_private=False)
        delivery = a_delivery("webhook", "w-1", url=url, body="{}", secret=SECRET)
        try:
            with pytest.raises(DeliveryRefused) as refused:
                await channel.send(delivery)
        finally:
            await channel.aclose()
        return str(refused.value)

    with http_sink() as sink:
        assert "loopback" in asyncio.run(attempt(sink.url("/hook")))
        assert "loopback name" in asyncio.run(
            attempt(f"http://localhost:{sink.port}/hook")
        )
        if literal_address(resolved) and non_public_reason(literal_address(resolved)):
            reason = asyncio.run(attempt(f"http://{host}:{sink.port}/hook"))
            assert f"{host} ({resolved})" in reason
        assert sink.received() == []


# ----------------------------------------------------------------------
# The dispatcher and the ledger


def test_one_event_handled_twice_sends_one_email(isolated_database_url: str) -> None:
    # Dispatcher tests get a database each: a dispatcher sends every due row.
    db = isolated_database_url
    story = TicketStory(tenant_id="acme")

    async def scenario(port: int) -> list[dict[str, Any]]:
        async with notifier_pool(db) as pool:
            the_notifier = notifier()
            await handle(pool, the_notifier, story.created)
            await handle(pool, the_notifier, story.created)  # replayed
            dispatcher = Dispatcher(
                pool,
                {"email": EmailChannel(SmtpConfig(host="127.0.0.1", port=port))},
                _no_dead_letters(),
            )
            assert await dispatcher.dispatch_due() == 1
            assert await dispatcher.dispatch_due() == 0
            await handle(pool, the_notifier, story.created)  # and once more
            assert await dispatcher.dispatch_due() == 0
            return await deliveries(pool, "ticket_id = %s", (story.ticket_id,))

    with smtp_sink() as sink:
        rows = asyncio.run(scenario(sink.port))
        (mail,) = sink.wait_for(1)
    assert [(r["channel"], r["status"], r["attempts"]) for r in rows] == [
        ("email", "sent", 1),
        ("in_app", "sent", 0),
    ]
    assert mail.rcpt_tos == ("cust-1@example.test",)
    assert "We received your request" in mail.part("plain")


def test_the_notifier_follows_the_ticket_and_writes_in_app_rows(db: str) -> None:
    story = TicketStory(tenant_id="acme")
    assigned = story.assigned("agent-1", "Support")
    question = story.commented("Still on fire", actor=customer_actor())

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], list]:
        async with notifier_pool(db) as pool:
            the_notifier = notifier()
            for event in (story.created, assigned, question):
                await handle(pool, the_notifier, event)
            # A stale event (published again after later ones) changes nothing.
            await handle(pool, the_notifier, dict(assigned, id="replayed:1"))
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT user_id, event_type, title, body FROM inapp_notifications"
                    " WHERE ticket_id = %s ORDER BY event_id",
                    (story.ticket_id,),
                )
                inapp = list(await cur.fetchall())
                cur = await conn.execute(
                    "SELECT * FROM notifier_tickets WHERE ticket_id = %s",
                    (story.ticket_id,),
                )
                ticket = await cur.fetchone()
            return (
                inapp,
                ticket,
                await deliveries(
                    pool, "ticket_id = %s AND status = 'pending'", (story.ticket_id,)
                ),
            )

    inapp, ticket, pending = asyncio.run(scenario())
    assert ticket["assignee_id"] == "agent-1"
    assert ticket["status"] == "open"
    assert ticket["version"] == 3
    # created → the customer; assigned by agent-1 to agent-1 → nobody;
    # the customer's comment → the assignee.
    assert [(r["user_id"], r["event_type"]) for r in inapp] == [
        ("cust-1", "ticketing.ticket.ticket_created.v1"),
        ("agent-1", "ticketing.ticket.comment_added.v1"),
    ]
    assert "Still on fire" in inapp[1]["body"]
    assert sorted((r["channel"], r["recipient"]) for r in pending) == [
        ("email", "a1@acme.test"),
        ("email", "cust-1@example.test"),
        ("sms", "+1555"),
    ]


def test_failing_webhooks_are_retried_with_growing_delays(
    isolated_database_url: str,
) -> None:
    db = isolated_database_url
    story = TicketStory(tenant_id="tenant-retry")

    def flaky(path: str, seen: int) -> int:
        return 500 if seen < 3 else 204

    async def scenario(sink: HttpSink) -> dict[str, Any]:
        async with notifier_pool(db) as pool:
            await register_webhook(
                pool, tenant_id=story.tenant_id, url=sink.url("/flaky"), secret=SECRET
            )
            await handle(pool, notifier(), story.created)
            dispatcher = Dispatcher(
                pool,
                {"webhook": WebhookChannel(allow_private=True)},
                _no_dead_letters(),
                backoff=Backoff(initial=0.2, maximum=600.0, jitter=0),
                poll_interval=0.02,
            )
            async with dispatching(dispatcher):
                rows = await wait_for(
                    lambda: deliveries(
                        pool,
                        "ticket_id = %s AND channel = 'webhook' AND status = 'sent'",
                        (story.ticket_id,),
                    ),
                    what="the webhook delivery to succeed",
                )
            return rows[0]

    with http_sink(flaky) as sink:
        row = asyncio.run(scenario(sink))
        requests = sink.received("/flaky")
    assert [r.status for r in requests] == [500, 500, 500, 204]
    assert row["attempts"] == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    # Back-off 0.2 s, 0.4 s, 0.8 s: each wait at least its delay, and longer
    # than the one before.
    for gap, delay in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= delay * 0.95
    assert gaps[0] < gaps[1] < gaps[2]
    # Every attempt is the same signed delivery.
    assert {r.header("X-Ticketing-Delivery") for r in requests} == {row["delivery_key"]}
    assert len({r.body for r in requests}) == 1
    assert all(
        verify_signature(SECRET, r.body, r.header("X-Ticketing-Signature") or "")
        for r in requests
    )
    assert json.loads(requests[0].body)["id"] == story.created["id"]


def test_webhooks_failing_past_the_give_up_time_go_to_the_dead_letters(
    isolated_database_url: str, broker: DevBroker
) -> None:
    db = isolated_database_url
    story = TicketStory(tenant_id="tenant-give-up", customer_email=None)
    blocked = TicketStory(tenant_id="tenant-private", customer_email=None)

    async def scenario(sink: HttpSink) -> tuple[list, list, list[dict[str, Any]]]:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, acks="all"
        )
        await producer.start()
        dead_letters = KafkaDeadLetters(producer, NOTIFICATIONS_DLQ)
        try:
            async with notifier_pool(db) as pool:
                # Production settings refuse the loopback address at once.
                await register_webhook(
                    pool,
                    tenant_id=blocked.tenant_id,
                    url=sink.url("/private"),
                    secret=SECRET,
                )
                await handle(pool, notifier(), blocked.created)
                refusing = Dispatcher(
                    pool,
                    {"webhook": WebhookChannel(allow_private=False)},
                    dead_letters,
                )
                assert await refusing.dispatch_due() == 1
                private = await deliveries(pool, "channel = 'webhook'")
                # A receiver that keeps answering 500 is given up after 1 s.
                await register_webhook(
                    pool,
                    tenant_id=story.tenant_id,
                    url=sink.url("/down"),
                    secret=SECRET,
                )
                await handle(pool, notifier(), story.created)
                allowing = Dispatcher(
                    pool,
                    {"webhook": WebhookChannel(allow_private=True)},
                    dead_letters,
                    give_up_seconds={"webhook": 1.0},
                    backoff=Backoff(initial=0.1, maximum=600.0, jitter=0),
                    poll_interval=0.02,
                )
                async with dispatching(allowing):
                    failed = await wait_for(
                        lambda: deliveries(
                            pool,
                            "tenant_id = %s AND channel = 'webhook'"
                            " AND status = 'failed'",
                            (story.tenant_id,),
                        ),
                        what="the webhook delivery to be given up",
                    )
        finally:
            await producer.stop()
        return private, failed, await read_topic(broker.bootstrap_servers)

    with http_sink(lambda path, seen: 500) as sink:
        private, failed, letters = asyncio.run(scenario(sink))
        down_attempts = sink.received("/down")
        assert sink.received("/private") == []
    assert [(r["status"], r["attempts"]) for r in private] == [("failed", 1)]
    assert "loopback" in private[0]["last_error"]
    (row,) = failed
    assert row["attempts"] == len(down_attempts) >= 3
    assert "500" in row["last_error"]
    by_key = {letter["delivery_key"]: letter for letter in letters}
    letter = by_key[row["delivery_key"]]
    assert letter["channel"] == "webhook"
    assert "webhook answered 500" in letter["error"]
    assert letter["attempts"] == row["attempts"]
    original = json.loads(base64.b64decode(letter["original"]))
    assert original == story.created
    assert "loopback" in by_key[private[0]["delivery_key"]]["error"]


class _no_dead_letters:
    """For tests where nothing may be given up."""

    async def send(self, key: str, letter: Any) -> None:
        raise AssertionError(f"unexpected dead letter {key}: {letter}")


def test_a_webhook_that_does_not_answer_fails_at_the_configured_timeout() -> None:
    settings = Settings(webhook_timeout_seconds=0.5, webhook_allow_private=True)

    async def attempt(url: str) -> tuple[DeliveryFailed, float]:
        channel = webhook_channel(settings)
        delivery = a_delivery("webhook", "w-1", url=url, body="{}", secret=SECRET)
        began = asyncio.get_running_loop().time()
        try:
            with pytest.raises(DeliveryFailed) as failed:
                await channel.send(delivery)
        finally:
            await channel.aclose()
        return failed.value, asyncio.get_running_loop().time() - began

    with hanging_server() as silent:
        error, took = asyncio.run(attempt(silent.url("/hook")))
        assert silent.accepted() == 1
    assert not isinstance(error, DeliveryRefused)  # retried later
    assert "ReadTimeout" in str(error)
    assert 0.4 <= took < 3
