"""A mixed workload over HTTP: each ticket is created, assigned, commented
on and resolved, one request after the other; concurrent clients each work
on their own tickets, so there are no version conflicts by design.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx

from tests.bench.harness import CpuProbe, Measurement, cpu_used
from tests.bench.http_creates import (
    TICKETS,
    describe_failure,
    http_client,
    ticket_body,
)

OPERATIONS = ("create", "assign", "comment", "resolve")
ALL = "HTTP mixed: all (4 requests / ticket)"


def _steps(ticket_id: str, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("assign", f"{TICKETS}/{ticket_id}/assign", {"assignee_id": f"agent-{n % 7}"}),
        (
            "comment",
            f"{TICKETS}/{ticket_id}/comments",
            {"body": "Looking into it.", "internal": False},
        ),
        (
            "resolve",
            f"{TICKETS}/{ticket_id}/resolve",
            {"resolution": "Fixed by the benchmark.", "resolution_code": "fixed"},
        ),
    ]


async def _mixed(
    client: httpx.AsyncClient,
    tickets: int,
    concurrency: int,
    cpu_probe: CpuProbe | None,
) -> dict[str, Measurement]:
    clients = min(concurrency, tickets)
    results = {
        op: Measurement(f"HTTP mixed: {op}", clients, 0.0, [], comparable=False)
        for op in OPERATIONS
    }
    counter = itertools.count()

    async def request(op: str, path: str, body: dict[str, Any]) -> Any:
        """The response's JSON, or None when the request failed."""
        response: httpx.Response | None = None
        error: Exception | None = None
        start = time.perf_counter()
        try:
            response = await client.post(path, json=body)
        except httpx.HTTPError as exc:
            error = exc
        results[op].latencies_ms.append((time.perf_counter() - start) * 1000)
        if response is None or not response.is_success:
            results[op].record_error(describe_failure(response, error))
            return None
        return response.json()

    async def worker() -> None:
        while (n := next(counter)) < tickets:
            created = await request("create", f"{TICKETS}/", ticket_body(n))
            if created is None:
                continue
            for op, path, body in _steps(created["id"], n):
                if await request(op, path, body) is None:
                    break

    total = Measurement(ALL, clients, 0.0, [])
    with cpu_used(cpu_probe, total):
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        total.seconds = time.perf_counter() - start
    for measurement in results.values():
        measurement.seconds = total.seconds
        total.latencies_ms.extend(measurement.latencies_ms)
        total.errors += measurement.errors
    return {**results, "all": total}


async def _run(
    base_url: str,
    token: str,
    tickets: int,
    concurrency: int,
    cpu_probe: CpuProbe | None,
) -> dict[str, Measurement]:
    async with http_client(base_url, token, concurrency) as client:
        return await _mixed(client, tickets, concurrency, cpu_probe)


def run_mixed(
    base_url: str,
    token: str,
    *,
    tickets: int,
    concurrency: int,
    cpu_probe: CpuProbe | None = None,
) -> dict[str, Measurement]:
    """Per operation (``create``, ``assign``, ...) and ``all`` together."""
    return asyncio.run(_run(base_url, token, tickets, concurrency, cpu_probe))
