"""Time entries on the ticket itself: who logs, bounds, removal, replay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dotmac.ticketing.domain.enums import TimeEntryType
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from tests.event_samples import START, _create

TENANT = "tenant-time"
AGENT = Provenance(TENANT, Actor("ana", "agent"))
SUPERVISOR = Provenance(TENANT, Actor("sue", "supervisor"))
CUSTOMER = Provenance(TENANT, Actor("customer-1", "customer"))


def ticket() -> Ticket:
    return _create(TENANT, 1, START, CUSTOMER)


def log(t: Ticket, by: Provenance = AGENT, **fields: object) -> str:
    arguments: dict[str, object] = {
        "minutes": 30,
        "billable": True,
        "work_type": TimeEntryType.SUPPORT,
        "note": "",
        **fields,
    }
    return t.log_time(provenance=by, at=START + timedelta(hours=1), **arguments)  # type: ignore[arg-type]


def test_an_entry_is_kept_and_replayed() -> None:
    t = ticket()
    entry = log(t, note="Called")
    replayed = Ticket.TicketCreated.mutate(t.pending_events[0], None)
    for event in t.pending_events[1:]:
        replayed = event.mutate(replayed)
    assert replayed.time_entries == t.time_entries
    assert t.find_time_entry(entry) == {
        "id": entry,
        "agent_id": "ana",
        "minutes": 30,
        "billable": True,
        "work_type": "support",
        "note": "Called",
        "logged_by": "ana",
        "logged_at": START + timedelta(hours=1),
    }


@pytest.mark.parametrize("minutes", [0, -5, 1441, 2.5, True])
def test_minutes_are_whole_and_bounded(minutes: object) -> None:
    with pytest.raises(InvalidCommand) as refused:
        log(ticket(), minutes=minutes)
    assert refused.value.field == "minutes"


def test_only_a_supervisor_logs_or_removes_for_someone_else() -> None:
    t = ticket()
    with pytest.raises(InvalidCommand):
        log(t, agent_id="ben")
    with pytest.raises(InvalidCommand):
        log(t, by=CUSTOMER)
    bens = log(t, by=SUPERVISOR, agent_id="ben")
    with pytest.raises(InvalidCommand):
        t.remove_time_entry(bens, provenance=AGENT, at=START)
    t.remove_time_entry(bens, provenance=SUPERVISOR, at=START)
    assert t.time_entries == []


def test_a_closed_ticket_takes_no_time() -> None:
    t = ticket()
    t.resolve(resolution="", resolution_code="fixed", provenance=AGENT, at=START)
    log(t)  # resolved: still
    t.close(provenance=AGENT, at=START)
    with pytest.raises(CommandRefused):
        log(t)
