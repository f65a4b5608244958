"""The in-run baseline: what raw psycopg does on the same server.

Each transaction inserts one event row (shaped like eventsourcing's stored
events) and one read-model row, with one connection per thread and no table
lock: the ceiling an event store on this PostgreSQL could approach.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from uuid import uuid4

import psycopg

from tests.bench.harness import Measurement, client_cpu_probe, cpu_used

NAME = "baseline (a): raw psycopg, 1 event + 1 read row / tx"

DDL = """
DROP TABLE IF EXISTS bench_events, bench_ticket_rows;
CREATE TABLE bench_events (
    id                 bigserial PRIMARY KEY,
    originator_id      uuid NOT NULL,
    originator_version integer NOT NULL,
    topic              text NOT NULL,
    state              bytea NOT NULL,
    UNIQUE (originator_id, originator_version)
);
CREATE TABLE bench_ticket_rows (
    ticket_id  uuid PRIMARY KEY,
    tenant_id  text NOT NULL,
    title      text NOT NULL,
    status     text NOT NULL,
    priority   text NOT NULL,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

INSERT_EVENT = (
    "INSERT INTO bench_events (originator_id, originator_version, topic, state)"
    " VALUES (%s, %s, %s, %s) RETURNING id"
)
INSERT_ROW = (
    "INSERT INTO bench_ticket_rows"
    " (ticket_id, tenant_id, title, status, priority, position)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)
TOPIC = "domain.ticket:Ticket.Created"
# About the size of a stored ticket-created event.
STATE = json.dumps(
    {
        "tenant_id": "bench",
        "title": "Benchmark ticket",
        "description": "Created by the benchmark " * 8,
        "category": "general",
        "priority": "normal",
        "customer_id": "cust-1",
        "tags": ["bench"],
        "custom_fields": {},
        "channel": "api",
        "provenance": {"user_id": "bench-agent", "roles": ["agent"]},
        "timestamp": "2024-01-01T00:00:00+00:00",
    }
).encode()


def run_baseline(
    database_url: str, *, transactions: int, concurrency: int, warmup: int
) -> Measurement:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(DDL)
    connections: list[psycopg.Connection] = []
    try:
        for _ in range(concurrency):
            connections.append(psycopg.connect(database_url, autocommit=True))
        _drive(connections, warmup)
        return _drive(connections, transactions)
    finally:
        for conn in connections:
            conn.close()


def _drive(connections: list[psycopg.Connection], total: int) -> Measurement:
    result = Measurement(NAME, min(len(connections), total), 0.0, [])
    counter = itertools.count()
    lock = threading.Lock()

    def work(conn: psycopg.Connection) -> None:
        while True:
            with lock:
                n = next(counter)
            if n >= total:
                return
            ticket_id = uuid4()
            start = time.perf_counter()
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.execute(INSERT_EVENT, (ticket_id, 1, TOPIC, STATE))
                    row = cursor.fetchone()
                    assert row is not None
                    cursor.execute(
                        INSERT_ROW,
                        (ticket_id, "bench", f"Ticket {n}", "new", "normal", row[0]),
                    )
                error = None
            except psycopg.Error as exc:
                error = f"{type(exc).__name__}: {exc}"
            elapsed_ms = (time.perf_counter() - start) * 1000
            with lock:
                result.latencies_ms.append(elapsed_ms)
                if error:
                    result.record_error(error)

    # Daemon threads: an interrupted run does not wait for them, and dropping
    # the database closes their connections.
    threads = [
        threading.Thread(target=work, args=(conn,), daemon=True) for conn in connections
    ]
    with cpu_used(client_cpu_probe, result):
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.seconds = time.perf_counter() - start
    return result
