"""Ticket streams stored by earlier code load to the same ticket.

``tests/fixtures/stored_tickets_v1.json`` holds rows written before the
ticket's SLA clocks and workflow run became value objects (see
``tests/fixtures/stored_tickets.py``). Replaying them, from the first event
or from a snapshot, must give the state and the answers recorded then.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from dotmac.ticketing.domain.ticket import Ticket
from tests.fixtures.stored_tickets import FIXTURE, mapper, ticket_view

STORED: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["tickets"]

#: Attributes the ticket gained after the fixture was written, with the
#: value a ticket stored before them has: a replayed ticket may carry them
#: (the creation event's default) where the recorded state has no such key.
ADDED_SINCE_FIXTURE: dict[str, Any] = {"customer_name": None}


def as_recorded(ticket: Ticket) -> dict[str, Any]:
    """The ticket's view, without attributes the recording could not have."""
    view = ticket_view(ticket)
    state = view["state"]
    for name, default in ADDED_SINCE_FIXTURE.items():
        if name in state and state[name] == default:
            del state[name]
    return view


def decoded(row: dict[str, Any]) -> Any:
    return mapper().to_domain_event(
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"].encode("utf-8"),
        )
    )


def replay(events: list[dict[str, Any]], start: Ticket | None = None) -> Ticket:
    ticket = start
    for row in events:
        ticket = decoded(row).mutate(ticket)
    assert ticket is not None
    return ticket


@pytest.mark.parametrize("stored", STORED, ids=[t["id"][-2:] for t in STORED])
def test_replaying_every_stored_event_gives_the_recorded_ticket(
    stored: dict[str, Any],
) -> None:
    assert as_recorded(replay(stored["events"])) == stored["expected"]


@pytest.mark.parametrize("stored", STORED, ids=[t["id"][-2:] for t in STORED])
def test_a_stored_snapshot_and_the_events_after_it_give_the_recorded_ticket(
    stored: dict[str, Any],
) -> None:
    snapshot = decoded(stored["middle_snapshot"])
    later = [
        e
        for e in stored["events"]
        if e["originator_version"] > snapshot.originator_version
    ]
    assert as_recorded(replay(later, snapshot.mutate(None))) == stored["expected"]


@pytest.mark.parametrize("stored", STORED, ids=[t["id"][-2:] for t in STORED])
def test_the_final_stored_snapshot_gives_the_recorded_ticket(
    stored: dict[str, Any],
) -> None:
    ticket = decoded(stored["final_snapshot"]).mutate(None)
    assert as_recorded(ticket) == stored["expected"]


#: Event types added after the fixture was written (it is never rewritten):
#: their stored form is pinned by the tests of the feature that added them.
NEWER_THAN_FIXTURE = {
    Ticket.SubjectErased.TOPIC,  # tests/api/test_privacy.py
    Ticket.TimeLogged.TOPIC,  # tests/api/test_time_entries.py
    Ticket.TimeEntryRemoved.TOPIC,
}


def test_the_fixture_holds_every_kind_of_ticket_event() -> None:
    kinds = {row["topic"] for stored in STORED for row in stored["events"]}
    declared = {
        value.TOPIC
        for value in vars(Ticket).values()
        if isinstance(value, type)
        and issubclass(value, Ticket.Event)
        and "TOPIC" in vars(value)
    }
    assert declared - NEWER_THAN_FIXTURE <= kinds
    assert NEWER_THAN_FIXTURE.isdisjoint(kinds)


def test_a_fresh_process_decodes_a_stored_snapshot() -> None:
    # Inside this test run some earlier test may have stored a snapshot (which
    # registers its topic); a new process that only reads must decode it too.
    row = STORED[0]["final_snapshot"]
    script = (
        "import json, sys; from uuid import UUID;"
        "from eventsourcing.persistence import StoredEvent;"
        "from tests.fixtures.stored_tickets import mapper;"
        "row = json.loads(sys.argv[1]);"
        "event = mapper().to_domain_event(StoredEvent(UUID(row['originator_id']),"
        " row['originator_version'], row['topic'], row['state'].encode()));"
        "print(event.mutate(None).version)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(row)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == str(row["originator_version"]), done.stderr
