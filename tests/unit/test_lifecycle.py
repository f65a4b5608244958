"""The state machine, exhaustively: every state × every command."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from dotmac.ticketing.domain.enums import (
    LinkRelation,
    TicketCategory,
    TicketPriority,
    TicketStatus,
)
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Provenance("acme", Actor("agent-1", "agent"), "req-1")
CUSTOMER = Provenance("acme", Actor("cust-1", "customer"), "req-2")


def new_ticket() -> Ticket:
    return Ticket.create(
        ticket_id=uuid4(),
        number=1,
        title="Printer on fire",
        description="Smoke everywhere",
        category=TicketCategory.GENERAL,
        priority=TicketPriority.NORMAL,
        channel="web",
        customer_id="cust-1",
        customer_email=None,
        tags=[],
        custom_fields={},
        provenance=CUSTOMER,
        at=T0,
    )


def ticket_in(status: TicketStatus) -> Ticket:
    t = new_ticket()
    if status == TicketStatus.NEW:
        return t
    t.assign(assignee_id="agent-1", provenance=AGENT, at=T0)
    if status in {TicketStatus.IN_PROGRESS, TicketStatus.PENDING, TicketStatus.ON_HOLD}:
        t.change_status(status, provenance=AGENT, at=T0)
    if status in {TicketStatus.RESOLVED, TicketStatus.CLOSED}:
        t.resolve(resolution="done", resolution_code="fixed", provenance=AGENT, at=T0)
    if status == TicketStatus.CLOSED:
        t.close(provenance=AGENT, at=T0)
    assert t.status == status
    return t


def other_status(status: TicketStatus) -> TicketStatus:
    if status == TicketStatus.IN_PROGRESS:
        return TicketStatus.ON_HOLD
    return TicketStatus.IN_PROGRESS


COMMANDS: dict[str, Callable[[Ticket], object]] = {
    "update": lambda t: t.update(
        title="Printer still on fire", provenance=AGENT, at=T0
    ),
    "categorize": lambda t: t.categorize(
        TicketCategory.BILLING, provenance=AGENT, at=T0
    ),
    "change_priority": lambda t: t.change_priority(
        TicketPriority.URGENT, provenance=AGENT, at=T0
    ),
    "assign": lambda t: t.assign(assignee_id="agent-2", provenance=AGENT, at=T0),
    "unassign": lambda t: t.unassign(provenance=AGENT, at=T0),
    "change_status": lambda t: t.change_status(
        other_status(t.status), provenance=AGENT, at=T0
    ),
    "comment": lambda t: t.add_comment(
        "hello", internal=False, provenance=AGENT, at=T0
    ),
    "attach": lambda t: t.add_attachment(
        attachment_id="a1",
        filename="log.txt",
        content_type="text/plain",
        size=3,
        sha256="0" * 64,
        provenance=AGENT,
        at=T0,
    ),
    "escalate": lambda t: t.escalate(reason="angry", provenance=AGENT, at=T0),
    "resolve": lambda t: t.resolve(
        resolution="ok", resolution_code="fixed", provenance=AGENT, at=T0
    ),
    "reopen": lambda t: t.reopen(reason="not fixed", provenance=AGENT, at=T0),
    "close": lambda t: t.close(provenance=AGENT, at=T0),
    "merge": lambda t: t.merge_into(new_ticket(), provenance=AGENT, at=T0),
    "link": lambda t: t.link(uuid4(), LinkRelation.BLOCKS, provenance=AGENT, at=T0),
    "rate": lambda t: t.rate_satisfaction(
        5, comment="thanks", provenance=CUSTOMER, at=T0
    ),
}

ACTIVE = ["new", "open", "in_progress", "pending", "on_hold"]
# Written out by hand, independently of domain.lifecycle, as the spec says.
EXPECTED_ALLOWED: dict[str, set[str]] = {
    "update": set(ACTIVE),
    "categorize": set(ACTIVE),
    "change_priority": set(ACTIVE),
    "assign": set(ACTIVE),
    "unassign": set(ACTIVE),
    "change_status": set(ACTIVE),
    "comment": {*ACTIVE, "resolved"},
    "attach": {*ACTIVE, "resolved"},
    "escalate": set(ACTIVE),
    "resolve": set(ACTIVE),
    "reopen": {"resolved"},
    "close": {"resolved"},
    "merge": {*ACTIVE, "resolved"},
    "link": {*ACTIVE, "resolved"},
    "rate": {"resolved"},
}


@pytest.mark.parametrize("status", list(TicketStatus))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_in_every_state(status: TicketStatus, command: str) -> None:
    ticket = ticket_in(status)
    version = ticket.version
    if status.value in EXPECTED_ALLOWED[command]:
        COMMANDS[command](ticket)
    else:
        with pytest.raises(CommandRefused) as refused:
            COMMANDS[command](ticket)
        # The message names the command and the state.
        assert status.value in str(refused.value)
        assert command in str(refused.value)
        # A refused command leaves no event.
        assert ticket.version == version
        assert ticket.status == status


@pytest.mark.parametrize("status", ACTIVE)
def test_no_state_goes_back_to_new(status: str) -> None:
    ticket = ticket_in(TicketStatus(status))
    if status == "new":
        assert ticket.change_status("new", provenance=AGENT, at=T0) is False
        return
    with pytest.raises(CommandRefused, match="new"):
        ticket.change_status(TicketStatus.NEW, provenance=AGENT, at=T0)


@pytest.mark.parametrize("status", ACTIVE)
def test_setting_the_current_state_again_is_a_no_op(status: str) -> None:
    ticket = ticket_in(TicketStatus(status))
    version = ticket.version
    assert ticket.change_status(status, provenance=AGENT, at=T0) is False
    assert ticket.version == version


@pytest.mark.parametrize("target", ["resolved", "closed"])
def test_status_change_does_not_resolve_or_close(target: str) -> None:
    ticket = ticket_in(TicketStatus.OPEN)
    with pytest.raises(CommandRefused, match=f"use {target[:-1]}"):
        ticket.change_status(target, provenance=AGENT, at=T0)


def test_assigning_a_new_ticket_opens_it_and_keeps_other_states() -> None:
    ticket = new_ticket()
    ticket.assign(team="Billing", provenance=AGENT, at=T0)
    assert ticket.status == TicketStatus.OPEN
    assert ticket.assigned_team == "Billing"
    ticket.change_status("on_hold", provenance=AGENT, at=T0)
    ticket.assign(assignee_id="agent-9", provenance=AGENT, at=T0)
    assert ticket.status == TicketStatus.ON_HOLD
    assert (ticket.assignee_id, ticket.assigned_team) == ("agent-9", "Billing")


def test_reopen_counts_and_goes_back_to_open() -> None:
    ticket = ticket_in(TicketStatus.RESOLVED)
    ticket.reopen(reason="still broken", provenance=CUSTOMER, at=T0)
    assert ticket.status == TicketStatus.OPEN
    assert ticket.reopen_count == 1
    assert ticket.resolved_at is None
    ticket.resolve(resolution="ok", resolution_code="fixed", provenance=AGENT, at=T0)
    ticket.reopen(reason="again", provenance=CUSTOMER, at=T0)
    assert ticket.reopen_count == 2


@pytest.mark.parametrize("status", [*ACTIVE, "resolved"])
def test_merge_closes_from_any_open_state(status: str) -> None:
    source, target = ticket_in(TicketStatus(status)), new_ticket()
    source.merge_into(target, provenance=AGENT, at=T0)
    assert source.status == TicketStatus.CLOSED
    assert source.merged_into == str(target.id)
    assert {"ticket_id": str(source.id), "relation": "merged_from"} in target.links


def test_closed_is_final_even_for_merge_and_reopen() -> None:
    ticket = ticket_in(TicketStatus.CLOSED)
    for command in COMMANDS.values():
        with pytest.raises(CommandRefused, match="closed"):
            command(ticket)


def test_pending_pauses_the_resolution_clock() -> None:
    ticket = ticket_in(TicketStatus.OPEN)
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 3, 4))
    ticket.change_status("pending", provenance=AGENT, at=t1)
    ticket.change_status("on_hold", provenance=AGENT, at=t2)
    ticket.change_status("pending", provenance=AGENT, at=t3)
    ticket.resolve(resolution="ok", resolution_code="fixed", provenance=AGENT, at=t3)
    assert ticket.resolution_pauses == [
        {"start": t1, "end": t2},
        {"start": t3, "end": t3},
    ]


def test_first_public_agent_reply_is_the_first_response() -> None:
    ticket = ticket_in(TicketStatus.OPEN)
    later = T0 + timedelta(minutes=5)
    ticket.add_comment("note to self", internal=True, provenance=AGENT, at=T0)
    ticket.add_comment("any news?", internal=False, provenance=CUSTOMER, at=T0)
    assert ticket.first_response_at is None
    ticket.add_comment("looking", internal=False, provenance=AGENT, at=later)
    ticket.add_comment(
        "again", internal=False, provenance=AGENT, at=later + later.resolution
    )
    assert ticket.first_response_at == later


def test_customers_cannot_write_internal_notes() -> None:
    ticket = ticket_in(TicketStatus.OPEN)
    with pytest.raises(InvalidCommand):
        ticket.add_comment("psst", internal=True, provenance=CUSTOMER, at=T0)


def test_escalating_to_another_team_hands_the_ticket_over() -> None:
    ticket = ticket_in(TicketStatus.OPEN)
    ticket.assign(team="Support", provenance=AGENT, at=T0)
    # To the team that holds it: nothing changes, nothing is recorded.
    assert ticket.escalate(reason="hard", team="Support", provenance=AGENT, at=T0) == 0
    assert ticket.assignee_id == "agent-1"
    assert ticket.escalate(reason="harder", team="Eng", provenance=AGENT, at=T0) == 1
    assert (ticket.assigned_team, ticket.assignee_id) == ("Eng", None)
