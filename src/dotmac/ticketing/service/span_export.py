"""Spans to an OpenTelemetry collector (OTLP over HTTP), when one is set.

Off by default. With ``TICKETING_OTLP_ENDPOINT`` the API exports a server
span per request and each Kafka consumer a consumer span per record, in the
trace the request or the record's CloudEvent carries; the span's own id is
the ``traceparent`` the work's events keep (``domain.trace_context``), so a
trace viewer shows a request, the events it stored and the workflow steps
and notifications they caused as one tree.

Each process has its own provider, handed to what uses it (no global
tracer provider is set); spans leave in batches on the SDK's own thread,
and ``close`` flushes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from dotmac.ticketing.domain.trace_context import TraceParent

SERVICE_NAME = "dotmac-ticketing"


@dataclass
class OpenSpan:
    """A span being recorded: its trace context, and its attributes."""

    trace: TraceParent
    _span: Any

    def set(self, attributes: Mapping[str, str | int | float | bool]) -> None:
        self._span.set_attributes(dict(attributes))

    def rename(self, name: str) -> None:
        self._span.update_name(name)

    def failed(self, description: str) -> None:
        self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))


class SpanExport:
    """One process's spans, sent to ``endpoint`` (``…/v1/traces`` is added)."""

    def __init__(self, endpoint: str, *, process: str) -> None:
        self._provider = TracerProvider(
            resource=Resource.create(
                {"service.name": SERVICE_NAME, "service.instance.role": process}
            )
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
            )
        )
        self._tracer = self._provider.get_tracer("dotmac.ticketing")

    @contextmanager
    def span(
        self, name: str, parent: TraceParent | None, *, kind: SpanKind
    ) -> Iterator[OpenSpan]:
        """Record the block as a span, a child of ``parent`` (or a new trace)."""
        context = None
        if parent is not None:
            remote = SpanContext(
                trace_id=int(parent.trace_id, 16),
                span_id=int(parent.span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(int(parent.flags, 16)),
            )
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        span = self._tracer.start_span(name, context=context, kind=kind)
        own = span.get_span_context()
        try:
            yield OpenSpan(
                TraceParent(
                    format(own.trace_id, "032x"),
                    format(own.span_id, "016x"),
                    format(int(own.trace_flags), "02x"),
                ),
                span,
            )
        finally:
            span.end()

    def close(self) -> None:
        """Send what is still buffered, then stop."""
        self._provider.shutdown()


def span_export(endpoint: str | None, *, process: str) -> SpanExport | None:
    return SpanExport(endpoint, process=process) if endpoint else None
