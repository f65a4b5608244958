"""Waking a loop when PostgreSQL announces work (LISTEN/NOTIFY).

The notifier's dispatcher and the timers' firing loop poll their tables;
a NOTIFY on the table's channel wakes them before the poll interval ends.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog

log = structlog.get_logger(__name__)


async def listen(
    conninfo: str,
    channel: str,
    wake: asyncio.Event,
    stop: asyncio.Event,
    *,
    retry_seconds: float,
) -> None:
    """Set ``wake`` at every NOTIFY on ``channel`` until ``stop``.

    A connection that cannot be made or is lost is tried again after
    ``retry_seconds``; meanwhile the loop only polls. ``wake`` is also set
    on each (re)connection: for what was announced while nobody listened.
    """
    while not stop.is_set():
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        except psycopg.Error as error:
            log.warning("cannot LISTEN; polling only", error=repr(error))
            await _sleep_unless(stop, retry_seconds)
            continue
        try:
            await conn.execute(f"LISTEN {channel}")
            wake.set()
            async for _ in conn.notifies():
                wake.set()
        except psycopg.Error as error:
            log.warning("LISTEN connection lost; polling", error=repr(error))
            await _sleep_unless(stop, retry_seconds)
        finally:
            await conn.close()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wake_on(stop: asyncio.Event, wake: asyncio.Event) -> None:
    """Set ``wake`` when ``stop`` is: a loop waiting on ``wake`` then ends."""
    await stop.wait()
    wake.set()
