"""Which parts of a ticket's events (and snapshots) are personal data.

A ticket's personal data belongs to its customer, its data subject: who
they are (address, name) and every free text written about the request
(title, description, comments, reasons, resolution note, custom field
values, attachment names, workflow messages). What stays in clear are the
facts: states, priorities, categories, times, SLA figures, teams, agent
and customer ids, counts. Projections, metrics and analytics need only
those, so an erased ticket still counts.

The parts are named by paths into an event's state (``"comments.*.body"``;
``*`` is every item of a list or every value of a mapping). The functions
below take them out of a state, put them back, or put ``ERASED`` in their
place; the store seals what was taken out with the subject's key
(``store.sealing``).
"""

from __future__ import annotations

from collections.abc import Mapping

from dotmac.ticketing.domain import ticket_events as events
from dotmac.ticketing.domain.personal_paths import (
    ERASED,
    Path,
    erased,
    personal_paths,
    put_back,
    take_out,
)

__all__ = [
    "ERASED",
    "Path",
    "erased",
    "fields_of",
    "personal_paths",
    "put_back",
    "take_out",
]


_CUSTOM = ("custom_fields.*",)
_WORKFLOW_STEP = ("message", "data.*")

#: Each ticket event's personal fields (events not named have none).
EVENT_FIELDS: Mapping[type, tuple[str, ...]] = {
    events.TicketCreated: (
        "title",
        "description",
        "customer_email",
        "customer_name",
        *_CUSTOM,
    ),
    events.TicketUpdated: tuple(
        f"{side}.{field}"
        for side in ("changes", "previous")
        for field in ("title", "description", "custom_fields.*")
    ),
    events.PriorityChanged: ("reason",),
    events.StatusChanged: ("reason",),
    events.CommentAdded: ("body",),
    events.AttachmentAdded: ("filename",),
    events.TicketEscalated: ("reason",),
    events.EscalationApproved: ("comment",),
    events.EscalationRejected: ("comment",),
    events.SatisfactionRated: ("comment",),
    events.TicketResolved: ("resolution",),
    events.TicketReopened: ("reason",),
    events.TicketClosed: ("reason",),
    events.WorkflowStepCompleted: _WORKFLOW_STEP,
    events.WorkflowStepWaiting: _WORKFLOW_STEP,
    events.TimeLogged: ("note",),
}

#: The same data in a ticket's snapshot (the aggregate's whole state).
SNAPSHOT_FIELDS: tuple[str, ...] = tuple(
    f"state.{field}" for field in events.PERSONAL_STATE
)


def fields_of(event_class: type) -> tuple[str, ...]:
    """The personal fields of an event (or snapshot) class: none if not a
    ticket's."""
    if issubclass(event_class, events.Snapshot):
        return SNAPSHOT_FIELDS
    return EVENT_FIELDS.get(event_class, ())
