"""Head sampling decides which traces are exported, never which are carried:
an unsampled request's trace still rides on its events, its CloudEvents and
the workflow steps they start, with no span of it at the collector.

The real stack (PostgreSQL, the bundled broker, the relay, the workflows and
timers workers, the API) exporting to a real OTLP receiver, with a sample
ratio of 0: only a caller's sampled trace is exported.
"""

from __future__ import annotations

import json
from uuid import UUID

from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.domain.trace_context import TraceParent, parse_traceparent
from tests.integration.test_trace_context import CALLER, TRACE_ID, open_ticket, traces
from tests.integration.workflow_stack import WorkflowStack, fresh_workflow_stack
from tests.kafka_fixtures import read_topic
from tests.otlp_receiver import otlp_receiver

SERVER, CONSUMER = 2, 5  # SPAN_KIND_SERVER, SPAN_KIND_CONSUMER in OTLP


def parsed(kept: list[str | None]) -> list[TraceParent]:
    found = [parse_traceparent(t) for t in kept]
    assert all(found), kept
    return [t for t in found if t is not None]


def sampled(trace: TraceParent) -> bool:
    return bool(int(trace.flags, 16) & 1)


def completed_ticket(stack: WorkflowStack, headers: dict[str, str]) -> str:
    """A ticket opened with ``headers``, once its workflow has completed."""
    ticket_id = open_ticket(stack, headers)
    ticket = stack.ticketing.tickets.find(UUID(ticket_id))
    assert ticket is not None
    stack.wait_for_workflow(
        ticket.tenant_id,
        ticket_id,
        lambda flow: flow["status"] == "completed",
        "the workflow to complete",
    )
    return ticket_id


def test_an_unsampled_request_is_carried_everywhere_and_exported_nowhere(
    postgres_server_url: str,
) -> None:
    with otlp_receiver() as receiver:
        with fresh_workflow_stack(
            postgres_server_url,
            otlp_endpoint=receiver.endpoint,
            otlp_sample_ratio=0.0,
        ) as stack:
            quiet = completed_ticket(stack, {})
            loud = completed_ticket(stack, {"traceparent": CALLER})
            kept = {ticket: traces(stack, ticket) for ticket in (quiet, loud)}
            assert stack.settings.kafka_bootstrap_servers is not None
            published = read_topic(
                stack.settings.kafka_bootstrap_servers,
                TICKET_EVENTS,
                until=lambda records: all(
                    sum(r.key == t.encode() for r in records) >= len(kept[t])
                    for t in kept
                ),
            )
        # The stack has stopped: the API and each consumer sent what they had.
        spans = receiver.received()

    quiet_trace = parsed(kept[quiet])
    (quiet_id,) = {t.trace_id for t in quiet_trace}
    assert len(quiet_trace) > 4  # created, SLA clocks, the workflow's steps
    assert not any(sampled(t) for t in quiet_trace)
    for ticket, expected in kept.items():
        cloudevents = [
            json.loads(r.value) for r in published if r.key == ticket.encode()
        ]
        assert [e["traceparent"] for e in cloudevents[: len(expected)]] == expected
    assert [s for s in spans if s.trace_id == quiet_id] == []

    # The caller sampled its trace: the request and the steps it caused are
    # exported, as the spans the events name.
    loud_trace = parsed(kept[loud])
    assert {t.trace_id for t in loud_trace} == {TRACE_ID}
    assert all(sampled(t) for t in loud_trace)
    exported = {s.span_id: s for s in spans if s.trace_id == TRACE_ID}
    assert {t.span_id for t in loud_trace} <= set(exported)
    assert {exported[t.span_id].kind for t in loud_trace} == {SERVER, CONSUMER}
