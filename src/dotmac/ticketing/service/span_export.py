"""Spans to an OpenTelemetry collector (OTLP over HTTP), when one is set.

Off by default. With ``TICKETING_OTLP_ENDPOINT`` the API exports a server
span per request and each Kafka consumer a consumer span per record, in the
trace the request or the record's CloudEvent carries; the span's own id is
the ``traceparent`` the work's events keep (``domain.trace_context``), so a
trace viewer shows a request, the events it stored and the workflow steps
and notifications they caused as one tree.

Export is sampled at the head (:class:`SpanSampling`); the trace context is
not. A request or record that is not sampled still gets a span id of its
own, with the ``sampled`` flag off, and its events keep it like any other:
the trace id goes on through the CloudEvents and the consumers, whose
parent-based sampler then records nothing of that trace either. A trace a
caller sampled (``traceparent`` flag 01) is always recorded.

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
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from dotmac.ticketing.domain.trace_context import TraceParent

SERVICE_NAME = "dotmac-ticketing"

#: The samplers of OpenTelemetry's ``OTEL_TRACES_SAMPLER`` that need no
#: remote service; the ratio is the argument of the ``…traceidratio`` ones.
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


@dataclass(frozen=True)
class SpanSampling:
    """Which new traces are recorded and exported (head sampling).

    The default records every trace a caller sampled and a ``ratio`` of the
    others, decided by the trace id, so every process of the service keeps
    or drops the same traces whole.
    """

    sampler: str = "parentbased_traceidratio"
    ratio: float = 1.0

    def sdk_sampler(self) -> Sampler:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}")
        if self.sampler.endswith("traceidratio"):
            root: Sampler = TraceIdRatioBased(self.ratio)
        else:
            root = ALWAYS_OFF if self.sampler.endswith("always_off") else ALWAYS_ON
        return ParentBased(root) if self.sampler.startswith("parentbased_") else root


EVERY_TRACE = SpanSampling("parentbased_always_on")


@dataclass
class OpenSpan:
    """A span being recorded: its trace context, and its attributes."""

    trace: TraceParent
    _span: Any

    @property
    def recording(self) -> bool:
        """False when the trace is not sampled: attributes would be dropped."""
        return bool(self._span.is_recording())

    def set(self, attributes: Mapping[str, str | int | float | bool]) -> None:
        self._span.set_attributes(dict(attributes))

    def rename(self, name: str) -> None:
        self._span.update_name(name)

    def failed(self, description: str) -> None:
        self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))


class SpanExport:
    """One process's spans, sent to ``endpoint`` (``…/v1/traces`` is added)."""

    def __init__(
        self, endpoint: str, *, process: str, sampling: SpanSampling = EVERY_TRACE
    ) -> None:
        self._provider = TracerProvider(
            # Always given: unset, the SDK would read OTEL_TRACES_SAMPLER
            # itself, and only service.settings reads the environment.
            sampler=sampling.sdk_sampler(),
            resource=Resource.create(
                {"service.name": SERVICE_NAME, "service.instance.role": process}
            ),
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

    def flush(self) -> None:
        """Send what is buffered now, and go on recording."""
        self._provider.force_flush()

    def close(self) -> None:
        """Send what is still buffered, then stop."""
        self._provider.shutdown()


def span_export(
    endpoint: str | None, *, process: str, sampling: SpanSampling = EVERY_TRACE
) -> SpanExport | None:
    if not endpoint:
        return None
    return SpanExport(endpoint, process=process, sampling=sampling)
