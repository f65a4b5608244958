"""W3C trace context (``traceparent``) as the events keep it.

A request's trace rides on every event it causes, and from there on the
CloudEvent each one becomes (the distributed-tracing extension), so a
notification or a workflow step can be tied to the request that caused it.
It is event metadata, not part of what happened: an instance attribute
outside the events' declared fields, stored and restored with them, and
absent (``None``) on events stored before it existed or caused by no traced
request.

Pure: the parsing and formatting of ``traceparent`` (version 00) and the
stamping of an event; the service decides where a trace comes from.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

#: The attribute events carry it in.
ATTRIBUTE = "traceparent"

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    span_id: str
    flags: str = "01"

    def __str__(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceParent:
        """A span of this trace, one step further (a new span id)."""
        return TraceParent(self.trace_id, secrets.token_hex(8), self.flags)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The header's trace context, or None when absent or malformed (the
    spec says to ignore an invalid one and start a new trace)."""
    if not value:
        return None
    found = _TRACEPARENT.match(value.strip().lower())
    if found is None:
        return None
    trace_id, span_id, flags = found.groups()
    if trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    return TraceParent(trace_id, span_id, flags)


def new_trace() -> TraceParent:
    """The start of a trace (a request that came with none)."""
    return TraceParent(secrets.token_hex(16), secrets.token_hex(8))


def stamp(event: Any, traceparent: str | None) -> None:
    """Keep ``traceparent`` on a new event (events are frozen dataclasses)."""
    if traceparent is not None:
        object.__setattr__(event, ATTRIBUTE, traceparent)


def trace_of(event: Any) -> str | None:
    """The trace an event was caused in, if it knows one."""
    value = vars(event).get(ATTRIBUTE)
    return value if isinstance(value, str) else None
