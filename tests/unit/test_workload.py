"""A ticket's workload row: its state, the events that move it, one per ticket."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from dotmac.ticketing.domain import ticket_events
from dotmac.ticketing.domain.workload import (
    WORKLOAD_EVENTS,
    WorkloadRow,
    latest_per_ticket,
)

# What moves a row: the assignee, the team, the status.
_MOVES = re.compile(r"\.(assignee_id|assigned_team)\s*=|_enter_status\(")


def test_the_workload_events_are_those_that_set_assignee_team_or_status() -> None:
    events = [
        cls
        for cls in vars(ticket_events).values()
        if inspect.isclass(cls)
        and issubclass(cls, ticket_events.Event)
        and cls is not ticket_events.Event
    ]
    moving = {cls for cls in events if _MOVES.search(inspect.getsource(cls))}

    assert moving == set(WORKLOAD_EVENTS)


def _row(ticket_id: object, version: int, assignee: str | None) -> WorkloadRow:
    return WorkloadRow(
        tenant_id="t",
        ticket_id=ticket_id,  # type: ignore[arg-type]
        version=version,
        assignee_id=assignee,
        team="Support",
        active=True,
        number=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=version),
    )


def test_one_row_per_ticket_keeps_the_highest_version() -> None:
    first, second = uuid4(), uuid4()
    rows = [_row(first, 3, "ann"), _row(second, 1, None), _row(first, 2, "bob")]

    assert latest_per_ticket(rows) == [_row(first, 3, "ann"), _row(second, 1, None)]
