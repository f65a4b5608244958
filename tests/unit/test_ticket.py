"""Ticket rules beyond the state machine: validation, no-ops, replay."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate

from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket, normalize_tags

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Provenance("acme", Actor("agent-1", "agent"), "req-1")


def create(**overrides: object) -> Ticket:
    fields: dict[str, object] = {
        "ticket_id": uuid4(),
        "number": 7,
        "title": "  Printer on fire  ",
        "description": "",
        "category": "general",
        "priority": "normal",
        "channel": "email",
        "customer_id": "cust-1",
        "customer_email": "c@example.com",
        "tags": [],
        "custom_fields": {},
        "provenance": AGENT,
        "at": T0,
    }
    fields.update(overrides)
    return Ticket.create(**fields)  # type: ignore[arg-type]


def test_tags_are_trimmed_lowercased_and_deduplicated() -> None:
    assert normalize_tags([" VPN", "vpn", "", "Network "]) == ["vpn", "network"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": [f"t{n}" for n in range(31)]}, "tags"),
        ({"custom_fields": {"": 1}}, "custom_fields"),
        ({"custom_fields": {"k": {"nested": True}}}, "custom_fields.k"),
        ({"customer_id": " "}, "customer_id"),
    ],
)
def test_invalid_fields_are_refused(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        create(**overrides)
    assert refused.value.field == field


def test_title_is_trimmed() -> None:
    assert create().title == "Printer on fire"


def test_assign_needs_someone_and_repeating_it_is_a_no_op() -> None:
    ticket = create()
    with pytest.raises(InvalidCommand):
        ticket.assign(provenance=AGENT, at=T0)
    assert ticket.assign(assignee_id="a", provenance=AGENT, at=T0) is True
    assert ticket.assign(assignee_id="a", provenance=AGENT, at=T0) is False
    assert ticket.version == 2


def test_another_tenant_cannot_write_to_the_stream() -> None:
    ticket = create()
    intruder = Provenance("evil", Actor("x", "admin"))
    with pytest.raises(CommandRefused):
        ticket.assign(assignee_id="x", provenance=intruder, at=T0)


def test_replaying_the_events_rebuilds_the_same_ticket() -> None:
    ticket = create(tags=["a"])
    ticket.assign(assignee_id="agent-1", team="Ops", provenance=AGENT, at=T0)
    ticket.add_comment("hi", internal=False, provenance=AGENT, at=T0)
    ticket.change_status("pending", provenance=AGENT, at=T0)
    ticket.resolve(resolution="ok", resolution_code="fixed", provenance=AGENT, at=T0)
    events = ticket.collect_events()
    replayed = project_aggregate(None, events)
    assert replayed is not None
    assert vars(replayed) == vars(ticket)


def test_an_escalation_that_hands_a_new_ticket_to_someone_opens_it() -> None:
    ticket = create()
    ticket.escalate(
        reason="VIP", team="Engineering", assignee_id="eng-1", provenance=AGENT, at=T0
    )
    assert (ticket.status.value, ticket.assignee_id) == ("open", "eng-1")
    events = [type(e).__name__ for e in ticket.collect_events()]
    assert events[-2:] == ["TicketEscalated", "StatusChanged"]
    # Into a team's queue (nobody holds it), it stays new.
    queued = create()
    queued.escalate(reason="VIP", team="Engineering", provenance=AGENT, at=T0)
    assert (queued.status.value, queued.assignee_id) == ("new", None)


def test_only_an_automations_public_comment_acknowledges() -> None:
    ticket = create()
    workflow = Provenance("acme", Actor.automation("workflow:customer_support"))
    ticket.add_comment(
        "Received", internal=False, acknowledgment=True, provenance=workflow, at=T0
    )
    (event,) = [
        e for e in ticket.collect_events() if isinstance(e, Ticket.CommentAdded)
    ]
    assert event.acknowledgment is True
    for internal, who in ((False, AGENT), (True, workflow)):
        with pytest.raises(InvalidCommand, match="acknowledgment"):
            ticket.add_comment(
                "Received",
                internal=internal,
                acknowledgment=True,
                provenance=who,
                at=T0,
            )


def test_an_escalation_that_changes_nothing_is_not_recorded() -> None:
    ticket = create()
    ticket.assign(team="Support", assignee_id="ann", provenance=AGENT, at=T0)
    ticket.collect_events()

    # The current team, or no team (the current team keeps it): nothing moves.
    for team in ("Support", None):
        assert ticket.escalate(reason="again", team=team, provenance=AGENT, at=T0) == 0
    assert ticket.collect_events() == []
    assert (ticket.assigned_team, ticket.assignee_id, ticket.escalation_level) == (
        "Support",
        "ann",
        0,
    )
    # Another agent of the same team, or another team, is a hand-over.
    assert (
        ticket.escalate(
            reason="expert", team="Support", assignee_id="bob", provenance=AGENT, at=T0
        )
        == 1
    )
    assert ticket.escalate(reason="hw", team="Eng", provenance=AGENT, at=T0) == 2
    escalated = [type(e).__name__ for e in ticket.collect_events()]
    assert escalated == ["TicketEscalated", "TicketEscalated"]


def test_an_agents_public_reply_may_be_marked_as_the_solution() -> None:
    ticket = create()
    ticket.add_comment(
        "Set MTU 1400", internal=False, solution=True, provenance=AGENT, at=T0
    )
    ticket.add_comment("Which MTU?", internal=False, provenance=AGENT, at=T0)
    assert [c["solution"] for c in ticket.comments] == [True, False]
    customer = Provenance("acme", Actor("cust-1", "customer"))
    workflow = Provenance("acme", Actor.automation("workflow:technical_support"))
    for internal, who in ((True, AGENT), (False, customer), (False, workflow)):
        with pytest.raises(InvalidCommand, match="solution"):
            ticket.add_comment(
                "x", internal=internal, solution=True, provenance=who, at=T0
            )
    events = ticket.collect_events()
    replayed = project_aggregate(None, events)
    assert replayed is not None and replayed.comments == ticket.comments


def test_a_comment_stored_before_the_solution_flag_loads_as_no_solution() -> None:
    ticket = create()
    ticket.add_comment("Try again", internal=False, provenance=AGENT, at=T0)
    created, added = ticket.collect_events()
    # What the event store's mapper does with a stored event's state.
    state = {k: v for k, v in vars(added).items() if k != "solution"}
    old = object.__new__(Ticket.CommentAdded)
    old.__dict__.update(state)
    replayed = project_aggregate(None, [created, old])
    assert replayed is not None
    assert replayed.comments[0]["solution"] is False
