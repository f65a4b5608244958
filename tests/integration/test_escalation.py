"""Escalation rules fired by the timers, on fake time, with the real broker.

One stack for the module (PostgreSQL, the bundled broker, the relay, the
timers consumer and firing loop, the projection worker for the new team's
loads), all on one movable clock; each test has its own tenant and moves
the clock forward from wherever the previous test left it.

"Nothing happened" is only asserted after a later deadline of the same
ticket has fired: the loop claims due rows in due order, so once it has
fired that one it has seen everything due before it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.enums import TicketPriority
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.bootstrap import Ticketing
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    MovableClock,
    Stack,
    admin,
    agent,
    customer,
    names,
    running_stack,
    stack_settings,
    supervisor,
    ticket_events,
    wait_until,
)

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
RULE = "critical_escalation"


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_stack(
            stack_settings(database_url, broker),
            clock=MovableClock(),
            projections=True,
            notifier=True,
        ) as running,
    ):
        yield running


def configure(
    stack: Stack, *, requires_approval: bool, tenant: str | None = None
) -> str:
    """A tenant with the issue's escalation rule (default SLA targets)."""
    tenant = tenant or f"esc-{secrets.token_hex(4)}"
    stack.ticketing.settings_service.replace(
        admin(tenant),
        {
            "teams": [
                {
                    "name": "Support",
                    "agents": [
                        {"id": "agent-1"},
                        {"id": "lead-1", "role": "supervisor"},
                    ],
                },
                {"name": "Engineering", "agents": [{"id": "eng-1"}]},
            ],
            "escalation_rules": [
                {
                    "name": RULE,
                    "conditions": {"priority": "critical"},
                    "measured_from": "last_update",
                    "escalation_time_hours": 1,
                    "escalate_to_team": "Engineering",
                    "level": 1,
                    "requires_approval": requires_approval,
                }
            ],
        },
    )
    return tenant


def open_critical(stack: Stack, tenant: str, title: str = "Down") -> UUID:
    result = stack.ticketing.tickets.create_ticket(
        customer(tenant), title=title, priority=TicketPriority.CRITICAL
    )
    return result.ticket.id


def of_kind(
    ticketing: Ticketing, ticket_id: UUID, kind: type[Ticket.Event]
) -> list[Any]:
    return [e for e in ticket_events(ticketing, ticket_id) if isinstance(e, kind)]


def wait_for_event(
    stack: Stack, ticket_id: UUID, kind: type[Ticket.Event], count: int = 1
) -> list[Any]:
    return wait_until(
        lambda: (
            found
            if len(found := of_kind(stack.ticketing, ticket_id, kind)) >= count
            else None
        ),
        what=f"{kind.__name__} #{count} on {ticket_id}",
    )


def wait_for_breach(stack: Stack, ticket_id: UUID, target: str) -> None:
    """A later deadline of the ticket fired: everything due before it has."""
    wait_until(
        lambda: any(
            e.target == target
            for e in of_kind(stack.ticketing, ticket_id, Ticket.SLABreached)
        ),
        what=f"the {target} breach of {ticket_id}",
    )


def escalation_rows(stack: Stack, ticket_id: UUID) -> list[tuple[str, datetime]]:
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT key, due_at FROM timer_deadlines"
            " WHERE ticket_id = %s AND kind = 'escalation'",
            (ticket_id,),
        ).fetchall()
    return [(key, due_at) for key, due_at in rows]


def test_a_critical_ticket_untouched_for_an_hour_is_escalated_once(
    stack: Stack,
) -> None:
    tenant = configure(stack, requires_approval=False)
    clock = stack.clock
    start = clock.now
    untouched = open_critical(stack, tenant, "Untouched")
    worked_on = open_critical(stack, tenant, "Worked on")

    # Half an hour in, an agent answers the second ticket: its hour restarts.
    clock.set(start + 30 * MINUTE)
    stack.ticketing.tickets.add_comment(
        agent(tenant), worked_on, body="Looking into it"
    )
    wait_until(
        lambda: escalation_rows(stack, worked_on) == [(RULE, start + 90 * MINUTE)],
        what="the postponed threshold",
    )

    # A minute short of the hour: the first-response breach (15 min) fires,
    # the escalation does not.
    clock.set(start + 59 * MINUTE)
    wait_for_breach(stack, untouched, "first_response")
    assert of_kind(stack.ticketing, untouched, Ticket.TicketEscalated) == []

    clock.set(start + 60 * MINUTE)
    (escalated,) = wait_for_event(stack, untouched, Ticket.TicketEscalated)
    assert escalated.timestamp == start + 60 * MINUTE
    assert (escalated.level, escalated.team, escalated.rule) == (
        1,
        "Engineering",
        RULE,
    )
    # The new team's only agent takes it; the automation is on record.
    assert escalated.assignee_id == "eng-1"
    assert escalated.actor == {
        "id": "escalation-rules",
        "role": "automation",
        "kind": "automation",
    }
    assert escalated.causation_id.startswith(f"timer:{untouched}:escalation:{RULE}")
    assert of_kind(stack.ticketing, worked_on, Ticket.TicketEscalated) == []
    # Engineering hears of it, once: its member listed in the tenant settings.
    notified = wait_until(
        lambda: inapp(stack, tenant, "eng-1", untouched) or None,
        what="Engineering's notification of the escalation",
    )
    assert notified == ["ticketing.ticket.ticket_escalated.v1"]

    # The worked-on ticket goes an hour after its last activity, not before.
    clock.set(start + 89 * MINUTE)
    assert of_kind(stack.ticketing, worked_on, Ticket.TicketEscalated) == []
    clock.set(start + 90 * MINUTE)
    (later,) = wait_for_event(stack, worked_on, Ticket.TicketEscalated)
    assert later.timestamp == start + 90 * MINUTE
    assert later.rule == RULE

    # Hours later (both resolution clocks breached at 4 h): still once each.
    clock.set(start + 5 * HOUR)
    wait_for_breach(stack, untouched, "resolution")
    wait_for_breach(stack, worked_on, "resolution")
    for ticket_id in (untouched, worked_on):
        assert len(of_kind(stack.ticketing, ticket_id, Ticket.TicketEscalated)) == 1
        assert escalation_rows(stack, ticket_id) == []


def test_a_rule_that_requires_approval_waits_for_the_supervisor(
    stack: Stack,
) -> None:
    tenant = configure(stack, requires_approval=True)
    clock = stack.clock
    start = clock.now
    ticket_id = open_critical(stack, tenant)

    clock.set(start + HOUR)
    (request,) = wait_for_event(stack, ticket_id, Ticket.EscalationRequested)
    assert request.timestamp == start + HOUR
    assert (request.level, request.team, request.rule) == (1, "Engineering", RULE)
    assert request.actor["kind"] == "automation"

    # It waits: hours later there is still one request and no escalation.
    clock.set(start + 5 * HOUR)
    wait_for_breach(stack, ticket_id, "resolution")
    history = names(ticket_events(stack.ticketing, ticket_id))
    assert history.count("EscalationRequested") == 1
    assert "TicketEscalated" not in history

    clock.set(start + 5 * HOUR + MINUTE)
    stack.ticketing.tickets.approve_escalation(
        supervisor(tenant), ticket_id, comment="Go ahead"
    )
    (escalated,) = of_kind(stack.ticketing, ticket_id, Ticket.TicketEscalated)
    assert (escalated.level, escalated.team, escalated.rule) == (
        1,
        "Engineering",
        RULE,
    )
    assert escalated.actor["id"] == "lead-1"
    # The new team's agent holds it now: a new ticket opens, as on assign.
    assert names(ticket_events(stack.ticketing, ticket_id))[-3:] == [
        "EscalationApproved",
        "TicketEscalated",
        "StatusChanged",
    ]


def test_a_rejected_escalation_is_not_asked_for_again(stack: Stack) -> None:
    tenant = configure(stack, requires_approval=True)
    clock = stack.clock
    start = clock.now
    ticket_id = open_critical(stack, tenant)

    clock.set(start + HOUR)
    wait_for_event(stack, ticket_id, Ticket.EscalationRequested)
    clock.set(start + HOUR + MINUTE)
    stack.ticketing.tickets.reject_escalation(
        supervisor(tenant), ticket_id, comment="Not needed"
    )
    wait_until(
        lambda: escalation_rows(stack, ticket_id) == [],
        what="the rejected rule's deadline to go",
    )

    # The rejection was activity; an hour after it, and long after, nothing.
    for hours in (2, 3, 5):
        clock.set(start + hours * HOUR + MINUTE)
    wait_for_breach(stack, ticket_id, "resolution")
    history = names(ticket_events(stack.ticketing, ticket_id))
    assert history.count("EscalationRequested") == 1
    assert history.count("EscalationRejected") == 1
    assert "TicketEscalated" not in history


def test_a_rule_added_later_reaches_tickets_that_already_wait(stack: Stack) -> None:
    """Settings changes recompute open tickets' deadlines without new events."""
    tenant = f"esc-{secrets.token_hex(4)}"
    clock = stack.clock
    start = clock.now
    ticket_id = open_critical(stack, tenant, title="Quietly down")
    wait_until(
        lambda: (
            escalation_rows(stack, ticket_id) == [] and ticket_rows(stack, ticket_id)
        ),
        what="the ticket's first deadlines (no rules yet)",
    )

    # The admin adds the rule; the ticket itself does not change.
    configure(stack, requires_approval=False, tenant=tenant)
    (row,) = wait_until(
        lambda: escalation_rows(stack, ticket_id) or None,
        what="the new rule's deadline on the waiting ticket",
    )
    assert row == (RULE, start + HOUR)

    clock.set(start + HOUR)
    (escalated,) = wait_for_event(stack, ticket_id, Ticket.TicketEscalated)
    assert (escalated.rule, escalated.team) == (RULE, "Engineering")


def ticket_rows(stack: Stack, ticket_id: UUID) -> bool:
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute(
            "SELECT 1 FROM timer_tickets WHERE ticket_id = %s", (ticket_id,)
        ).fetchone()
    return row is not None


def inapp(stack: Stack, tenant: str, user_id: str, ticket_id: UUID) -> list[str]:
    """The event types of a user's in-app notifications about a ticket."""
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT event_type FROM inapp_notifications"
            " WHERE tenant_id = %s AND user_id = %s AND ticket_id = %s"
            " ORDER BY created_at",
            (tenant, user_id, ticket_id),
        ).fetchall()
    return [row[0] for row in rows]
