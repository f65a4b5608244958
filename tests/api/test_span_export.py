"""With an OTLP endpoint, each request is a server span in its caller's
trace, and the events it saves point at that span."""

from __future__ import annotations

from uuid import UUID

from fastapi.testclient import TestClient

from dotmac.ticketing.domain.trace_context import (
    TraceParent,
    parse_traceparent,
    trace_of,
)
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


def sampled(trace: TraceParent) -> bool:
    """The W3C ``sampled`` bit (the SDK may set others, e.g. 02, random id)."""
    return bool(int(trace.flags, 16) & 1)


def test_head_sampling_exports_sampled_callers_only_and_every_event_keeps_its_trace(
    settings: Settings, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    unsampled_caller = "5a9f0c3d1e7b4c2a8f6e0d9c1b2a3f4e"
    with otlp_receiver() as receiver:
        app = create_app(
            settings.model_copy(
                update={"otlp_endpoint": receiver.endpoint, "otlp_sample_ratio": 0.0}
            ),
            ticketing=ticketing,
        )
        with TestClient(app) as client:
            created = {
                name: client.post(
                    "/api/v1/tickets/",
                    json={"title": f"Printer on fire ({name})"},
                    headers={**auth_for(tenant, "cust-1", "customer"), **headers},
                ).json()["id"]
                for name, headers in {
                    "sampled caller": {
                        "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"
                    },
                    "unsampled caller": {
                        "traceparent": f"00-{unsampled_caller}-{CALLER_SPAN}-00"
                    },
                    "no caller": {},
                }.items()
            }
        spans = receiver.received()

    kept = {
        name: {
            parse_traceparent(trace_of(e)) for e in ticketing.app.events.get(UUID(i))
        }
        for name, i in created.items()
    }
    # The ratio is 0, yet the caller's decision stands.
    (exported,) = kept["sampled caller"]
    assert exported is not None and sampled(exported)
    assert [(s.trace_id, s.span_id) for s in spans] == [(TRACE_ID, exported.span_id)]
    # Not exported, still carried: a span id of its own, not sampled.
    (followed,) = kept["unsampled caller"]
    assert followed is not None
    assert followed.trace_id == unsampled_caller and not sampled(followed)
    assert followed.span_id != CALLER_SPAN
    (started,) = kept["no caller"]
    assert started is not None and not sampled(started)
    assert started.trace_id not in {TRACE_ID, unsampled_caller}
