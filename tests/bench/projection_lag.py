"""Projection lag: from a committed create to its row in the read model.

Tickets are created over HTTP at a steady, paced rate (open loop: request
``n`` is sent at ``start + n / rate``, or at once when the clients are
behind) while the projection worker runs in its own process. The service
answers 201 only after the event is committed, so from the moment the
response arrives a poller (its own psycopg connection, in the same event
loop) looks for the ticket's row in the active build's ``tickets`` table
every :data:`POLL_INTERVAL` seconds. The lag is the time from the response
to the poll that first finds the row: it leaves out the response's way
back to the client (a little too short) and includes up to one poll
interval plus the poll's own time (a little too long).

Then, what a client doing read-your-writes sees: create, then list at once
with ``min_position`` set to the create's position, one client after the
other; the latency is the list request's, which waits for the projection.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg import sql

from tests.bench.harness import BenchError, CpuProbe, ReadRow, cpu_used
from tests.bench.http_creates import (
    TICKETS,
    describe_failure,
    http_client,
    ticket_body,
)

POLL_INTERVAL = 0.002
# A row not visible this long after the last create counts as an error.
SEEN_TIMEOUT = 30.0
# Untimed creates first, at the same rate; the worker process may still be
# starting, hence the longer wait for them.
WARMUP_SECONDS = 1.0
WARMUP_TIMEOUT = 120.0


async def _lag(
    client: httpx.AsyncClient,
    database_url: str,
    schema: str,
    *,
    rate: float,
    seconds: float,
    clients: int,
    cpu_probe: CpuProbe | None,
) -> ReadRow:
    total = max(1, round(rate * seconds))
    warmup = max(1, round(rate * WARMUP_SECONDS))
    row = ReadRow(
        "projection lag",
        total,
        0.0,
        "creates",
        notes=(
            f"HTTP creates paced at {rate:g}/s by {clients} clients; lag: from "
            "the 201 (event committed) to the first poll that finds the row in "
            f"the active build's tickets (polled every {POLL_INTERVAL * 1000:g} "
            f"ms); after {warmup} untimed creates"
        ),
    )
    query = sql.SQL("SELECT ticket_id FROM {} WHERE ticket_id = ANY(%s)").format(
        sql.Identifier(schema, "tickets")
    )
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True
    ) as conn:
        # The status endpoint shows the build caught up as soon as the
        # rebuild is in, before the worker process follows it: these prove
        # that it does (and warm it up).
        warm = ReadRow("warm-up", warmup, 0.0, "creates", "")
        await _paced(client, conn, query, warm, rate, clients, WARMUP_TIMEOUT)
        if warm.errors:
            detail = "; ".join(warm.error_samples)
            raise BenchError(f"the worker did not project the warm-up: {detail}")
        with cpu_used(cpu_probe, row):
            await _paced(client, conn, query, row, rate, clients, SEEN_TIMEOUT)
    return row


async def _paced(
    client: httpx.AsyncClient,
    conn: psycopg.AsyncConnection[Any],
    query: sql.Composed,
    row: ReadRow,
    rate: float,
    clients: int,
    seen_timeout: float,
) -> None:
    """``row.count`` creates, paced; their lags (ms) into ``row``."""
    pending: dict[UUID, float] = {}  # ticket: when its 201 arrived
    creates_done = asyncio.Event()
    counter = itertools.count()

    async def poll() -> None:
        deadline: float | None = None
        while True:
            if pending:
                cursor = await conn.execute(query, (list(pending),))
                visible = await cursor.fetchall()
                seen_at = time.perf_counter()
                for (ticket_id,) in visible:
                    answered_at = pending.pop(ticket_id)
                    row.latencies_ms.append(max(0.0, seen_at - answered_at) * 1000)
            if creates_done.is_set():
                if not pending:
                    return
                if deadline is None:
                    deadline = time.perf_counter() + seen_timeout
                elif time.perf_counter() > deadline:
                    for ticket_id in pending:
                        row.record_error(
                            f"ticket {ticket_id} not in the read model "
                            f"{seen_timeout:.0f}s after the last create"
                        )
                    return
            await asyncio.sleep(POLL_INTERVAL)

    async def create(start: float) -> None:
        while (n := next(counter)) < row.count:
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.post(f"{TICKETS}/", json=ticket_body(n))
            except httpx.HTTPError as exc:
                row.record_error(describe_failure(None, exc))
                continue
            answered_at = time.perf_counter()
            if response.status_code != 201:
                row.record_error(describe_failure(response, None))
                continue
            # No await since answered_at: the poller cannot have looked yet.
            pending[UUID(response.json()["id"])] = answered_at

    poller = asyncio.create_task(poll())
    try:
        start = time.perf_counter()
        await asyncio.gather(*(create(start) for _ in range(clients)))
        row.seconds = time.perf_counter() - start
        creates_done.set()
        await poller
    finally:
        poller.cancel()


async def _read_your_writes(client: httpx.AsyncClient, requests: int) -> ReadRow:
    row = ReadRow(
        "read-your-writes GET",
        requests,
        0.0,
        "req",
        notes=(
            "one client: create, then at once GET /tickets/?limit=1&min_position"
            "=<its position>; the GET's latency (it waits for the projection); "
            "a stale answer is an error"
        ),
    )
    start = time.perf_counter()
    for n in range(requests):
        try:
            created = await client.post(f"{TICKETS}/", json=ticket_body(n))
        except httpx.HTTPError as exc:
            row.record_error(describe_failure(None, exc))
            continue
        if created.status_code != 201:
            row.record_error(describe_failure(created, None))
            continue
        position = created.json()["position"]
        began = time.perf_counter()
        try:
            response = await client.get(
                f"{TICKETS}/", params={"min_position": position, "limit": 1}
            )
        except httpx.HTTPError as exc:
            row.record_error(describe_failure(None, exc))
            continue
        row.latencies_ms.append((time.perf_counter() - began) * 1000)
        seen = int(response.headers.get("X-Projection-Position", "0"))
        if response.status_code != 200:
            row.record_error(describe_failure(response, None))
        elif response.headers.get("X-Projection-Stale") or seen < position:
            row.record_error(f"stale answer: position {seen} < {position}")
    row.seconds = time.perf_counter() - start
    return row


async def _run(
    base_url: str,
    token: str,
    database_url: str,
    schema: str,
    rate: float,
    seconds: float,
    clients: int,
    read_your_writes: int,
    cpu_probe: CpuProbe | None,
) -> list[ReadRow]:
    async with http_client(base_url, token, clients) as client:
        lag = await _lag(
            client,
            database_url,
            schema,
            rate=rate,
            seconds=seconds,
            clients=clients,
            cpu_probe=cpu_probe,
        )
        rows = [lag]
        if read_your_writes > 0:
            rows.append(await _read_your_writes(client, read_your_writes))
    return rows


def run_lag(
    base_url: str,
    token: str,
    database_url: str,
    schema: str,
    *,
    rate: float,
    seconds: float,
    clients: int,
    read_your_writes: int,
    cpu_probe: CpuProbe | None = None,
) -> list[ReadRow]:
    """The lag row, then (unless 0 requests) the read-your-writes row."""
    return asyncio.run(
        _run(
            base_url,
            token,
            database_url,
            schema,
            rate,
            seconds,
            clients,
            read_your_writes,
            cpu_probe,
        )
    )
