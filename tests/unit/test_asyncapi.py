"""The AsyncAPI document: complete, valid for every event, and committed."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from dotmac.ticketing.consumers.kafka.asyncapi import (
    COMMITTED_PATH,
    asyncapi_document,
    render_asyncapi,
)
from dotmac.ticketing.consumers.kafka.cloudevents import (
    EVENT_MODELS,
    event_type,
    to_cloudevent,
)
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.cli import app
from tests.event_samples import every_event


def payload_validator(document: dict[str, Any], message: str) -> Any:
    """A validator for one message's payload; ``$ref``s resolve in the document."""
    payload = document["components"]["messages"][message]["payload"]
    # The document as root schema, so "#/components/..." references resolve;
    # its other members are not JSON Schema keywords and are ignored.
    schema = {**document, **payload}
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def test_one_message_per_event_type_on_the_topic() -> None:
    document = asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    (channel,) = document["channels"].values()
    assert channel["address"] == TICKET_EVENTS
    names = {c.__name__ for c in EVENT_MODELS}
    assert set(channel["messages"]) == names
    assert set(document["components"]["messages"]) == names
    for event_class in EVENT_MODELS:
        payload = document["components"]["schemas"][f"{event_class.__name__}CloudEvent"]
        assert payload["properties"]["type"]["const"] == event_type(event_class)


def test_every_event_the_domain_emits_validates_against_its_message() -> None:
    document = asyncapi_document()
    validators = {
        name: payload_validator(document, name)
        for name in document["components"]["messages"]
    }
    seen = set()
    for event in every_event():
        cloudevent = json.loads(json.dumps(to_cloudevent(event)))
        name = type(event).__name__
        validators[name].validate(cloudevent)
        seen.add(type(event))
    assert seen == set(EVENT_MODELS)


def test_a_message_of_another_type_does_not_validate() -> None:
    document = asyncapi_document()
    created = next(e for e in every_event() if isinstance(e, Ticket.TicketCreated))
    cloudevent = to_cloudevent(created)
    with pytest.raises(jsonschema.ValidationError):
        payload_validator(document, "TicketClosed").validate(cloudevent)
    with pytest.raises(jsonschema.ValidationError):
        broken = {**cloudevent, "data": {**cloudevent["data"], "priority": "meh"}}
        payload_validator(document, "TicketCreated").validate(broken)


def test_committed_document_is_the_generated_one() -> None:
    assert COMMITTED_PATH.read_text(encoding="utf-8") == render_asyncapi(), (
        "src/dotmac/ticketing/schemas/asyncapi.json is stale: "
        "run `ticketing asyncapi -o src/dotmac/ticketing/schemas/asyncapi.json`"
    )


def test_cli_prints_and_writes_the_document(tmp_path: Any) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["asyncapi"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == render_asyncapi()
    target = tmp_path / "asyncapi.json"
    written = runner.invoke(app, ["asyncapi", "--output", str(target)])
    assert written.exit_code == 0, written.output
    assert target.read_text(encoding="utf-8") == render_asyncapi()
