"""HTTP requests as Prometheus sees them, and the ``/metrics`` answer.

Requests are counted by route template (``/api/v1/tickets/{ticket_id}``,
never the path itself: ids would make the label set unbounded), method and
status. Under several uvicorn workers, each process writes its values to
the directory of ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up
(prometheus-client's multiprocess mode), so any worker answers for all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

from dotmac.ticketing.service.api.route_templates import RouteTemplates

REQUESTS = Counter(
    "ticketing_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("method", "route", "status"),
)
DURATION = Histogram(
    "ticketing_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer.",
    ("method", "route"),
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class RequestMetrics:
    """Counts each answered request (the request middleware calls it)."""

    def __init__(self, route_of: RouteTemplates) -> None:
        self._route_of = route_of

    def __call__(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        template = self._route_of(scope)
        method = scope["method"]
        REQUESTS.labels(method, template, str(status)).inc()
        DURATION.labels(method, template).observe(seconds)


def metrics_response() -> Response:
    """Every metric of this process, or of all the API's processes."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
