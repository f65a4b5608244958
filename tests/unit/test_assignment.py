"""Choosing the team and agent of a new ticket: rules, strategies, capacity."""

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dotmac.ticketing.domain.assignment import (
    AssignmentDecision,
    check_people,
    choose_assignment,
    find_team,
    pick_agent,
    team_agents_with_room,
)
from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.tenant_config import TeamConfig, parse

TICKET = TicketFacts(
    category="technical_support",
    priority="high",
    channel="email",
    tags=("vpn",),
    custom_fields={},
    title="VPN drops",
    description="",
)


def agent(id: str, capacity: int | None = None, *skills: str) -> dict[str, Any]:
    a: dict[str, Any] = {"id": id, "skills": list(skills)}
    if capacity is not None:
        a["capacity"] = capacity
    return a


def team(*agents: dict[str, Any], name: str = "Support") -> dict[str, Any]:
    return {"name": name, "agents": list(agents)}


def as_team(t: dict[str, Any]) -> TeamConfig:
    return parse({"teams": [t]}).teams[0]


def pick(
    t: dict[str, Any],
    strategy: str,
    loads: dict[str, int] | None = None,
    turn: int = 0,
    facts: TicketFacts = TICKET,
) -> str | None:
    return pick_agent(as_team(t), strategy, facts, loads=loads or {}, turn=turn)[0]


# -- capacity ------------------------------------------------------------------------


def test_agents_with_room_have_fewer_open_tickets_than_capacity() -> None:
    t = team(agent("a", 2), agent("b", 0), agent("c"), agent("d", 3))
    room = team_agents_with_room(as_team(t), {"a": 2, "c": 19, "d": 1})
    assert [a.id for a in room] == ["c", "d"]


def test_default_capacity_is_twenty() -> None:
    t = team(agent("a"))
    assert pick(t, "least_loaded", {"a": 19}) == "a"
    assert pick(t, "least_loaded", {"a": 20}) is None


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skills"])
def test_all_agents_at_capacity_queues(strategy: str) -> None:
    t = team(agent("a", 1, "vpn"), agent("b", 2, "vpn"))
    picked, reason = pick_agent(
        as_team(t), strategy, TICKET, loads={"a": 1, "b": 2}, turn=0
    )
    assert picked is None
    assert reason["picked"] is None
    assert reason["why"] == "every agent at capacity: queued"
    assert [c["open_tickets"] for c in reason["candidates"]] == [1, 2]


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skills"])
def test_a_team_without_agents_queues(strategy: str) -> None:
    picked, reason = pick_agent(as_team(team()), strategy, TICKET, loads={}, turn=3)
    assert picked is None
    assert reason == {
        "candidates": [],
        "picked": None,
        "why": "team has no agents: queued",
    }


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skills"])
@given(turn=st.integers(min_value=0, max_value=10_000))
def test_an_agent_with_capacity_zero_is_never_picked(strategy: str, turn: int) -> None:
    t = team(agent("away", 0, "vpn", "technical_support"), agent("b", 5), agent("c", 5))
    assert pick(t, strategy, {}, turn) in {"b", "c"}


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown assignment strategy 'random'"):
        pick(team(agent("a")), "random")


# -- round robin ------------------------------------------------------------------


def test_round_robin_starts_at_the_turns_position() -> None:
    t = team(agent("a"), agent("b"), agent("c"))
    assert [pick(t, "round_robin", turn=n) for n in range(5)] == [
        "a",
        "b",
        "c",
        "a",
        "b",
    ]


def test_round_robin_skips_full_agents_going_round() -> None:
    t = team(agent("a", 1), agent("b", 1), agent("c", 1))
    loads = {"c": 1, "a": 1}
    assert pick(t, "round_robin", loads, turn=2) == "b"  # c full, a full, b
    assert pick(t, "round_robin", loads, turn=1) == "b"


def test_round_robin_is_fair_over_many_turns() -> None:
    t = team(agent("a"), agent("b"), agent("c"), agent("d"))
    counts = Counter(pick(t, "round_robin", turn=n) for n in range(1_000))
    assert counts == {"a": 250, "b": 250, "c": 250, "d": 250}


def test_round_robin_shares_out_a_full_agents_turns() -> None:
    t = team(agent("a"), agent("b", 0), agent("c"))
    counts = Counter(pick(t, "round_robin", turn=n) for n in range(300))
    # b's turns go to the next agent with room, c.
    assert counts == {"a": 100, "c": 200}


def test_round_robin_reason_names_the_turn() -> None:
    t = team(agent("a"), agent("b", 0), agent("c"))
    picked, reason = pick_agent(
        as_team(t), "round_robin", TICKET, loads={"a": 4}, turn=7
    )
    assert reason["picked"] == picked == "c"
    assert reason["why"] == "round robin turn 7 of 2 eligible agents"
    assert reason["candidates"] == [
        {"agent_id": "a", "open_tickets": 4, "capacity": 20},
        {"agent_id": "b", "open_tickets": 0, "capacity": 0},
        {"agent_id": "c", "open_tickets": 0, "capacity": 20},
    ]


# -- least loaded ------------------------------------------------------------------


def test_least_loaded_picks_the_fewest_open_tickets() -> None:
    t = team(agent("a", 10), agent("b", 10), agent("c", 10))
    picked, reason = pick_agent(
        as_team(t), "least_loaded", TICKET, loads={"a": 3, "b": 1, "c": 2}, turn=0
    )
    assert picked == "b"
    assert reason["why"] == "fewest open tickets (1 of capacity 10)"


def test_least_loaded_ignores_full_agents_even_when_emptier() -> None:
    t = team(agent("idle", 0), agent("busy", 10))
    assert pick(t, "least_loaded", {"busy": 9}) == "busy"


def test_least_loaded_tie_goes_to_the_lower_share_of_capacity() -> None:
    t = team(agent("small", 4), agent("large", 8))
    assert pick(t, "least_loaded", {"small": 2, "large": 2}) == "large"


def test_least_loaded_full_tie_keeps_list_order() -> None:
    t = team(agent("a", 5), agent("b", 5), agent("c", 5))
    assert pick(t, "least_loaded", {"a": 1, "b": 0, "c": 0}) == "b"
    assert pick(t, "least_loaded") == "a"


def test_least_loaded_ignores_the_turn() -> None:
    t = team(agent("a"), agent("b"))
    assert {pick(t, "least_loaded", {"a": 1}, turn=n) for n in range(10)} == {"b"}


# -- skills --------------------------------------------------------------------------


def test_skills_requires_tags_and_category() -> None:
    t = team(
        agent("vpn_only", 10, "vpn"),
        agent("both", 10, "vpn", "technical_support", "billing"),
    )
    picked, reason = pick_agent(as_team(t), "skills", TICKET, loads={"both": 5}, turn=0)
    assert picked == "both"
    assert reason["why"] == (
        "skills cover ['technical_support', 'vpn']; "
        "fewest open tickets (5 of capacity 10)"
    )
    assert reason["candidates"][0]["skills"] == ["vpn"]


def test_skills_compare_lower_case() -> None:
    t = team(agent("a", 10, "VPN", "Technical_Support"))
    _, reason = pick_agent(as_team(t), "skills", TICKET, loads={}, turn=0)
    assert reason["why"].startswith("skills cover")


def test_skills_qualifiers_go_by_load() -> None:
    t = team(
        agent("a", 10, "vpn", "technical_support"),
        agent("b", 10, "vpn", "technical_support"),
        agent("idle_partial", 10, "vpn"),
    )
    assert pick(t, "skills", {"a": 3, "b": 2}) == "b"


def test_skills_ignore_full_qualified_agents() -> None:
    t = team(agent("expert", 1, "vpn", "technical_support"), agent("partial", 5, "vpn"))
    picked, reason = pick_agent(
        as_team(t), "skills", TICKET, loads={"expert": 1}, turn=0
    )
    assert picked == "partial"
    assert reason["why"].startswith("partial skills match ['vpn']")


def test_skills_partial_match_prefers_the_largest_overlap() -> None:
    ticket = replace(TICKET, tags=("vpn", "windows", "wifi"))
    t = team(
        agent("one", 10, "vpn"),
        agent("two", 10, "vpn", "wifi"),
        agent("two_busy", 10, "windows", "technical_support"),
        agent("none", 10, "billing"),
    )
    picked, reason = pick_agent(
        as_team(t), "skills", ticket, loads={"two_busy": 4}, turn=0
    )
    assert picked == "two"
    assert reason["why"] == (
        "partial skills match ['vpn', 'wifi'] of "
        "['technical_support', 'vpn', 'wifi', 'windows']; "
        "fewest open tickets (0 of capacity 10)"
    )


def test_skills_without_any_overlap_fall_back_to_least_loaded() -> None:
    t = team(agent("a", 10, "billing"), agent("b", 10), agent("c", 10, "sales"))
    picked, reason = pick_agent(
        as_team(t), "skills", TICKET, loads={"a": 2, "c": 1}, turn=0
    )
    assert picked == "b"
    assert reason["why"] == (
        "no agent has any of the skills ['technical_support', 'vpn']: "
        "fewest open tickets (0 of capacity 10)"
    )


def test_skills_of_a_ticket_without_tags_are_its_category() -> None:
    t = team(agent("billing", 10, "billing"), agent("tech", 10, "technical_support"))
    assert pick(t, "skills", facts=replace(TICKET, tags=(), category="billing")) == (
        "billing"
    )


# -- choosing the rule and team -----------------------------------------------


def settings(**overrides: Any) -> dict[str, Any]:
    return {
        "teams": [
            team(agent("t1"), agent("t2"), name="Technical Support"),
            team(agent("b1", 3), name="Billing"),
            team(name="Empty"),
        ],
        "assignment_rules": [
            {
                "name": "everything_else",
                "conditions": {},
                "assigned_team": "Billing",
                "priority": 0,
                "strategy": "least_loaded",
            },
            {
                "name": "technical_issues",
                "conditions": {"category": ["technical_support"]},
                "assigned_team": "Technical Support",
                "priority": 10,
                "strategy": "round_robin",
            },
        ],
        **overrides,
    }


def test_no_matching_rule_means_no_assignment() -> None:
    assert choose_assignment(parse({}), TICKET, loads={}, turn=0) is None
    only_billing = settings(assignment_rules=settings()["assignment_rules"][1:])
    billing_ticket = replace(TICKET, category="billing")
    assert (
        choose_assignment(parse(only_billing), billing_ticket, loads={}, turn=0) is None
    )


def test_the_highest_priority_matching_rule_picks_team_and_strategy() -> None:
    decision = choose_assignment(parse(settings()), TICKET, loads={"t1": 1}, turn=3)
    assert decision == AssignmentDecision(
        rule="technical_issues",
        strategy="round_robin",
        team="Technical Support",
        agent_id="t2",
        queued=False,
        reason={
            "rule": "technical_issues",
            "strategy": "round_robin",
            "team": "Technical Support",
            "candidates": [
                {"agent_id": "t1", "open_tickets": 1, "capacity": 20},
                {"agent_id": "t2", "open_tickets": 0, "capacity": 20},
            ],
            "picked": "t2",
            "why": "round robin turn 3 of 2 eligible agents",
        },
    )


def test_a_lower_rule_applies_when_the_higher_does_not_match() -> None:
    ticket = replace(TICKET, category="billing")
    decision = choose_assignment(parse(settings()), ticket, loads={}, turn=0)
    assert decision is not None
    assert (decision.rule, decision.team, decision.agent_id) == (
        "everything_else",
        "Billing",
        "b1",
    )


def test_a_full_team_queues_the_ticket() -> None:
    ticket = replace(TICKET, category="billing")
    decision = choose_assignment(parse(settings()), ticket, loads={"b1": 3}, turn=0)
    assert decision is not None
    assert decision.team == "Billing"
    assert decision.agent_id is None
    assert decision.queued
    assert decision.reason["why"] == "every agent at capacity: queued"


def test_a_rule_naming_a_missing_team_queues_and_says_so() -> None:
    rules = [{"name": "r", "conditions": {}, "assigned_team": "Gone"}]
    decision = choose_assignment(
        parse(settings(assignment_rules=rules)), TICKET, loads={}, turn=0
    )
    assert decision is not None
    assert (decision.team, decision.agent_id, decision.queued) == ("Gone", None, True)
    assert decision.strategy == "round_robin"  # the default
    assert decision.reason["why"] == "team 'Gone' is not configured: queued"


def test_a_rule_naming_an_empty_team_queues() -> None:
    rules = [{"name": "r", "assigned_team": "Empty", "strategy": "skills"}]
    decision = choose_assignment(
        parse(settings(assignment_rules=rules)), TICKET, loads={}, turn=0
    )
    assert decision is not None
    assert decision.queued
    assert decision.reason["why"] == "team has no agents: queued"


def test_the_reason_is_json_serialisable() -> None:
    rules = [{"name": "r", "assigned_team": "Technical Support", "strategy": "skills"}]
    decision = choose_assignment(
        parse(settings(assignment_rules=rules)), TICKET, loads={}, turn=0
    )
    assert decision is not None
    assert json.loads(json.dumps(decision.reason)) == decision.reason


def test_find_team_by_exact_name() -> None:
    assert find_team(parse(settings()), "Billing") == as_team(
        team(agent("b1", 3), name="Billing")
    )
    assert find_team(parse(settings()), "billing") is None
    assert find_team(parse({}), "Billing") is None


# -- who takes assignments --------------------------------------------------------


def supervisor(id: str, **more: Any) -> dict[str, Any]:
    return {"id": id, "role": "supervisor", **more}


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skills"])
def test_approvers_are_not_put_to_work_unless_they_say_so(strategy: str) -> None:
    # The supervisor is listed first and holds nothing: every strategy would
    # pick them, were approvers on the rota.
    t = team(supervisor("lead"), agent("ana"))
    assert pick(t, strategy, {"ana": 5}) == "ana"
    willing = team(supervisor("lead", takes_assignments=True), agent("ana"))
    assert pick(willing, strategy, {"ana": 5}) == "lead"


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skills"])
def test_agents_away_are_skipped(strategy: str) -> None:
    t = team({**agent("ana"), "away": True}, agent("ben"))
    assert pick(t, strategy, {"ben": 7}) == "ben"
    unwilling = team({**agent("ana"), "takes_assignments": False}, agent("ben"))
    assert pick(unwilling, strategy, {"ben": 7}) == "ben"


def test_with_nobody_to_take_it_the_ticket_queues_and_says_why() -> None:
    t = team(supervisor("lead"), {**agent("ana"), "away": True})
    agent_id, why = pick_agent(as_team(t), "round_robin", TICKET, loads={}, turn=0)
    assert agent_id is None
    assert why["why"] == (
        "no agent takes assignments now (away or approvers only): queued"
    )
    assert why["candidates"] == [
        {
            "agent_id": "lead",
            "open_tickets": 0,
            "capacity": 20,
            "takes_assignments": False,
        },
        {"agent_id": "ana", "open_tickets": 0, "capacity": 20, "away": True},
    ]
    assert team_agents_with_room(as_team(t), {}) == []


DIRECTORY = {
    "teams": [
        {"name": "Support", "agents": [{"id": "ana"}, {"id": "ben"}]},
        {"name": "Billing", "agents": [{"id": "cat"}]},
    ]
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"assignee_id": "nobody"}, "assignee_id"),
        ({"team": "Sales"}, "team"),
        ({"assignee_id": "ana", "team": "Billing"}, "assignee_id"),
    ],
)
def test_people_and_teams_the_directory_lacks_are_refused(
    change: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_people(parse(DIRECTORY), **change)
    assert refused.value.field == field


def test_known_people_and_tenants_without_a_directory_pass() -> None:
    check_people(parse(DIRECTORY), assignee_id="cat", team="Billing")
    check_people(parse(DIRECTORY), assignee_id="ana")
    check_people(parse(DIRECTORY), team="Support")
    check_people(parse({"teams": []}), assignee_id="anyone", team="Anything")
