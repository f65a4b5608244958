"""Ticket events as CloudEvents 1.0 (structured JSON mode): out and back in.

The relay turns each stored event into :func:`to_cloudevent`'s dict;
consumers read a Kafka record back with :func:`parse_cloudevent`. The
contract (envelope and one data model per event type) is in
``schemas/events.py``; this module maps the domain's event classes onto it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.trace_context import trace_of
from dotmac.ticketing.schemas.events import (
    AttachmentAddedData,
    CloudEvent,
    CommentAddedData,
    EscalationApprovedData,
    EscalationRejectedData,
    EscalationRequestedData,
    PriorityChangedData,
    SatisfactionRatedData,
    SLABreachedData,
    SLAPausedData,
    SLARecalculatedData,
    SLAResumedData,
    SLAStartedData,
    SLAStoppedData,
    SLAWarningData,
    StatusChangedData,
    SubjectErasedData,
    TicketAssignedData,
    TicketCategorizedData,
    TicketClosedData,
    TicketCreatedData,
    TicketEscalatedData,
    TicketEventData,
    TicketLinkedData,
    TicketMergedData,
    TicketReopenedData,
    TicketResolvedData,
    TicketUnassignedData,
    TicketUpdatedData,
    TimeEntryRemovedData,
    TimeLoggedData,
    WorkflowCancelledData,
    WorkflowCompletedData,
    WorkflowStartedData,
    WorkflowStepCompletedData,
    WorkflowStepDueData,
    WorkflowStepFailedData,
    WorkflowStepWaitingData,
)

# The value of the Kafka ``content-type`` header in structured mode.
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
# ``source`` of every event this service publishes.
EVENT_SOURCE = "/ticketing"

TYPE_PREFIX = "ticketing.ticket."
TYPE_VERSION = "v1"

# The data model of each event class. A test discovers the event classes
# nested in Ticket and fails when one has no model here (or vice versa).
EVENT_MODELS: Mapping[type[Ticket.Event], type[TicketEventData]] = {
    Ticket.TicketCreated: TicketCreatedData,
    Ticket.TicketUpdated: TicketUpdatedData,
    Ticket.TicketCategorized: TicketCategorizedData,
    Ticket.PriorityChanged: PriorityChangedData,
    Ticket.TicketAssigned: TicketAssignedData,
    Ticket.TicketUnassigned: TicketUnassignedData,
    Ticket.StatusChanged: StatusChangedData,
    Ticket.CommentAdded: CommentAddedData,
    Ticket.AttachmentAdded: AttachmentAddedData,
    Ticket.TicketEscalated: TicketEscalatedData,
    Ticket.TicketResolved: TicketResolvedData,
    Ticket.TicketReopened: TicketReopenedData,
    Ticket.TicketClosed: TicketClosedData,
    Ticket.TicketMerged: TicketMergedData,
    Ticket.TicketLinked: TicketLinkedData,
    Ticket.SubjectErased: SubjectErasedData,
    Ticket.SatisfactionRated: SatisfactionRatedData,
    Ticket.EscalationRequested: EscalationRequestedData,
    Ticket.EscalationApproved: EscalationApprovedData,
    Ticket.EscalationRejected: EscalationRejectedData,
    Ticket.SLAStarted: SLAStartedData,
    Ticket.SLARecalculated: SLARecalculatedData,
    Ticket.SLAPaused: SLAPausedData,
    Ticket.SLAResumed: SLAResumedData,
    Ticket.SLAStopped: SLAStoppedData,
    Ticket.SLAWarning: SLAWarningData,
    Ticket.SLABreached: SLABreachedData,
    Ticket.WorkflowStarted: WorkflowStartedData,
    Ticket.WorkflowStepCompleted: WorkflowStepCompletedData,
    Ticket.WorkflowStepWaiting: WorkflowStepWaitingData,
    Ticket.WorkflowStepFailed: WorkflowStepFailedData,
    Ticket.WorkflowStepDue: WorkflowStepDueData,
    Ticket.WorkflowCompleted: WorkflowCompletedData,
    Ticket.WorkflowCancelled: WorkflowCancelledData,
    Ticket.TimeLogged: TimeLoggedData,
    Ticket.TimeEntryRemoved: TimeEntryRemovedData,
}

# Attributes every stored event has that are not part of ``data`` (they
# become ``ticket_id``, ``version`` and the envelope's ``time``).
_ENVELOPE_ATTRIBUTES = ("originator_id", "originator_version", "timestamp")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


class UnknownEventType(LookupError):
    """A CloudEvent type (or event class) this code has no data model for."""


def snake_case(name: str) -> str:
    """``PriorityChanged`` → ``priority_changed``; ``SLAStarted`` → ``sla_started``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def event_type(event_class: type[Ticket.Event]) -> str:
    """The CloudEvent ``type`` of an event class.

    ``Ticket.TicketCreated`` → ``ticketing.ticket.ticket_created.v1``.
    """
    return f"{TYPE_PREFIX}{snake_case(event_class.__name__)}.{TYPE_VERSION}"


# type → data model, for consumers reading records back.
DATA_MODELS_BY_TYPE: Mapping[str, type[TicketEventData]] = {
    event_type(event_class): model for event_class, model in EVENT_MODELS.items()
}


def cloudevent_id(ticket_id: object, version: int) -> str:
    """``<ticket id>:<version>``: unique per event; the idempotency key."""
    return f"{ticket_id}:{version}"


def event_data(event: Ticket.Event) -> TicketEventData:
    """The event's ``data``, validated through its pydantic model."""
    model = EVENT_MODELS.get(type(event))
    if model is None:
        raise UnknownEventType(f"no CloudEvent data model for {type(event).__name__}")
    state = vars(event)
    # Only the model's fields: a stored event may still carry an attribute
    # that a later version of its class dropped.
    fields: dict[str, Any] = {
        name: state[name] for name in model.model_fields if name in state
    }
    fields["ticket_id"] = event.originator_id
    fields["version"] = event.originator_version
    return model.model_validate(fields)


def to_cloudevent(
    event: Ticket.Event,
    *,
    source: str = EVENT_SOURCE,
    log_position: int | None = None,
) -> dict[str, Any]:
    """The structured-mode CloudEvent of a ticket event, as a JSON-ready dict.

    ``log_position`` (the event's notification id) becomes the
    ``logposition`` extension attribute; without it the attribute is absent.
    """
    data = event_data(event)
    envelope = CloudEvent(
        id=cloudevent_id(event.originator_id, event.originator_version),
        source=source,
        type=event_type(type(event)),
        subject=str(event.originator_id),
        time=_utc(event.timestamp),
        tenantid=event.tenant_id,
        logposition=log_position,
        traceparent=trace_of(event),
        data=data.model_dump(mode="json"),
    )
    return envelope.model_dump(mode="json")


def encode_cloudevent(cloudevent: Mapping[str, Any]) -> bytes:
    """The Kafka record value: compact UTF-8 JSON."""
    return json.dumps(cloudevent, ensure_ascii=False, separators=(",", ":")).encode()


def parse_cloudevent(
    value: bytes | str | Mapping[str, Any],
) -> tuple[CloudEvent, TicketEventData]:
    """Validate a record's value: the envelope and its typed data.

    Raises ``pydantic.ValidationError`` for a malformed message and
    :class:`UnknownEventType` for a type this code does not know (written
    by a newer producer); consumers decide whether to skip or dead-letter.
    """
    raw = value if isinstance(value, Mapping) else json.loads(value)
    envelope = CloudEvent.model_validate(raw)
    model = DATA_MODELS_BY_TYPE.get(envelope.type)
    if model is None:
        raise UnknownEventType(f"unknown CloudEvent type {envelope.type!r}")
    return envelope, model.model_validate(envelope.data)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # the library stores aware times; be safe
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
