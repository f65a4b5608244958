"""The trace the code running now works for (W3C trace context).

An HTTP request sets it from its ``traceparent`` header (a new trace when it
has none or a bad one); a consumer sets it, for each record, to a child of
the trace its CloudEvent carries. Whatever the request or record saves
then carries it (``RequestContext.provenance``), threads included: the
value is a context variable, and ``asyncio.to_thread`` copies the context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from dotmac.ticketing.domain.trace_context import TraceParent

_CURRENT: ContextVar[TraceParent | None] = ContextVar("traceparent", default=None)


def current_traceparent() -> str | None:
    """The ``traceparent`` of the work in progress, if it has one."""
    current = _CURRENT.get()
    return None if current is None else str(current)


@contextmanager
def working_for(trace: TraceParent | None) -> Iterator[None]:
    """Run the block as part of ``trace`` (None: of no trace)."""
    token = _CURRENT.set(trace)
    try:
        yield
    finally:
        _CURRENT.reset(token)
