"""Ticket events as CloudEvents: the mapping covers every event, exactly."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from dotmac.ticketing.consumers.kafka.cloudevents import (
    DATA_MODELS_BY_TYPE,
    EVENT_MODELS,
    EVENT_SOURCE,
    UnknownEventType,
    encode_cloudevent,
    event_type,
    parse_cloudevent,
    snake_case,
    to_cloudevent,
)
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.schemas.events import TicketEventData
from tests.event_samples import every_event

# Attributes of every stored event that the envelope carries instead.
ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic"}
COMMON = set(TicketEventData.model_fields)


def ticket_event_classes() -> set[type[Ticket.Event]]:
    """Every concrete event class nested in Ticket (found, not listed)."""
    return {
        value
        for value in vars(Ticket).values()
        if isinstance(value, type)
        and issubclass(value, Ticket.Event)
        and value is not Ticket.Event
    }


def test_every_event_class_has_a_data_model_and_every_model_an_event() -> None:
    classes = ticket_event_classes()
    assert classes, "no event classes found"
    assert set(EVENT_MODELS) == classes


@pytest.mark.parametrize("event_class", sorted(EVENT_MODELS, key=lambda c: c.__name__))
def test_data_model_fields_are_the_event_fields(event_class: type) -> None:
    """A field added to an event without its schema fails here."""
    own = {f.name for f in dataclasses.fields(event_class)} - ENVELOPE
    model_fields = set(EVENT_MODELS[event_class].model_fields)
    assert model_fields == own | {"ticket_id", "version"}
    assert model_fields >= COMMON


def test_data_models_are_named_after_their_events() -> None:
    for event_class, model in EVENT_MODELS.items():
        assert model.__name__ == f"{event_class.__name__}Data"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("TicketCreated", "ticket_created"),
        ("PriorityChanged", "priority_changed"),
        ("SLAStarted", "sla_started"),
        ("WorkflowStepCompleted", "workflow_step_completed"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_event_types() -> None:
    assert event_type(Ticket.TicketCreated) == "ticketing.ticket.ticket_created.v1"
    assert event_type(Ticket.PriorityChanged) == "ticketing.ticket.priority_changed.v1"
    assert len(DATA_MODELS_BY_TYPE) == len(EVENT_MODELS)


def test_samples_cover_every_event_type() -> None:
    assert {type(e) for e in every_event()} == ticket_event_classes()


def test_envelope_of_a_created_ticket() -> None:
    created = every_event("tenant-a")[0]
    assert isinstance(created, Ticket.TicketCreated)
    cloudevent = to_cloudevent(created, source="/test")
    ticket_id = str(created.originator_id)
    assert cloudevent == {
        "specversion": "1.0",
        "id": f"{ticket_id}:1",
        "source": "/test",
        "type": "ticketing.ticket.ticket_created.v1",
        "subject": ticket_id,
        "time": "2026-01-05T09:00:00Z",
        "datacontenttype": "application/json",
        "tenantid": "tenant-a",
        "data": {
            "ticket_id": ticket_id,
            "version": 1,
            "tenant_id": "tenant-a",
            "actor": {"id": "customer-1", "role": "customer", "kind": "user"},
            "correlation_id": None,
            "causation_id": None,
            "number": 1,
            "title": "Printer 1 is on fire",
            "description": "Smoke, then silence.  Ünïcödé and\nnew lines survive.",
            "category": "technical_support",
            "priority": "normal",
            "channel": "email",
            "customer_id": "customer-1",
            "customer_email": "customer@example.com",
            "tags": ["printer", "fire"],
            "custom_fields": {"floor": 3, "vip": True, "ratio": 0.5, "note": None},
            "customer_name": None,
        },
    }


def test_every_event_converts_to_json_and_parses_back() -> None:
    for event in every_event():
        cloudevent = to_cloudevent(event)
        assert cloudevent["id"] == f"{event.originator_id}:{event.originator_version}"
        assert cloudevent["source"] == EVENT_SOURCE
        assert cloudevent["type"] == event_type(type(event))
        assert cloudevent["subject"] == str(event.originator_id)
        assert cloudevent["tenantid"] == event.tenant_id
        moment = datetime.fromisoformat(cloudevent["time"])
        assert moment.utcoffset() is not None
        assert moment == event.timestamp.astimezone(UTC)
        value = encode_cloudevent(cloudevent)
        assert json.loads(value) == cloudevent
        envelope, data = parse_cloudevent(value)
        assert envelope.id == cloudevent["id"]
        assert isinstance(data, EVENT_MODELS[type(event)])
        assert data.ticket_id == UUID(str(event.originator_id))
        assert data.version == event.originator_version


def test_event_data_carries_the_events_own_fields_unchanged() -> None:
    for event in every_event():
        data = to_cloudevent(event)["data"]
        for name in {f.name for f in dataclasses.fields(type(event))} - ENVELOPE:
            value = getattr(event, name)
            if isinstance(value, datetime):
                # Times travel as ISO 8601 in UTC.
                assert datetime.fromisoformat(data[name]) == value, name
                continue
            expected = json.loads(json.dumps(value, default=str))
            assert data[name] == expected, (type(event).__name__, name)


def test_unknown_types_and_malformed_messages_are_refused() -> None:
    cloudevent = to_cloudevent(every_event()[0])
    with pytest.raises(UnknownEventType):
        parse_cloudevent({**cloudevent, "type": "ticketing.ticket.unheard_of.v1"})
    with pytest.raises(ValidationError):
        parse_cloudevent({**cloudevent, "specversion": "0.3"})
    with pytest.raises(ValidationError):
        parse_cloudevent({**cloudevent, "data": {**cloudevent["data"], "number": "x"}})
