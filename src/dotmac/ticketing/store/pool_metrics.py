"""Database pools as Prometheus sees them: connections in use, idle, awaited.

A pool that runs out makes every request wait; this says so before the
latency does. Gauges in "livesum" mode: under the API's several uvicorn
processes, /metrics adds up the live processes' values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Gauge

POOL_CONNECTIONS = Gauge(
    "ticketing_db_pool_connections",
    "Connections of a database pool: in_use, idle, and requests waiting for one.",
    ("pool", "state"),
    multiprocess_mode="livesum",
)


def sample_pools(pools: Mapping[str, Any]) -> None:
    """Set the gauges from each pool's statistics (psycopg_pool pools)."""
    for name, pool in pools.items():
        stats = pool.get_stats()
        size = stats.get("pool_size", 0)
        idle = stats.get("pool_available", 0)
        POOL_CONNECTIONS.labels(name, "in_use").set(max(size - idle, 0))
        POOL_CONNECTIONS.labels(name, "idle").set(idle)
        POOL_CONNECTIONS.labels(name, "waiting").set(stats.get("requests_waiting", 0))
