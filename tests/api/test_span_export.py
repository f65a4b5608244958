"""With an OTLP endpoint, each request is a server span in its caller's
trace, and the events it saves point at that span."""

from __future__ import annotations

from uuid import UUID

from fastapi.testclient import TestClient

from dotmac.ticketing.domain.trace_context import parse_traceparent, trace_of
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import AuthFor
from tests.otlp_receiver import otlp_receiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER = 2  # SPAN_KIND_SERVER in OTLP


def test_a_request_is_exported_as_a_span_of_its_callers_trace(
    settings: Settings, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    with otlp_receiver() as receiver:
        app = create_app(
            settings.model_copy(update={"otlp_endpoint": receiver.endpoint}),
            ticketing=ticketing,
        )
        with TestClient(app) as client:
            created = client.post(
                "/api/v1/tickets/",
                json={"title": "Printer on fire"},
                headers={
                    **auth_for(tenant, "cust-1", "customer"),
                    "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
                },
            )
        # Leaving the client ends the app: its spans are flushed.
        spans = receiver.received()

    assert created.status_code == 201
    (span,) = [s for s in spans if s.trace_id == TRACE_ID]
    assert (span.kind, span.parent_span_id) == (SERVER, CALLER_SPAN)
    assert span.attributes["http.route"] == "/api/v1/tickets/"
    assert span.attributes["http.response.status_code"] == 201
    assert span.service["service.name"] == "dotmac-ticketing"
    events = ticketing.app.events.get(UUID(created.json()["id"]))
    kept = {parse_traceparent(trace_of(e)) for e in events}
    assert {(t.trace_id, t.span_id) for t in kept if t} == {(TRACE_ID, span.span_id)}


def test_without_an_endpoint_nothing_is_exported_and_the_trace_still_rides(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    created = client.post(
        "/api/v1/tickets/",
        json={"title": "Printer on fire"},
        headers={
            **auth_for(tenant, "cust-1", "customer"),
            "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
        },
    )

    (first, *_) = ticketing.app.events.get(UUID(created.json()["id"]))
    kept = parse_traceparent(trace_of(first))
    assert kept is not None
    assert kept.trace_id == TRACE_ID and kept.span_id != CALLER_SPAN
