"""What auto-assignment needs to know of a ticket: whose load it is.

An agent's load is the number of active tickets they hold; a team's queue
is its active tickets nobody holds, oldest first. Both are read from one
row per ticket, written with the ticket's events in the same transaction
(``store.workload``), so an assignment never waits for a read model to see
the previous one. The row is the ticket's state, not a delta: writing it
twice, or out of order, cannot count anything twice (the higher version
wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.domain.ticket import Ticket

#: The events that can change a ticket's row: every one that sets its
#: assignee, its team or its status (tests/unit/test_workload.py holds the
#: list to the events' code).
WORKLOAD_EVENTS: tuple[type[Ticket.Event], ...] = (
    Ticket.TicketCreated,
    Ticket.TicketAssigned,
    Ticket.TicketUnassigned,
    Ticket.StatusChanged,
    Ticket.TicketEscalated,
    Ticket.TicketResolved,
    Ticket.TicketReopened,
    Ticket.TicketClosed,
)


@dataclass(frozen=True)
class WorkloadRow:
    """A ticket's place in its agent's load or its team's queue."""

    tenant_id: str
    ticket_id: UUID
    version: int
    assignee_id: str | None
    team: str | None
    #: Counts towards the load (or waits in the queue): not resolved or closed.
    active: bool
    number: int
    created_at: datetime


def workload_of(ticket: Ticket) -> WorkloadRow:
    """The ticket's row as of its latest event (saved or pending)."""
    return WorkloadRow(
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        version=ticket.version,
        assignee_id=ticket.assignee_id,
        team=ticket.assigned_team,
        active=ticket.status in ACTIVE_STATUSES,
        number=ticket.number,
        created_at=ticket.created_on,
    )


def latest_per_ticket(rows: list[WorkloadRow]) -> list[WorkloadRow]:
    """One row per ticket, the highest version's (one batch may hold two)."""
    latest: dict[UUID, WorkloadRow] = {}
    for row in rows:
        held = latest.get(row.ticket_id)
        if held is None or held.version < row.version:
            latest[row.ticket_id] = row
    return list(latest.values())
