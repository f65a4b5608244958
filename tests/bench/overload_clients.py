"""Many concurrent HTTP clients, light enough to overload the service with.

One httpx client process cannot drive 200 concurrent creates on two cores:
it used half the machine for 16 (docs/benchmarks.md). These clients are a
request written once as bytes and a response read by its status line and
``Content-Length``, on raw asyncio streams over uvloop: each connection is
one closed-loop client (send a create, read the answer, send the next).
Several processes of them (``multiprocessing``, spawned) start together
at a barrier, once every connection is open, and stop at a deadline or
after a number of requests, whichever comes first.

Only loopback addresses are accepted: this is a load generator.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from typing import Any

import uvloop

#: CPU seconds so far, by process (the service's, the machine's).
CpuProbe = Callable[[], dict[str, float]]

#: A request the service has not answered by then counts as a time-out.
REQUEST_TIMEOUT_SECONDS = 10.0
#: How long the parent waits for its client processes beyond the deadline.
GRACE_SECONDS = REQUEST_TIMEOUT_SECONDS + 10.0


@dataclass(frozen=True)
class Load:
    """What the clients send, for how long, and how they treat a 503."""

    host: str
    port: int
    path: str
    token: str
    body: dict[str, Any]
    processes: int
    connections_per_process: int
    seconds: float
    max_requests: int
    #: Wait the ``Retry-After`` of a 503 before the next request, as a
    #: client following RFC 9110 does; False: ask again at once.
    honour_retry_after: bool = True

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"{self.host} is not a loopback address")

    @property
    def clients(self) -> int:
        return self.processes * self.connections_per_process


@dataclass
class Tally:
    """What one client process (or all of them, added up) saw."""

    served_ms: list[float] = field(default_factory=list)
    #: 503 answers carrying Retry-After: the service shedding load.
    shed_ms: list[float] = field(default_factory=list)
    #: Anything else: other statuses, resets, time-outs, by kind.
    errors: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0

    def add(self, other: Tally) -> None:
        self.served_ms += other.served_ms
        self.shed_ms += other.shed_ms
        self.errors.update(other.errors)
        self.cpu_seconds += other.cpu_seconds


def request_bytes(load: Load) -> bytes:
    body = json.dumps(load.body).encode()
    head = (
        f"POST {load.path} HTTP/1.1\r\n"
        f"Host: {load.host}:{load.port}\r\n"
        f"Authorization: Bearer {load.token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None
    keep_alive: bool


def parse_head(head: bytes) -> tuple[Answer, int]:
    """The answer's status and the headers that matter; its body's length."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ValueError("an answer without Content-Length")
    retry = headers.get("retry-after")
    answer = Answer(
        status,
        float(retry) if retry is not None and retry.isdigit() else None,
        headers.get("connection", "").lower() != "close",
    )
    return answer, int(headers["content-length"])


class _Client:
    """One connection, one request at a time, reconnecting after a failure."""

    def __init__(self, load: Load, request: bytes, tally: Tally) -> None:
        self._load = load
        self._request = request
        self._tally = tally
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        self._streams = await asyncio.open_connection(self._load.host, self._load.port)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def run(self, deadline: float, budget: list[int]) -> None:
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            answer = await self._one()
            if answer is None or not answer.keep_alive:
                self.close()
            if (
                answer is not None
                and answer.retry_after is not None
                and self._load.honour_retry_after
            ):
                await asyncio.sleep(
                    min(answer.retry_after, max(0.0, deadline - time.monotonic()))
                )
        self.close()

    async def _one(self) -> Answer | None:
        """One request; its answer, or None after a failure (recorded)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                if self._streams is None:
                    await self.connect()
                assert self._streams is not None
                reader, writer = self._streams
                writer.write(self._request)
                head = await reader.readuntil(b"\r\n\r\n")
                answer, length = parse_head(head)
                await reader.readexactly(length)
        except TimeoutError:
            self._tally.errors["time-out"] += 1
            return None
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            self._tally.errors[f"connection: {type(error).__name__}"] += 1
            return None
        except (OSError, ValueError) as error:
            self._tally.errors[f"{type(error).__name__}: {error}"] += 1
            return None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if 200 <= answer.status < 300:
            self._tally.served_ms.append(elapsed_ms)
        elif answer.status == 503 and answer.retry_after is not None:
            self._tally.shed_ms.append(elapsed_ms)
        else:
            self._tally.errors[f"status {answer.status}"] += 1
        return answer


async def _drive(load: Load, barrier: Barrier, budget: int) -> Tally:
    tally = Tally()
    request = request_bytes(load)
    clients = [
        _Client(load, request, tally) for _ in range(load.connections_per_process)
    ]
    await asyncio.gather(*(client.connect() for client in clients))
    # Every process starts when all of them are connected.
    await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    cpu_before = time.process_time()
    deadline = time.monotonic() + load.seconds
    shared_budget = [budget]
    await asyncio.gather(*(client.run(deadline, shared_budget) for client in clients))
    tally.cpu_seconds = time.process_time() - cpu_before
    return tally


def _client_process(
    load: Load, barrier: Barrier, budget: int, results: multiprocessing.Queue[Tally]
) -> None:
    results.put(uvloop.run(_drive(load, barrier, budget)))


def drive(
    load: Load, probe: CpuProbe | None = None
) -> tuple[Tally, float, dict[str, float]]:
    """Run the load; what all the clients saw, the seconds from the start
    (every connection open) to the last client's end, and what ``probe``
    counted meanwhile (the processes' start-up left out)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(load.processes + 1)
    results: multiprocessing.Queue[Tally] = context.Queue()
    budget = -(-load.max_requests // load.processes)
    processes = [
        context.Process(
            target=_client_process, args=(load, barrier, budget, results), daemon=True
        )
        for _ in range(load.processes)
    ]
    for process in processes:
        process.start()
    try:
        barrier.wait(timeout=60)
        started = time.monotonic()
        before = probe() if probe else {}
        total = Tally()
        for _ in processes:
            total.add(results.get(timeout=load.seconds + GRACE_SECONDS))
        seconds = time.monotonic() - started
        after = probe() if probe else {}
        used = {name: after[name] - before[name] for name in after if name in before}
        return total, seconds, used
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
