"""The what-if replay (``domain.simulation``) on streams recorded in memory.

A stream is recorded the way the service records it (the ticket created
under the tenant's policy, the auto-assignment, the timers' ``check_sla``
and escalation commands at their deadlines); replayed under the same
settings it must decide the same, and under other settings otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from dotmac.ticketing.domain.assignment import choose_assignment
from dotmac.ticketing.domain.deadlines import facts_of
from dotmac.ticketing.domain.escalation_rules import escalation_calendar
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.simulation import (
    Automations,
    LoadBook,
    Proposal,
    Tally,
    outcome_of,
    replay_ticket,
)
from dotmac.ticketing.domain.sla import policy_for
from dotmac.ticketing.domain.tenant_config import TenantConfig, parse
from dotmac.ticketing.domain.ticket import Ticket

TENANT = "t-sim"
NAMES = Automations("sla-timer", "escalation-rules", "auto-assignment")
CUSTOMER = Provenance(TENANT, Actor("cust-1", "customer"))
AGENT = Provenance(TENANT, Actor("agent-1", "agent"))
TIMER = Provenance(TENANT, Actor.automation(NAMES.sla_timer))
RULES = Provenance(TENANT, Actor.automation(NAMES.escalation_rules))
T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(hours=6)


def document(**overrides: Any) -> dict[str, Any]:
    return {
        "sla_config": {
            "normal": {"response": 30, "resolution": 240},
            "warning_percent": 50,
        },
        "teams": [
            {"name": "Support", "agents": [{"id": "agent-1"}, {"id": "agent-2"}]},
            {"name": "Tier2", "agents": [{"id": "t2-1"}]},
        ],
        "assignment_rules": [
            {
                "name": "all",
                "conditions": {},
                "assigned_team": "Support",
                "priority": 0,
                "strategy": "round_robin",
            }
        ],
        "escalation_rules": [
            {
                "name": "stale",
                "conditions": {"priority": ["normal"]},
                "level": 1,
                "escalation_time_hours": 2,
                "escalate_to_team": "Tier2",
            }
        ],
        **overrides,
    }


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_ticket(config: TenantConfig, number: int, title: str) -> Ticket:
    """A normal ticket the customer opened at ``T0``, on the tenant's SLA."""
    return Ticket.create(
        ticket_id=uuid4(),
        number=number,
        title=title,
        description="",
        category="technical_support",  # type: ignore[arg-type]
        priority="normal",  # type: ignore[arg-type]
        channel="web",  # type: ignore[arg-type]
        customer_id="cust-1",
        customer_email=None,
        tags=[],
        custom_fields={},
        provenance=CUSTOMER,
        at=T0,
        sla_policy=policy_for(config, 1, facts_of_new(config)),
    )


def recorded(config: TenantConfig, *, answer_at: float | None) -> list[Ticket.Event]:
    """A normal ticket as the service and its timers record it."""
    ticket = new_ticket(config, 1, "VPN drops")
    decision = choose_assignment(config, facts_of(ticket), loads={}, turn=0)
    assert decision is not None
    ticket.assign(
        assignee_id=decision.agent_id,
        team=decision.team,
        reason=decision.reason,
        provenance=CUSTOMER.acting_as(NAMES.auto_assignment, causation_id=None),
        at=T0,
    )
    ticket.check_sla(provenance=TIMER, at=at(15))  # the warning
    if answer_at is not None:
        ticket.add_comment("on it", internal=False, provenance=AGENT, at=at(answer_at))
    else:
        ticket.check_sla(provenance=TIMER, at=at(30))  # the breach
    # Two hours after its creation, still open: the rule escalates it.
    rule = config.escalation_rule("stale")
    verdict = ticket.judge_escalation_rule(
        rule,
        rule_name="stale",
        calendar=escalation_calendar(config, ticket.assigned_team),
        now=at(120),
    )
    ticket.apply_escalation_rule(
        rule,
        verdict,
        assignee_id="t2-1",
        assignment={"strategy": "least_loaded", "team": "Tier2"},
        provenance=RULES,
        at=at(120),
    )
    ticket.check_sla(provenance=TIMER, at=at(120))  # resolution warning
    ticket.resolve(
        resolution="fixed", resolution_code="fixed", provenance=AGENT, at=at(200)
    )
    return list(ticket.collect_events())  # type: ignore[arg-type]


def facts_of_new(config: TenantConfig) -> TicketFacts:
    return TicketFacts(
        category="technical_support",
        priority="normal",
        channel="web",
        tags=(),
        custom_fields={},
        title="VPN drops",
        description="",
    )


def replayed(
    stream: list[Ticket.Event], config: TenantConfig, until: datetime = UNTIL
) -> list[Ticket.Event]:
    proposal = Proposal(config, 1, NAMES)
    return replay_ticket(stream, proposal, until=until, book=LoadBook()).events


def test_the_current_settings_decide_what_was_recorded() -> None:
    config = parse(document())
    for answer_at in (20, None):
        stream = recorded(config, answer_at=answer_at)
        assert outcome_of(replayed(stream, config)) == outcome_of(stream)


def test_the_unanswered_ticket_warns_breaches_and_escalates() -> None:
    config = parse(document())
    outcome = outcome_of(replayed(recorded(config, answer_at=None), config))
    states = {(run.target, run.state, run.warned) for run in outcome.clocks}
    assert states == {("first_response", "breached", True), ("resolution", "met", True)}
    assert outcome.escalations == ("stale",)
    assert outcome.assignments == ("Support",)
    assert outcome.final_team == "Tier2"


def test_a_stricter_first_response_breaches_the_answered_ticket() -> None:
    stream = recorded(parse(document()), answer_at=20)
    stricter = parse(
        document(sla_config={"normal": {"response": 10, "resolution": 240}})
    )
    before, after = outcome_of(stream), outcome_of(replayed(stream, stricter))
    assert [r.state for r in before.clocks if r.target == "first_response"] == ["met"]
    assert [r.state for r in after.clocks if r.target == "first_response"] == [
        "breached"
    ]
    tally = Tally()
    tally.add(after)
    report = tally.report()
    assert report["sla"]["first_response"]["normal"]["compliance"] == 0.0
    assert report["breaches"] == 1


def test_without_the_rules_nobody_assigns_or_escalates() -> None:
    stream = recorded(parse(document()), answer_at=None)
    bare = parse(document(assignment_rules=[], escalation_rules=[]))
    outcome = outcome_of(replayed(stream, bare))
    assert outcome.assignments == () and outcome.escalations == ()
    assert outcome.final_team is None
    # The facts stay: the ticket is still resolved, its clock met.
    resolution = [r for r in outcome.clocks if r.target == "resolution"]
    assert [r.state for r in resolution] == ["met"]


def test_round_robin_turns_follow_the_simulated_tickets() -> None:
    config = parse(document(escalation_rules=[]))
    book = LoadBook()
    proposal = Proposal(config, 1, NAMES)
    agents = []
    for _ in range(3):
        events = replay_ticket(
            recorded(config, answer_at=20), proposal, until=UNTIL, book=book
        ).events
        assigned = [e for e in events if isinstance(e, Ticket.TicketAssigned)]
        agents.append(assigned[0].assignee_id)
    assert agents == ["agent-1", "agent-2", "agent-1"]


def test_a_customers_answer_reopening_the_ticket_starts_a_next_reply_clock() -> None:
    """The reply clocks follow the reopen the answer caused (add_comment's order)."""
    config = parse(document(assignment_rules=[], escalation_rules=[]))
    ticket = new_ticket(config, 2, "Invoice")
    ticket.add_comment("hello", internal=False, provenance=AGENT, at=at(5))
    ticket.resolve(resolution="ok", resolution_code="fixed", provenance=AGENT, at=at(9))
    ticket.add_comment("still broken", internal=False, provenance=CUSTOMER, at=at(60))
    stream: list[Ticket.Event] = list(ticket.collect_events())  # type: ignore[arg-type]
    assert any(isinstance(e, Ticket.TicketReopened) for e in stream)
    # Followed to just after the answer: no timer is due yet.
    runs = outcome_of(replayed(stream, config, until=at(61))).clocks
    assert runs == outcome_of(stream).clocks
    assert ("next_reply", "open") in {(r.target, r.state) for r in runs}
