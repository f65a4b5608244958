"""Macro actions as values: checked against the tenant, applied as commands."""

from __future__ import annotations

import re

import pytest

from dotmac.ticketing.domain.enums import TicketPriority, TicketStatus
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.limits import TEMPLATE_PATTERN
from dotmac.ticketing.domain.macro_actions import (
    Assign,
    Reply,
    SetPriority,
    SetStatus,
    SetTags,
    action_document,
    action_from,
    apply_actions,
    check_actions,
    check_template,
)
from dotmac.ticketing.domain.tenant_config import parse
from tests.unit.test_ticket import AGENT, T0, create

CONFIG = parse({"teams": [{"name": "Billing", "agents": [{"id": "bea"}]}]})


def no_policy(ticket: object) -> None:
    return None


@pytest.mark.parametrize(
    ("template", "accepted"),
    [
        ("Hello {{ customer.name }}, #{{ticket.number}}", True),
        ("50% off {braces} and #hash }", True),
        ("{{ ticket.secret }}", False),
        ("{% for x in y %}{% endfor %}", False),
        ("{# note #}", False),
        ("{{{ ticket.number }}", False),
        ("a }} b", False),
        ("   ", False),
    ],
)
def test_templates_take_known_placeholders_only(template: str, accepted: bool) -> None:
    # The contract's pattern and the domain's check agree.
    assert bool(re.fullmatch(TEMPLATE_PATTERN, template)) is accepted
    if accepted:
        check_template("body", template)
    else:
        with pytest.raises(InvalidCommand):
            check_template("body", template)


def test_the_check_names_the_action_at_fault() -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_actions([SetPriority(TicketPriority.HIGH), Assign(team="Nobody")], CONFIG)
    assert refused.value.field == "actions[1].team"
    with pytest.raises(InvalidCommand) as refused:
        check_actions([Assign(team="Billing", assignee_id="zed")], CONFIG)
    assert refused.value.field == "actions[0].assignee_id"
    with pytest.raises(InvalidCommand) as refused:
        check_actions([SetStatus(TicketStatus.CLOSED)], CONFIG)
    assert refused.value.field == "actions[0].status"
    with pytest.raises(InvalidCommand):
        check_actions([], CONFIG)


def test_stored_form_reads_back() -> None:
    actions = [
        SetPriority(TicketPriority.URGENT),
        SetTags(add=("vip",), remove=("triage",)),
        Assign(team="Billing"),
        Reply("Hi {{ customer.name }}", internal=True),
    ]
    assert [action_from(action_document(a)) for a in actions] == actions


def test_actions_run_in_order_as_the_tickets_commands() -> None:
    ticket = create(tags=["triage"], customer_name="Ada")
    recorded = apply_actions(
        ticket,
        [
            SetPriority(TicketPriority.HIGH),
            SetTags(add=("vip",), remove=("triage",)),
            Assign(team="Billing", assignee_id="bea"),
            Reply("Hi {{ customer.name }}, #{{ ticket.number }} ({{ ticket.team }})"),
        ],
        provenance=AGENT,
        at=T0,
        policy_for=no_policy,
    )
    assert recorded == 4
    assert [type(e).__name__ for e in ticket.pending_events[-4:]] == [
        "PriorityChanged",
        "TicketUpdated",
        "TicketAssigned",
        "CommentAdded",
    ]
    assert ticket.tags == ["vip"]
    assert ticket.comments[-1]["body"] == "Hi Ada, #7 (Billing)"
    # Applied again, only the reply is new; with its id given, not even that.
    again = apply_actions(
        ticket,
        [SetPriority(TicketPriority.HIGH), Reply("Once")],
        provenance=AGENT,
        at=T0,
        policy_for=no_policy,
        comment_id=lambda index: "fixed",
    )
    assert again == 1
    assert (
        apply_actions(
            ticket,
            [Reply("Once")],
            provenance=AGENT,
            at=T0,
            policy_for=no_policy,
            comment_id=lambda index: "fixed",
        )
        == 0
    )


def test_a_refused_action_raises_for_the_caller_to_save_nothing() -> None:
    ticket = create()
    ticket.resolve(resolution="done", resolution_code="fixed", provenance=AGENT, at=T0)
    ticket.close(provenance=AGENT, at=T0)
    with pytest.raises(CommandRefused):
        apply_actions(
            ticket,
            [SetPriority(TicketPriority.HIGH)],
            provenance=AGENT,
            at=T0,
            policy_for=no_policy,
        )
