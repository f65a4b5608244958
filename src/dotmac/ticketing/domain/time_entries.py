"""Time tracking: the minutes agents spend on a ticket, billable or not.

Functions of a :class:`~domain.ticket.Ticket`, which takes each as its method
(``ticket.log_time(...)``). An entry is never edited: a wrong one is removed
and the right one logged, so the history shows both, as bookkeeping does.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from dotmac.ticketing.domain.enums import TimeEntryType
from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.lifecycle import Command, ensure_allowed
from dotmac.ticketing.domain.limits import (
    NAME_MAX,
    REASON_MAX,
    TIME_ENTRY_MINUTES_MAX,
)
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.ticket_validation import _valid_text

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket

#: Roles that log or remove time for another agent.
SUPERVISING_ROLES = frozenset({"supervisor", "admin"})


def log_time(
    ticket: Ticket,
    *,
    minutes: int,
    billable: bool,
    work_type: TimeEntryType,
    note: str,
    provenance: Provenance,
    at: datetime,
    agent_id: str | None = None,
    entry_id: str | None = None,
) -> str:
    """Record ``minutes`` of ``agent_id``'s work (default: the caller's).

    People on the support side log their own time; a supervisor or admin
    may log it for another agent. Returns the entry's id.
    """
    ensure_allowed(Command.LOG_TIME, ticket.status)
    actor = provenance.actor
    if actor.role == "customer":
        raise InvalidCommand("agent_id", "only the support side logs time")
    if type(minutes) is not int or not 1 <= minutes <= TIME_ENTRY_MINUTES_MAX:
        raise InvalidCommand(
            "minutes", f"must be a whole number from 1 to {TIME_ENTRY_MINUTES_MAX}"
        )
    agent = _valid_text("agent_id", agent_id or actor.id, NAME_MAX, required=True)
    if agent != actor.id and actor.role not in SUPERVISING_ROLES:
        raise InvalidCommand(
            "agent_id", "only a supervisor or admin logs time for someone else"
        )
    try:
        kind = TimeEntryType(work_type).value
    except ValueError:
        raise InvalidCommand(
            "type", f"one of {', '.join(t.value for t in TimeEntryType)}"
        ) from None
    entry = entry_id or uuid4().hex
    ticket._trigger(
        ticket.TimeLogged,
        provenance,
        at,
        entry_id=entry,
        agent_id=agent,
        minutes=minutes,
        billable=bool(billable),
        work_type=kind,
        note=_valid_text("note", note, REASON_MAX),
    )
    return entry


def remove_time_entry(
    ticket: Ticket, entry_id: str, *, provenance: Provenance, at: datetime
) -> None:
    """Take back an entry: its agent's own, or anyone's by a supervisor."""
    ensure_allowed(Command.LOG_TIME, ticket.status)
    entry = find_time_entry(ticket, entry_id)
    if entry is None:
        raise InvalidCommand("entry_id", f"no time entry {entry_id} on this ticket")
    actor = provenance.actor
    if entry["agent_id"] != actor.id and actor.role not in SUPERVISING_ROLES:
        raise InvalidCommand(
            "entry_id", "only its agent, a supervisor or an admin removes an entry"
        )
    ticket._trigger(ticket.TimeEntryRemoved, provenance, at, entry_id=entry_id)


def find_time_entry(ticket: Ticket, entry_id: str) -> dict[str, Any] | None:
    return next((e for e in ticket.time_entries or () if e["id"] == entry_id), None)
