"""One tenant's failing webhooks do not hold up another tenant's e-mail.

The whole notifier runs as in production (``run_notifier`` on a thread:
the Kafka consumer on the bundled broker, the dispatcher, PostgreSQL), with
an SMTP server (aiosmtpd) and two kinds of broken webhook receivers on
loopback: one that accepts connections and never answers, one that answers
500. Tenant A has 100 webhooks to them and a burst of tickets (1,000
deliveries the dispatcher is already busy with); tenant B
opens one ticket, and its acknowledgment must reach the SMTP server within
5 seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import service_topics
from dotmac.ticketing.entry.processes import start_notifier
from dotmac.ticketing.service.settings import Settings
from tests.notifications.events import TicketStory
from tests.notifications.running import notifier_pool, publish, register_webhook
from tests.notifications.servers import (
    hanging_server,
    http_sink,
    smtp_sink,
    wait_until,
)

NOISY, QUIET = "tenant-noisy", "tenant-quiet"
HOOKS = 100  # half never answer, half answer 500
BURST = 10  # tickets of the noisy tenant: 1,000 webhook deliveries
ACKNOWLEDGED_WITHIN = 5.0


@pytest.fixture(scope="module")
def broker() -> Iterator[DevBroker]:
    with start_dev_broker() as running:
        asyncio.run(ensure_topics(running.bootstrap_servers, service_topics(3)))
        yield running


def pending_webhook_rows(database_url: str, tenant_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notification_deliveries"
            " WHERE tenant_id = %s AND channel = 'webhook'",
            (tenant_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_tenants_failing_webhooks_do_not_delay_another_tenants_email(
    isolated_database_url: str, broker: DevBroker
) -> None:
    db = isolated_database_url
    with (
        hanging_server() as silent,
        http_sink(lambda path, seen: 500) as failing,
        smtp_sink() as smtp,
    ):

        async def register() -> None:
            async with notifier_pool(db) as pool:
                for i in range(HOOKS):
                    # Registered directly: more than a tenant may register
                    # today (they predate the limit, as in the report).
                    url = silent.url(f"/{i}") if i % 2 else failing.url(f"/{i}")
                    await register_webhook(
                        pool, tenant_id=NOISY, url=url, secret=f"secret-{i}"
                    )

        asyncio.run(register())
        settings = Settings(
            database_url=db,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_partitions=3,
            kafka_session_timeout_ms=2000,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            webhook_allow_private=True,
            webhook_timeout_seconds=3,  # a stop waits for the hanging sends
        )
        # E-mail at once, not held for a merging window: its delay is measured.
        worker = start_notifier(
            settings, config={"notifications": {"email_coalesce_seconds": 0}}
        )
        try:
            burst = [
                TicketStory(
                    tenant_id=NOISY,
                    customer_id=f"noisy-{i}",
                    customer_email=f"noisy-{i}@example.test",
                ).created
                for i in range(BURST)
            ]
            asyncio.run(publish(broker.bootstrap_servers, burst))
            wait_until(
                lambda: pending_webhook_rows(db, NOISY) >= BURST * HOOKS,
                timeout=60,
                what="the noisy tenant's backlog",
            )
            wait_until(
                lambda: silent.accepted() > 0 and len(failing.received()) > 0,
                what="the dispatcher to be busy with the noisy tenant's webhooks",
            )

            quiet = TicketStory(tenant_id=QUIET, customer_email="quiet@example.test")
            asyncio.run(publish(broker.bootstrap_servers, [quiet.created]))
            published = time.monotonic()
            wait_until(
                lambda: any(
                    m.rcpt_tos == ("quiet@example.test",) for m in smtp.received()
                ),
                timeout=30,
                what="the quiet tenant's acknowledgment",
            )
            waited = time.monotonic() - published
        finally:
            worker.stop()
    print(f"the quiet tenant's acknowledgment after {waited:.2f} s")
    assert waited <= ACKNOWLEDGED_WITHIN
