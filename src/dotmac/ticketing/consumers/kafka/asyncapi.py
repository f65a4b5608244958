"""The AsyncAPI 3.0 document of the ticket event topic.

Generated from the pydantic models in ``schemas/events.py``: one message
per event type, whose payload is the CloudEvent envelope with ``type``
fixed and ``data`` that event's schema. ``ticketing asyncapi`` prints it;
the committed copy is ``schemas/asyncapi.json`` (a test keeps it equal to
what this module generates).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dotmac.ticketing.consumers.kafka.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    EVENT_MODELS,
    EVENT_SOURCE,
    event_type,
)
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.schemas.events import CloudEvent

ASYNCAPI_VERSION = "3.0.0"
# The contract's version: the topic and its types are ``v1``; additions
# (new event types, new optional fields) raise the minor version.
CONTRACT_VERSION = "1.1.0"  # 1.1: the logposition extension
CHANNEL = "ticketEvents"
COMMITTED_PATH = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.json"

_REF_TEMPLATE = "#/components/schemas/{model}"
# The version of the AsyncAPI Kafka bindings the document uses.
_KAFKA_BINDING_VERSION = "0.5.0"


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict."""
    mode: Literal["serialization"] = "serialization"
    models: list[tuple[type[BaseModel], Literal["serialization"]]] = [
        (CloudEvent, mode),
        *((model, mode) for model in EVENT_MODELS.values()),
    ]
    _, definitions = models_json_schema(models, ref_template=_REF_TEMPLATE)
    schemas: dict[str, Any] = dict(definitions["$defs"])
    envelope = schemas.pop(CloudEvent.__name__)

    messages: dict[str, Any] = {}
    for event_class, model in EVENT_MODELS.items():
        name = event_class.__name__
        payload_name = f"{name}CloudEvent"
        payload = copy.deepcopy(envelope)
        payload["title"] = payload_name
        payload["description"] = f"The CloudEvent of {name}."
        payload["properties"]["type"] = {
            "const": event_type(event_class),
            "type": "string",
            "description": "The CloudEvent type of this message.",
        }
        payload["properties"]["data"] = {
            "$ref": _REF_TEMPLATE.format(model=model.__name__)
        }
        schemas[payload_name] = payload
        messages[name] = {
            "name": name,
            "title": name,
            "summary": _summary(model.__doc__, name),
            "contentType": CLOUDEVENTS_CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "content-type": {
                        "const": CLOUDEVENTS_CONTENT_TYPE,
                        "type": "string",
                    }
                },
            },
            "payload": {"$ref": _REF_TEMPLATE.format(model=payload_name)},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "format": "uuid",
                        "description": "The ticket id: one ticket's events keep "
                        "their order on one partition.",
                    },
                    "bindingVersion": _KAFKA_BINDING_VERSION,
                }
            },
        }

    message_refs = {
        name: {"$ref": f"#/components/messages/{name}"} for name in messages
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Ticketing events",
            "version": CONTRACT_VERSION,
            "description": (
                "Every event of every support ticket, in the order it happened "
                "per ticket, as CloudEvents 1.0 in structured JSON mode. "
                "Delivery is at least once: deduplicate by the CloudEvent `id` "
                "(`<ticket id>:<version>`). The extension attribute "
                "`logposition` is the event's position in the event store's "
                "log. After the broker lost the topic the relay publishes "
                "again only from the first position one of the service's own "
                "consumer groups has not applied; subscribers outside the "
                "service are not counted."
            ),
        },
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "channels": {
            CHANNEL: {
                "address": TICKET_EVENTS,
                "title": "Ticket events",
                "description": (
                    f"Kafka topic `{TICKET_EVENTS}`, key = ticket id. Published by "
                    f"the ticketing relay (CloudEvent source `{EVENT_SOURCE}`)."
                ),
                "messages": message_refs,
            }
        },
        "operations": {
            "publishTicketEvents": {
                "action": "send",
                "title": "Publish ticket events",
                "summary": "The relay publishes each stored ticket event once "
                "acknowledged by the broker (at least once).",
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "messages": [
                    {"$ref": f"#/channels/{CHANNEL}/messages/{name}"}
                    for name in messages
                ],
            }
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def render_asyncapi() -> str:
    """The document as the text committed in ``schemas/asyncapi.json``."""
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n"


def _summary(doc: str | None, name: str) -> str:
    if not doc:
        return name
    return " ".join(doc.split())
