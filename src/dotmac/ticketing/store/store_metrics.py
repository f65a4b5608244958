"""What the event store's writes look like to Prometheus.

The metric objects are module-level, as prometheus-client expects (one
registry per process, or the multiprocess collector's files under the API's
uvicorn workers); they hold counts, never configuration.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SAVES = Counter(
    "ticketing_event_store_saves",
    "Saves committed to the event store (one caller's events each).",
)
EVENTS = Counter(
    "ticketing_event_store_events",
    "Events committed to the event store.",
)
BATCH_SAVES = Histogram(
    "ticketing_event_store_batch_saves",
    "Saves per commit of the group commit (1: nobody else was saving).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
CONFLICTS = Counter(
    "ticketing_event_store_conflicts",
    "Saves refused because another writer saved the aggregate first.",
)
