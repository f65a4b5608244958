"""A request's W3C trace follows what it causes: every event it saves, the
CloudEvents the relay publishes, and the workflow steps they start.

The real stack: PostgreSQL, the bundled broker, the relay, the workflows
and timers workers, the API.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from uuid import UUID

import pytest

from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.domain.trace_context import parse_traceparent, trace_of
from tests.integration.workflow_stack import (
    API,
    WorkflowStack,
    fresh_workflow_stack,
)
from tests.kafka_fixtures import read_topic

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[WorkflowStack]:
    with fresh_workflow_stack(postgres_server_url) as running:
        yield running


def open_ticket(stack: WorkflowStack, headers: dict[str, str]) -> str:
    tenant = f"trace-{secrets.token_hex(3)}"
    response = stack.client.post(
        f"{API}/tickets/",
        json={"title": "Cannot log in", "description": "Reset mail never came."},
        headers={**stack.customer(tenant), **headers},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def traces(stack: WorkflowStack, ticket_id: str) -> list[str | None]:
    return [trace_of(e) for e in stack.ticketing.app.events.get(UUID(ticket_id))]


def test_the_callers_trace_is_on_every_event_it_causes_and_on_its_cloudevents(
    stack: WorkflowStack,
) -> None:
    ticket_id = open_ticket(stack, {"traceparent": CALLER})
    stack.wait_for_workflow(
        stack.ticketing.tickets.find(UUID(ticket_id)).tenant_id,  # type: ignore[union-attr]
        ticket_id,
        lambda flow: flow["status"] == "completed",
        "the workflow to complete",
    )

    kept = traces(stack, ticket_id)
    parsed = [parse_traceparent(t) for t in kept]
    # The request's own span, a child of the caller's; then the workflow's
    # steps, each a span of the same trace started by the event before.
    assert all(p is not None and p.trace_id == TRACE_ID for p in parsed), kept
    assert CALLER not in kept
    assert len(kept) > 4  # created, SLA clocks, the workflow's steps

    assert stack.settings.kafka_bootstrap_servers is not None
    published = read_topic(
        stack.settings.kafka_bootstrap_servers,
        TICKET_EVENTS,
        until=lambda records: (
            sum(r.key == ticket_id.encode() for r in records) >= len(kept)
        ),
    )
    mine = [json.loads(r.value) for r in published if r.key == ticket_id.encode()]
    assert [e["traceparent"] for e in mine[: len(kept)]] == kept


def test_a_request_without_a_trace_starts_one_and_a_bad_header_is_ignored(
    stack: WorkflowStack,
) -> None:
    for headers in ({}, {"traceparent": "00-not-a-trace-01"}):
        ticket_id = open_ticket(stack, headers)
        (first, *_) = traces(stack, ticket_id)
        started = parse_traceparent(first)
        assert started is not None
        assert started.trace_id != TRACE_ID
        assert {parse_traceparent(t).trace_id for t in traces(stack, ticket_id)} == {  # type: ignore[union-attr]
            started.trace_id
        }
