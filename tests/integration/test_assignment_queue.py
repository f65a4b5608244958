"""A full team's queue, drained by the timers consumer as agents free up.

The real stack: PostgreSQL, the bundled broker, the relay, the projection
worker (it keeps the read model the API answers from) and the
timers worker, which reacts to resolves and reassignments.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.ticket import Ticket
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    MovableClock,
    Stack,
    admin,
    agent,
    customer,
    running_stack,
    stack_settings,
    ticket_events,
    wait_until,
)

TEAM = "Support"


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_stack(
            stack_settings(database_url, broker),
            clock=MovableClock(),
            projections=True,
        ) as running,
    ):
        yield running


def configure(stack: Stack, strategy: str) -> str:
    tenant = f"queue-{secrets.token_hex(4)}"
    stack.ticketing.settings_service.replace(
        admin(tenant),
        {
            "teams": [
                {
                    "name": TEAM,
                    "agents": [
                        {"id": "a1", "capacity": 1},
                        {"id": "a2", "capacity": 1},
                    ],
                },
                # Someone outside the team, to hand a ticket to.
                {"name": "Elsewhere", "agents": [{"id": "outsider"}]},
            ],
            "assignment_rules": [
                {"name": "everything", "assigned_team": TEAM, "strategy": strategy}
            ],
        },
    )
    return tenant


def assignments(stack: Stack, ticket_id: UUID) -> list[Any]:
    return [
        e
        for e in ticket_events(stack.ticketing, ticket_id)
        if isinstance(e, Ticket.TicketAssigned)
    ]


def assignee(stack: Stack, ticket_id: UUID) -> str | None:
    ticket: Ticket = stack.ticketing.app.repository.get(ticket_id)
    return ticket.assignee_id


@pytest.mark.parametrize("strategy", ["least_loaded", "round_robin"])
def test_waiting_tickets_go_to_the_agent_who_frees_up_in_arrival_order(
    stack: Stack, strategy: str
) -> None:
    tenant = configure(stack, strategy)
    tickets = stack.ticketing.tickets

    def open_ticket(title: str) -> Ticket:
        stack.clock.advance(timedelta(seconds=1))
        return tickets.create_ticket(customer(tenant), title=title).ticket

    first, second = open_ticket("first"), open_ticket("second")
    assert {first.assignee_id, second.assignee_id} == {"a1", "a2"}
    waiting = [open_ticket(f"waiting {n}") for n in (1, 2, 3)]
    for ticket in waiting:
        # Queued in the team, nobody picked, and why.
        (queued,) = assignments(stack, ticket.id)
        assert (queued.assignee_id, queued.team) == (None, TEAM)
        assert queued.reason["picked"] is None
        assert queued.reason["why"] == "every agent at capacity: queued"
    holder = {first.assignee_id: first.id, second.assignee_id: second.id}

    # a1 resolves their ticket: the oldest waiting ticket is theirs.
    stack.clock.advance(timedelta(minutes=5))
    tickets.resolve(
        agent(tenant, "a1"), holder["a1"], resolution="Done", resolution_code="fixed"
    )
    wait_until(
        lambda: assignee(stack, waiting[0].id) == "a1",
        what="the first waiting ticket to go to a1",
    )
    handed = assignments(stack, waiting[0].id)[-1]
    assert handed.actor["id"] == "auto-assignment"
    assert handed.timestamp == stack.clock.now
    assert handed.reason["rule"] == "team queue"
    assert handed.reason["strategy"] == strategy
    assert handed.reason["picked"] == "a1"
    assert handed.reason["queued_since"]
    assert handed.causation_id is not None
    assert handed.causation_id.startswith(f"{holder['a1']}:")  # the resolve event
    assert [assignee(stack, t.id) for t in waiting[1:]] == [None, None]

    # a2's ticket is handed to someone outside the team: a2 takes the next.
    tickets.assign(agent(tenant, "lead"), holder["a2"], assignee_id="outsider")
    wait_until(
        lambda: assignee(stack, waiting[1].id) == "a2",
        what="the second waiting ticket to go to a2",
    )
    assert assignee(stack, waiting[2].id) is None

    # a1 resolves the ticket they were handed: the last one is theirs.
    tickets.resolve(
        agent(tenant, "a1"), waiting[0].id, resolution="Done", resolution_code="fixed"
    )
    wait_until(
        lambda: assignee(stack, waiting[2].id) == "a1",
        what="the third waiting ticket to go to a1",
    )
    # Each waiting ticket was handed out exactly once.
    for ticket in waiting:
        assert len(assignments(stack, ticket.id)) == 2
