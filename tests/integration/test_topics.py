"""Topics are created on purpose, with the configured partitions, never by accident.

Against the bundled broker (Tansu), which creates any topic a client asks
for with four partitions and, in memory, forgets every topic when it stops:

- the workers create the service's topics themselves, with the configured
  partitions, before their clients touch them;
- after the broker restarted empty, the topic is back with the configured
  partitions (recreated if a client had it created with four) and the
  consumers carry on;
- a mismatched topic that holds records is refused: the worker reports
  itself down (``/ready``) with the reason, and the topic is left alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    TopicMismatch,
    create_missing_topics,
    prepare_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import (
    NOTIFICATIONS_DLQ,
    TICKET_EVENTS,
    TICKET_EVENTS_DLQ,
)
from dotmac.ticketing.entry.processes import start_notifier, start_relay
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.worker_status import (
    current_worker_problems,
    readiness_policy,
)

TENANT = "tenant-topics"
AGENT = RequestContext(tenant_id=TENANT, user_id="agent-1", roles=frozenset({"agent"}))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DevBroker]:
    with start_dev_broker(log_path=tmp_path / "broker.log") as running:
        yield running


def settings_for(database_url: str, broker: DevBroker, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_partitions=6,
        kafka_session_timeout_ms=2000,
        kafka_fetch_max_wait_ms=20,
        worker_heartbeat_seconds=0.2,
        worker_restart_initial_seconds=0.2,
        worker_restart_max_seconds=1.0,
        db_pool_size=4,
        **extra,
    )


def partition_counts(bootstrap_servers: str) -> dict[str, int]:
    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        await admin.start()
        try:
            return {
                t["topic"]: len(t["partitions"])
                for t in await admin.describe_topics()  # all: creates none
                if t["error_code"] == 0
            }
        finally:
            await admin.close()

    return asyncio.run(describe())


def produce(bootstrap_servers: str, topic: str, value: bytes) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=b"k")
        finally:
            await producer.stop()

    asyncio.run(send())


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def inapp_count(core: Ticketing, ticket_id: str) -> int:
    with core.app.datastore.transaction(commit=False) as cur:
        cur.execute(
            "SELECT count(*) AS n FROM inapp_notifications WHERE ticket_id = %s",
            (ticket_id,),
        )
        row = cur.fetchone()
    return int(row["n"]) if row else 0


def new_ticket(core: Ticketing, title: str) -> str:
    created = core.tickets.create_ticket(AGENT, title=title, customer_id="c-1")
    return str(created.ticket.id)


# ----------------------------------------------------------------------
# prepare_topics


def test_an_empty_topic_with_the_wrong_partitions_is_recreated(
    broker: DevBroker,
) -> None:
    topic = f"test.accident.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_missing_topics(broker.bootstrap_servers, {topic: 4}))
    asyncio.run(prepare_topics(broker.bootstrap_servers, {topic: 6}))
    assert partition_counts(broker.bootstrap_servers)[topic] == 6


def test_a_topic_with_records_and_the_wrong_partitions_is_refused(
    broker: DevBroker,
) -> None:
    topic = f"test.kept.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_missing_topics(broker.bootstrap_servers, {topic: 4}))
    produce(broker.bootstrap_servers, topic, b"a record")

    with pytest.raises(TopicMismatch) as refused:
        asyncio.run(prepare_topics(broker.bootstrap_servers, {topic: 6}))
    assert str(refused.value).startswith(
        f"topic {topic} has 4 partitions, the service is configured for 6"
    )
    assert partition_counts(broker.bootstrap_servers)[topic] == 4

    # Deliberately allowed (the bundled broker of `ticketing dev`).
    asyncio.run(
        prepare_topics(broker.bootstrap_servers, {topic: 6}, recreate_mismatched=True)
    )
    assert partition_counts(broker.bootstrap_servers)[topic] == 6


# ----------------------------------------------------------------------
# The workers


def test_workers_create_the_topics_and_keep_them_right_after_a_broker_restart(
    isolated_database_url: str, broker: DevBroker
) -> None:
    settings = settings_for(isolated_database_url, broker)
    core = initialize_ticketing(settings)
    assert partition_counts(broker.bootstrap_servers) == {}
    workers = [start_relay(settings), start_notifier(settings, config={})]
    try:
        wanted = {TICKET_EVENTS: 6, TICKET_EVENTS_DLQ: 6, NOTIFICATIONS_DLQ: 1}
        wait_for(
            lambda: partition_counts(broker.bootstrap_servers) == wanted,
            20,
            "the workers to create the topics",
        )
        first = new_ticket(core, "before the broker restart")
        wait_for(lambda: inapp_count(core, first), 30, "first")

        broker.stop()
        broker.start()  # empty: it kept everything in memory
        # A client asks for the topic before the workers are back: the
        # broker creates it with its default of four partitions (unless a
        # consumer reconnecting asked for it first: the same four).
        asyncio.run(create_missing_topics(broker.bootstrap_servers, {TICKET_EVENTS: 4}))

        second = new_ticket(core, "after the broker restart")
        wait_for(lambda: inapp_count(core, second), 60, "second")
        assert partition_counts(broker.bootstrap_servers)[TICKET_EVENTS] == 6
        assert inapp_count(core, first) == 1  # not twice
    finally:
        for worker in reversed(workers):
            worker.stop()
        core.close()


def test_a_worker_refuses_a_mismatched_topic_with_records_and_is_not_ready(
    isolated_database_url: str, broker: DevBroker
) -> None:
    asyncio.run(create_missing_topics(broker.bootstrap_servers, {TICKET_EVENTS: 4}))
    produce(broker.bootstrap_servers, TICKET_EVENTS, b"somebody's record")
    settings = settings_for(isolated_database_url, broker)
    core = initialize_ticketing(settings)
    policy = readiness_policy(("notifier",), stale_seconds=5, max_lag=1000)
    notifier = start_notifier(settings, config={})
    try:
        problems = wait_for(
            lambda: [
                p
                for p in current_worker_problems(core.app.datastore, policy)
                if "partitions" in p.reason
            ],
            20,
            "the notifier to report the mismatch",
        )
        assert problems[0].worker == "notifier"
        assert problems[0].problem == "down"
        assert f"topic {TICKET_EVENTS} has 4 partitions" in problems[0].reason
        assert partition_counts(broker.bootstrap_servers)[TICKET_EVENTS] == 4
    finally:
        notifier.stop()
        core.close()
