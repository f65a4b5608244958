"""Shedding load: past so many requests in flight, 503 at once, not a queue.

A process serving more API requests than it can work on only makes every
one of them slower (they wait for a worker thread, then for a connection).
Beyond ``max_in_flight`` requests under the API prefix, a new one is
answered 503 ``overloaded`` with ``Retry-After`` straight away, so the
requests that are served stay fast and the client (or the load balancer)
tries again or elsewhere. Health, readiness and metrics are never shed.
"""

from __future__ import annotations

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from dotmac.ticketing.service.api.problems import problem

SHED = Counter(
    "ticketing_http_shed",
    "Requests answered 503 overloaded: the process had its most in flight.",
)


class LoadShedding:
    def __init__(self, app: ASGIApp, *, prefix: str, max_in_flight: int) -> None:
        self.app = app
        self._prefix = prefix
        self._max = max_in_flight
        # One event loop per process: no lock needed around the count.
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            await self.app(scope, receive, send)
            return
        if self._in_flight >= self._max:
            SHED.inc()
            response = problem(
                503,
                "overloaded",
                "Overloaded",
                f"this process is working on {self._max} requests already;"
                " retry shortly",
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self._in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._in_flight -= 1
