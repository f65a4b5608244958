"""Helpers to drive the notifier's parts against a real database and broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.kafka.consumer_loop import Record
from dotmac.ticketing.consumers.kafka.topics import NOTIFICATIONS_DLQ, TICKET_EVENTS
from dotmac.ticketing.consumers.notify.dispatcher import Dispatcher
from dotmac.ticketing.consumers.notify.notifier import Notifier


@asynccontextmanager
async def notifier_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=4,
        kwargs={"row_factory": dict_row},
        open=False,
    )
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


def record_of(event: Mapping[str, Any], offset: int = 0) -> Record:
    return Record(
        topic=TICKET_EVENTS,
        partition=0,
        offset=offset,
        key=str(event["subject"]),
        value=json.dumps(event).encode(),
    )


async def handle(
    pool: AsyncConnectionPool[Any], notifier: Notifier, event: Mapping[str, Any]
) -> None:
    """Apply one event's effect in a transaction, as the consumer does
    (without the consumer's deduplication: the ledger alone must hold)."""
    async with pool.connection() as conn, conn.transaction():
        await notifier.handle(record_of(event), conn.cursor())


async def register_webhook(
    pool: AsyncConnectionPool[Any],
    *,
    tenant_id: str,
    url: str,
    secret: str,
    event_types: Sequence[str] = (),
) -> str:
    webhook_id = str(uuid.uuid4())
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO webhooks (id, tenant_id, url, event_types, secret,"
            " created_by) VALUES (%s, %s, %s, %s, %s, 'test-admin')",
            (webhook_id, tenant_id, url, list(event_types), secret),
        )
    return webhook_id


async def deliveries(
    pool: AsyncConnectionPool[Any], where: str = "true", params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT * FROM notification_deliveries WHERE {where}"
            " ORDER BY delivery_key",
            params,
        )
        return list(await cur.fetchall())


@asynccontextmanager
async def dispatching(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Event]:
    """The dispatcher's loop on a task for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


async def wait_for(
    condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll an async condition until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def read_topic(
    bootstrap_servers: str, topic: str = NOTIFICATIONS_DLQ, *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Every JSON record on ``topic`` so far (read from the beginning)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    letters: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                letters += [json.loads(r.value) for r in records if r.value]
            if not batches and letters:
                break
    finally:
        await consumer.stop()
    return letters


async def publish(
    bootstrap_servers: str,
    events: Sequence[Mapping[str, Any]],
    topic: str = TICKET_EVENTS,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic,
                json.dumps(event).encode(),
                key=str(event["subject"]).encode(),
            )
    finally:
        await producer.stop()
