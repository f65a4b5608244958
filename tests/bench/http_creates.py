"""Ticket creates per second over HTTP, through the whole real stack.

Concurrent asyncio clients share one httpx connection pool sized to the
concurrency, so each client keeps one connection to the service. Latency is
what a client sees, from sending the request to reading the response.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx

from tests.bench.harness import CpuProbe, Measurement, cpu_used

NAME = "HTTP create ticket"
TICKETS = "/api/v1/tickets"


def http_client(base_url: str, token: str, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency
        ),
        timeout=httpx.Timeout(60.0),
    )


def ticket_body(n: int) -> dict[str, Any]:
    return {
        "title": f"Benchmark ticket {n}",
        "description": "Created by the benchmark " * 8,
        "priority": "normal",
        "customer_id": f"cust-{n % 100}",
        "tags": ["bench"],
        "channel": "api",
    }


def describe_failure(response: httpx.Response | None, exc: Exception | None) -> str:
    if response is not None:
        request = response.request
        return (
            f"{request.method} {request.url.path} -> {response.status_code}: "
            f"{response.text[:200]}"
        )
    return f"{type(exc).__name__}: {exc}"


async def _create(
    client: httpx.AsyncClient, n: int, result: Measurement, *, since: float
) -> None:
    """Create ticket ``n``; its latency counts from ``since``."""
    response: httpx.Response | None = None
    error: Exception | None = None
    try:
        response = await client.post(f"{TICKETS}/", json=ticket_body(n))
    except httpx.HTTPError as exc:
        error = exc
    result.latencies_ms.append((time.perf_counter() - since) * 1000)
    if response is None or response.status_code != 201:
        result.record_error(describe_failure(response, error))


async def _creates(
    client: httpx.AsyncClient,
    total: int,
    concurrency: int,
    cpu_probe: CpuProbe | None = None,
) -> Measurement:
    result = Measurement(NAME, min(concurrency, total), 0.0, [])
    counter = itertools.count()

    async def worker() -> None:
        while (n := next(counter)) < total:
            await _create(client, n, result, since=time.perf_counter())

    with cpu_used(cpu_probe, result):
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


async def _run(
    base_url: str,
    token: str,
    total: int,
    concurrency: int,
    warmup: int,
    cpu_probe: CpuProbe | None,
) -> Measurement:
    async with http_client(base_url, token, concurrency) as client:
        await _creates(client, warmup, concurrency)
        return await _creates(client, total, concurrency, cpu_probe)


def run_creates(
    base_url: str,
    token: str,
    *,
    requests: int,
    concurrency: int,
    warmup: int,
    cpu_probe: CpuProbe | None = None,
) -> Measurement:
    """Creates after an uncounted warm-up on the same connections."""
    return asyncio.run(_run(base_url, token, requests, concurrency, warmup, cpu_probe))


async def _paced_creates(
    client: httpx.AsyncClient,
    rate: float,
    total: int,
    clients: int,
    cpu_probe: CpuProbe | None,
) -> Measurement:
    """Open loop: create ``n`` is due at ``start + n / rate``; its latency
    counts from then, so a service (or client) falling behind shows."""
    result = Measurement(PACED_NAME, clients, 0.0, [])
    counter = itertools.count()

    async def worker(start: float) -> None:
        while (n := next(counter)) < total:
            due = start + n / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            await _create(client, n, result, since=due)

    with cpu_used(cpu_probe, result):
        start = time.perf_counter()
        await asyncio.gather(*(worker(start) for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


PACED_NAME = "HTTP create ticket, paced at half the rate above"


def run_paced_creates(
    base_url: str,
    token: str,
    *,
    rate: float,
    seconds: float,
    clients: int,
    cpu_probe: CpuProbe | None = None,
) -> Measurement:
    """Creates at a steady ``rate`` for ``seconds``: the latency under a load
    the service keeps up with."""

    async def run() -> Measurement:
        async with http_client(base_url, token, clients) as client:
            total = max(1, round(rate * seconds))
            return await _paced_creates(client, rate, total, clients, cpu_probe)

    return asyncio.run(run())
