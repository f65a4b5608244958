"""Kafka over TLS, with the service's own security settings.

The bundled broker has no TLS listener, so a TLS-terminating proxy
(tests/tls_proxy.py) with a certificate of a private CA made here stands in
front of it, and the broker advertises the proxy's address: every client
connection, bootstrap or not, goes through TLS. The settings are the
deployment's (``TICKETING_KAFKA_SECURITY_PROTOCOL=SSL``,
``TICKETING_KAFKA_SSL_CAFILE``); events go from the event store through
the relay's producer to a consumer of the service, and a CA that did not
sign the broker's certificate is refused with a message that says so.
SASL is not tested: the broker has no SASL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from psycopg import AsyncCursor

from dotmac.ticketing.consumers.kafka.broker import (
    free_port,
    prepare_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.consumer_loop import (
    Record,
    ticket_events_consumer,
    worker_pool,
)
from dotmac.ticketing.consumers.kafka.security import PLAINTEXT, KafkaTlsFailure
from dotmac.ticketing.consumers.kafka.topics import service_topics
from dotmac.ticketing.entry.processes import kafka_config, kafka_security, start_relay
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from tests.conftest import fresh_database
from tests.tls_proxy import Authority, TlsProxy, private_authority, tls_proxy

TENANT = "tenant-tls"
AGENT = RequestContext(tenant_id=TENANT, user_id="agent-1", roles=frozenset({"agent"}))
PARTITIONS = 6


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return private_authority(tmp_path_factory.mktemp("kafka-ca"))


@pytest.fixture(scope="module")
def tls_broker(
    authority: Authority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsProxy]:
    """The bundled broker, reachable (and advertised) only through TLS."""
    proxy_port, broker_port = free_port(), free_port()
    log_path = tmp_path_factory.mktemp("kafka-tls") / "broker.log"
    with (
        tls_proxy(authority, broker_port, proxy_port) as proxy,
        start_dev_broker(broker_port, log_path=log_path, advertised_port=proxy_port),
    ):
        yield proxy


def tls_settings(database_url: str, proxy: TlsProxy, ca_file: Path) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=proxy.address,
        kafka_partitions=PARTITIONS,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=ca_file,
        kafka_session_timeout_ms=2000,
        kafka_fetch_max_wait_ms=20,
        db_pool_size=4,
    )


class Seen:
    """A handler that keeps the CloudEvent of every record it is given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def handle(self, record: Record, cur: AsyncCursor[Any]) -> None:
        self.events.append(record.event)


async def consume_until_seen(
    settings: Settings, subject: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Run a service consumer (its own group) until it has an event of
    ``subject``; the events of that subject it saw."""
    assert settings.database_url is not None
    pool = worker_pool(settings.database_url, "tls-test", max_size=2)
    await pool.open()
    seen = Seen()
    consumer = ticket_events_consumer(
        kafka_config(settings, "the test"), name="tls-test", pool=pool, handler=seen
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not any(e.get("subject") == subject for e in seen.events):
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await pool.close()
    return [e for e in seen.events if e.get("subject") == subject]


def test_events_go_from_the_relay_to_a_consumer_over_tls(
    postgres_server_url: str, tls_broker: TlsProxy, authority: Authority
) -> None:
    with fresh_database(postgres_server_url) as database_url:
        settings = tls_settings(database_url, tls_broker, authority.ca_file)
        core = initialize_ticketing(settings)
        relay = start_relay(settings, idle_wait=0.2)
        try:
            created = core.tickets.create_ticket(
                AGENT, title="Printer on fire", customer_id="c-1"
            )
            events = asyncio.run(consume_until_seen(settings, str(created.ticket.id)))
        finally:
            relay.stop()
            core.close()

    assert events[0]["type"] == "ticketing.ticket.ticket_created.v1"
    assert events[0]["tenantid"] == TENANT
    # The topic administration, the relay's producer, the consumer and its
    # dead-letter producer, each with its bootstrap and broker connections.
    assert tls_broker.handshakes >= 4


def test_a_broker_certificate_of_another_ca_is_refused_and_named(
    tls_broker: TlsProxy, tmp_path: Path
) -> None:
    stranger = private_authority(tmp_path / "stranger", name="stranger-ca")
    settings = tls_settings("postgresql:///unused", tls_broker, stranger.ca_file)
    before = tls_broker.handshakes

    with pytest.raises(KafkaTlsFailure) as refused:
        asyncio.run(
            prepare_topics(
                tls_broker.address,
                service_topics(PARTITIONS),
                security=kafka_security(settings),
                timeout=5,
            )
        )

    message = str(refused.value)
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert str(stranger.ca_file) in message and "TICKETING_KAFKA_SSL_CAFILE" in message
    # Nothing got past the handshake.
    assert tls_broker.handshakes == before


def test_a_plaintext_client_gets_nothing_from_the_tls_listener(
    tls_broker: TlsProxy,
) -> None:
    # The default protocol: it cannot bootstrap, and TLS is not blamed.
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap") as failed:
        asyncio.run(
            prepare_topics(
                tls_broker.address,
                service_topics(PARTITIONS),
                security=PLAINTEXT,
                timeout=5,
            )
        )
    assert not isinstance(failed.value, KafkaTlsFailure)
