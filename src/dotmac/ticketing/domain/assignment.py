"""Choosing the team and the agent of a new ticket.

The first matching assignment rule (:func:`domain.rules.first_match`) names
the team and a strategy; the strategy picks one of the team's agents that
still has room (fewer open tickets than its ``capacity``):

* ``round_robin``: agents take turns in the order they are listed. The
  caller keeps a counter per (tenant, team) and passes it as ``turn``; the
  turn's agent is skipped, in list order, while it is full.
* ``least_loaded``: the agent with the fewest open tickets; on a tie the one
  with the lower share of its capacity in use, then list order.
* ``skills``: the ticket needs its tags and its category. Agents whose skills
  cover all of them qualify; failing that, those covering the most of them;
  failing that, anyone with room. Ties go to the least loaded.

When nobody has room the ticket waits in the team's queue (``agent_id`` is
None) and is handed out when capacity frees. Every decision carries a
JSON-serialisable ``reason`` that says what was compared, so the assignment
event can explain itself.

Pure: standard library only; the open-ticket counts and the turn are inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.rules import TicketFacts, matches
from dotmac.ticketing.domain.tenant_config import (
    DEFAULT_CAPACITY,
    AgentConfig,
    AssignmentRule,
    TeamConfig,
    TenantConfig,
)

__all__ = [
    "DEFAULT_CAPACITY",
    "STRATEGIES",
    "AssignmentDecision",
    "check_people",
    "choose_assignment",
    "find_team",
    "matching_rule",
    "pick_agent",
    "takes_assignments",
    "team_agents_with_room",
]

STRATEGIES: tuple[str, ...] = ("round_robin", "least_loaded", "skills")

Agent = AgentConfig


@dataclass(frozen=True)
class AssignmentDecision:
    """The team and agent a rule chose, and why."""

    rule: str
    strategy: str
    team: str
    # None: every agent is at capacity (or the team has none): queued.
    agent_id: str | None
    queued: bool
    reason: dict[str, Any]


def matching_rule(config: TenantConfig, facts: TicketFacts) -> AssignmentRule | None:
    """The highest-``priority`` rule whose conditions match, None if none does.

    Equal priorities keep document order (``sorted`` is stable), as
    ``domain.rules.first_match``.
    """
    ranked = sorted(config.assignment_rules, key=lambda rule: -rule.priority)
    return next((r for r in ranked if matches(r.conditions, facts)), None)


def choose_assignment(
    config: TenantConfig,
    facts: TicketFacts,
    *,
    loads: Mapping[str, int],
    turn: int,
) -> AssignmentDecision | None:
    """The assignment of a new ticket; None when no rule matches it."""
    rule = matching_rule(config, facts)
    if rule is None:
        return None
    name = rule.name
    strategy = rule.strategy
    team_name = rule.assigned_team
    header = {"rule": name, "strategy": strategy, "team": team_name}
    team = find_team(config, team_name)
    if team is None:
        # Settings validation does not tie rules to teams (a team may be
        # renamed first), so a dangling name queues rather than fails.
        agent_id: str | None = None
        details: dict[str, Any] = {
            "candidates": [],
            "picked": None,
            "why": f"team {team_name!r} is not configured: queued",
        }
    else:
        agent_id, details = pick_agent(team, strategy, facts, loads=loads, turn=turn)
    return AssignmentDecision(
        rule=name,
        strategy=strategy,
        team=team_name,
        agent_id=agent_id,
        queued=agent_id is None,
        reason={**header, **details},
    )


def team_strategy(config: TenantConfig, team_name: str) -> str:
    """The strategy of the first rule routing to the team (least loaded else)."""
    rules = sorted(config.assignment_rules, key=lambda r: -r.priority)
    for rule in rules:
        if rule.assigned_team == team_name:
            return rule.strategy
    return "least_loaded"


def find_team(config: TenantConfig, name: str) -> TeamConfig | None:
    """The team called ``name`` in the configuration, None if there is none."""
    return config.team(name)


def check_people(
    config: TenantConfig,
    *,
    assignee_id: str | None = None,
    team: str | None = None,
) -> None:
    """Refuse a team or an agent the tenant's directory does not have.

    Only when the settings name teams at all: a tenant that keeps its
    people elsewhere can assign freely. An assignee given with a team must
    be one of that team's agents; alone, an agent of any team.
    """
    teams = config.teams
    if not teams:
        return
    names = [t.name for t in teams]
    if team is not None and team not in names:
        raise InvalidCommand("team", f"no team {team!r}; the teams are {names}")
    if assignee_id is None:
        return
    among = [t for t in teams if team is None or t.name == team]
    members = {a.id for t in among for a in t.agents}
    if assignee_id not in members:
        where = f"team {team!r}" if team is not None else "any team"
        raise InvalidCommand(
            "assignee_id", f"{assignee_id!r} is not an agent of {where}"
        )


def team_agents_with_room(team: TeamConfig, loads: Mapping[str, int]) -> list[Agent]:
    """The team's agents that may take another ticket, in list order."""
    return [agent for agent in team.agents if _has_room(agent, loads)]


def pick_agent(
    team: TeamConfig,
    strategy: str,
    facts: TicketFacts,
    *,
    loads: Mapping[str, int],
    turn: int,
) -> tuple[str | None, dict[str, Any]]:
    """The agent who gets the ticket (None: queue it) and the reasoning.

    Also used to hand out a queued ticket when an agent's load drops: the
    choice is the same, only the loads are newer.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown assignment strategy {strategy!r}")
    agents: Sequence[Agent] = team.agents
    candidates = [_candidate(agent, loads, strategy) for agent in agents]
    if not agents:
        return None, _explain(candidates, None, "team has no agents: queued")
    if not any(takes_assignments(agent) for agent in agents):
        why = "no agent takes assignments now (away or approvers only): queued"
        return None, _explain(candidates, None, why)
    roomy = team_agents_with_room(team, loads)
    if not roomy:
        return None, _explain(candidates, None, "every agent at capacity: queued")
    if strategy == "round_robin":
        picked, why = _round_robin(agents, loads, turn, len(roomy))
    elif strategy == "least_loaded":
        picked = _least_loaded(roomy, loads)
        why = _fewest(picked, loads)
    else:
        picked, why = _by_skills(roomy, facts, loads)
    return picked.id, _explain(candidates, picked.id, why)


# -- strategies ------------------------------------------------------------------


def _round_robin(
    agents: Sequence[Agent], loads: Mapping[str, int], turn: int, eligible: int
) -> tuple[Agent, str]:
    # Counting from the turn's position over *all* agents (not only those with
    # room) keeps each agent's slot stable while others fill up and drain.
    start = turn % len(agents)
    for step in range(len(agents)):
        agent = agents[(start + step) % len(agents)]
        if _has_room(agent, loads):
            return agent, f"round robin turn {turn} of {eligible} eligible agents"
    raise AssertionError("called with no agent that has room")


def _least_loaded(agents: Sequence[Agent], loads: Mapping[str, int]) -> Agent:
    # min() keeps the first of equals: list order is the last tie-break.
    return min(agents, key=lambda a: (_load(a, loads), _load(a, loads) / _capacity(a)))


def _by_skills(
    agents: Sequence[Agent], facts: TicketFacts, loads: Mapping[str, int]
) -> tuple[Agent, str]:
    required = {tag.lower() for tag in facts.tags} | {facts.category.lower()}
    overlap = {a.id: required & _skills(a) for a in agents}
    full = [a for a in agents if overlap[a.id] == required]
    if full:
        picked = _least_loaded(full, loads)
        return picked, f"skills cover {sorted(required)}; {_fewest(picked, loads)}"
    best = max(len(covered) for covered in overlap.values())
    if best == 0:
        picked = _least_loaded(agents, loads)
        return picked, (
            f"no agent has any of the skills {sorted(required)}: "
            f"{_fewest(picked, loads)}"
        )
    partial = [a for a in agents if len(overlap[a.id]) == best]
    picked = _least_loaded(partial, loads)
    return picked, (
        f"partial skills match {sorted(overlap[picked.id])} "
        f"of {sorted(required)}; {_fewest(picked, loads)}"
    )


# -- agents ----------------------------------------------------------------------


def _load(agent: Agent, loads: Mapping[str, int]) -> int:
    return loads.get(agent.id, 0)


def _capacity(agent: Agent) -> int:
    return agent.capacity


def takes_assignments(agent: Agent) -> bool:
    """Whether automatic assignment may hand the agent a ticket now.

    Not while away (out of office); supervisors, who approve escalations,
    only when their ``takes_assignments`` says so; agents unless it says no.
    """
    if agent.away:
        return False
    if agent.takes_assignments is None:
        return agent.role != "supervisor"
    return agent.takes_assignments


def _has_room(agent: Agent, loads: Mapping[str, int]) -> bool:
    # Capacity 0 never has room: the agent is off the rota.
    return takes_assignments(agent) and _load(agent, loads) < _capacity(agent)


def _skills(agent: Agent) -> set[str]:
    return {skill.lower() for skill in agent.skills}


def _fewest(agent: Agent, loads: Mapping[str, int]) -> str:
    return f"fewest open tickets ({_load(agent, loads)} of capacity {_capacity(agent)})"


def _candidate(agent: Agent, loads: Mapping[str, int], strategy: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "agent_id": agent.id,
        "open_tickets": _load(agent, loads),
        "capacity": _capacity(agent),
    }
    if agent.away:
        candidate["away"] = True
    elif not takes_assignments(agent):
        candidate["takes_assignments"] = False
    if strategy == "skills":
        candidate["skills"] = sorted(_skills(agent))
    return candidate


def _explain(
    candidates: list[dict[str, Any]], picked: str | None, why: str
) -> dict[str, Any]:
    return {"candidates": candidates, "picked": picked, "why": why}
