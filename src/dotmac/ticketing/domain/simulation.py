"""What-if replay: a ticket's recorded facts under proposed settings (pure).

A ticket's stream holds two kinds of events: the *facts* people and the
world made (created, recategorized, reprioritized, assigned by hand,
commented, paused in ``pending``, resolved, reopened, closed) and the
*decisions* the tenant's settings made of them (SLA clocks started,
paused, resumed, stopped, warned and breached; escalation rules fired;
assignment rules picked a team and an agent). :func:`replay_ticket`
keeps the facts and makes the decisions again under a proposed
:class:`~domain.tenant_config.TenantConfig`, on a shadow
:class:`~domain.ticket.Ticket` that nobody saves: each fact is applied
as recorded, then the aggregate's own SLA methods decide as the command
that recorded it did (:data:`FOLLOW_UPS`), and between facts the timers'
deadlines (``domain.deadlines.ticket_deadlines``) fire at their instant
with the aggregate's ``check_sla`` and ``judge_escalation_rule`` /
``apply_escalation_rule``. No rule is implemented twice.

:func:`outcome_of` reads the same figures from any list of events, the
recorded stream (what happened) or the shadow's (what would have), so the
two sides are counted alike; :class:`Tally` sums them per target and
priority, the way the read model's ``sla_clocks`` rows count them.

Loads for assignment strategies are the simulated tickets' own
(:class:`LoadBook`): each ticket holds its agent from its assignment to
its resolution, in the order tickets were created.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from dotmac.ticketing.domain import sla
from dotmac.ticketing.domain.assignment import (
    choose_assignment,
    find_team,
    matching_rule,
    pick_agent,
    team_strategy,
)
from dotmac.ticketing.domain.deadlines import facts_of, ticket_deadlines
from dotmac.ticketing.domain.escalation_rules import escalation_calendar
from dotmac.ticketing.domain.provenance import Actor, Provenance, event_id
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import policy_for
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.ticket import Ticket

#: The events the settings decide: never facts, always decided again.
SLA_EVENTS: tuple[type[Ticket.Event], ...] = (
    Ticket.SLAStarted,
    Ticket.SLARecalculated,
    Ticket.SLAPaused,
    Ticket.SLAResumed,
    Ticket.SLAStopped,
    Ticket.SLAWarning,
    Ticket.SLABreached,
)


@dataclass(frozen=True)
class Automations:
    """The names the automations act under (``service.ticket_automations``)."""

    sla_timer: str
    escalation_rules: str
    auto_assignment: str

    def decided(self, event: Ticket.Event) -> bool:
        """Whether the settings, not a person, made ``event``."""
        if isinstance(event, SLA_EVENTS):
            return True
        actor = event.actor
        return actor.get("kind") == "automation" and actor.get("id") in (
            self.escalation_rules,
            self.auto_assignment,
            self.sla_timer,
        )


@dataclass
class LoadBook:
    """Who holds how many simulated tickets when, and each team's turn.

    Per agent, the sorted start and end times of their holds: the load at
    ``t`` is the holds started by then less those ended by then.
    """

    starts: dict[str, list[datetime]] = field(default_factory=dict)
    ends: dict[str, list[datetime]] = field(default_factory=dict)
    turns: Counter[str] = field(default_factory=Counter)

    def loads(self, at: datetime) -> dict[str, int]:
        return {
            agent: bisect_right(starts, at) - bisect_right(self.ends[agent], at)
            for agent, starts in self.starts.items()
        }

    def hold(self, agent: str, start: datetime, end: datetime | None) -> None:
        insort(self.starts.setdefault(agent, []), start)
        ends = self.ends.setdefault(agent, [])
        if end is not None:
            insort(ends, end)

    def take_turn(self, team: str) -> int:
        turn = self.turns[team]
        self.turns[team] += 1
        return turn

    def record(self, events: Iterable[Ticket.Event]) -> None:
        """The holds of one replayed ticket, from its (shadow) events."""
        holder: str | None = None
        since: datetime | None = None
        active = True

        def release(at: datetime) -> None:
            if holder is not None and since is not None and active:
                self.hold(holder, since, at)

        for event in events:
            at = event.timestamp
            if isinstance(event, Ticket.TicketAssigned | Ticket.TicketEscalated):
                if event.assignee_id != holder:
                    release(at)
                    holder, since = event.assignee_id, at
            elif isinstance(event, Ticket.TicketUnassigned):
                release(at)
                holder = None
            elif isinstance(event, Ticket.TicketResolved | Ticket.TicketClosed):
                release(at)
                active = False
            elif isinstance(event, Ticket.TicketReopened):
                active, since = True, at
        if holder is not None and since is not None and active:
            self.hold(holder, since, None)


@dataclass(frozen=True)
class ClockRun:
    """One run of a target's clock, as the read model's ``sla_clocks`` row."""

    target: str
    priority: str
    warned: bool
    breached: bool
    outcome: str | None

    @property
    def state(self) -> str:
        if self.outcome is not None:
            return self.outcome
        return sla.BREACHED if self.breached else "open"


@dataclass(frozen=True)
class TicketOutcome:
    """What the settings decided of one ticket."""

    clocks: tuple[ClockRun, ...]
    escalations: tuple[str, ...]
    #: The team of each assignment (by hand or by a rule), in order.
    assignments: tuple[str, ...]
    final_team: str | None

    def signature(self) -> dict[str, Any]:
        """What a person compares: each target's runs, escalations, the team."""
        by_target: dict[str, list[str]] = {}
        for run in self.clocks:
            by_target.setdefault(run.target, []).append(run.state)
        return {
            "sla": by_target,
            "escalations": list(self.escalations),
            "team": self.final_team,
        }


def outcome_of(events: Iterable[Ticket.Event]) -> TicketOutcome:
    """The figures of a ticket's events (recorded or replayed), in order."""
    runs: dict[str, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    escalations: list[str] = []
    assignments: list[str] = []
    team: str | None = None
    for event in events:
        if isinstance(event, Ticket.SLAStarted):
            previous = runs.get(event.target)
            if previous is not None:
                done.append(previous)
            runs[event.target] = {
                "target": event.target,
                "priority": str(event.explanation.get("priority")),
                "warned": False,
                "breached": False,
                "outcome": None,
            }
        elif isinstance(event, Ticket.SLARecalculated):
            run = runs[event.target]
            run["priority"] = str(event.explanation.get("priority"))
            if (
                event.warning_at is not None
                and event.warning_at > event.timestamp
                and not run["breached"]
            ):
                run["warned"] = False
        elif isinstance(event, Ticket.SLAWarning):
            runs[event.target]["warned"] = True
        elif isinstance(event, Ticket.SLABreached):
            runs[event.target]["breached"] = True
        elif isinstance(event, Ticket.SLAStopped):
            runs[event.target]["outcome"] = event.outcome
        elif isinstance(event, Ticket.TicketEscalated):
            team = event.team
            if event.rule is not None:
                escalations.append(event.rule)
        elif isinstance(event, Ticket.EscalationRequested):
            escalations.append(event.rule)
        elif isinstance(event, Ticket.TicketAssigned):
            team = event.team
            if event.team is not None:
                assignments.append(event.team)
    done.extend(runs.values())
    return TicketOutcome(
        clocks=tuple(ClockRun(**run) for run in done),
        escalations=tuple(escalations),
        assignments=tuple(assignments),
        final_team=team,
    )


@dataclass
class Tally:
    """Sums of ticket outcomes: SLA per target and priority, and the rest."""

    sla: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    escalations: Counter[str] = field(default_factory=Counter)
    assignments: Counter[str] = field(default_factory=Counter)
    tickets: int = 0

    def add(self, outcome: TicketOutcome) -> None:
        self.tickets += 1
        for run in outcome.clocks:
            counts = self.sla.setdefault(run.target, {}).setdefault(
                run.priority, Counter()
            )
            counts["clocks"] += 1
            counts["warned"] += run.warned
            counts["breached"] += run.breached or run.outcome == sla.BREACHED
            counts["met"] += run.outcome == sla.MET
            counts["open"] += run.outcome is None
        self.escalations.update(outcome.escalations)
        self.assignments.update(outcome.assignments)

    def _counts(self) -> list[Counter[str]]:
        return [c for by_priority in self.sla.values() for c in by_priority.values()]

    def report(self) -> dict[str, Any]:
        targets: dict[str, Any] = {}
        for target in sorted(self.sla):
            targets[target] = {}
            for priority in sorted(self.sla[target]):
                counts = self.sla[target][priority]
                judged = counts["met"] + counts["breached"]
                targets[target][priority] = {
                    "clocks": counts["clocks"],
                    "met": counts["met"],
                    "breached": counts["breached"],
                    "warned": counts["warned"],
                    "open": counts["open"],
                    "compliance": None if not judged else counts["met"] / judged,
                }
        return {
            "tickets": self.tickets,
            "sla": targets,
            "breaches": sum(c["breached"] for c in self._counts()),
            "warnings": sum(c["warned"] for c in self._counts()),
            "escalations": dict(sorted(self.escalations.items())),
            "assignments_per_team": dict(sorted(self.assignments.items())),
        }


# -- the replay ---------------------------------------------------------------


def provenance_of(event: Ticket.Event) -> Provenance:
    """Who recorded ``event``, as the command that recorded it was given."""
    actor = event.actor
    return Provenance(
        tenant_id=event.tenant_id,
        actor=Actor(id=actor["id"], role=actor["role"], kind=actor["kind"]),  # type: ignore[arg-type]
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
    )


@dataclass(frozen=True)
class Proposal:
    """The settings to replay under, and the automations' names."""

    config: TenantConfig
    settings_version: int
    automations: Automations


FollowUp = Callable[[Ticket, Ticket.Event, Proposal, Provenance], None]


def _recalculate(
    ticket: Ticket, proposal: Proposal, p: Provenance, at: datetime
) -> None:
    ticket.recalculate_sla(
        policy_for(proposal.config, proposal.settings_version, facts_of(ticket)),
        provenance=p,
        at=at,
    )


def _after_comment(
    ticket: Ticket, event: Ticket.Event, _: Proposal, p: Provenance
) -> None:
    assert isinstance(event, Ticket.CommentAdded)
    # A merge's carried comments are the source's, not replies here.
    if not event.internal and event.merged_from is None:
        ticket._follow_reply(p, event.timestamp)


def _after_closed(
    ticket: Ticket, event: Ticket.Event, _: Proposal, p: Provenance
) -> None:
    assert isinstance(event, Ticket.TicketClosed)
    if event.reason == "merged":
        ticket._stop_clocks_closed(p, event.timestamp)


#: What the command that recorded each fact decided after it, by the
#: aggregate's own methods (``Ticket.create``, ``change_priority``, …); a
#: comment's (:func:`_after_comment`) waits for what the comment caused.
FOLLOW_UPS: Mapping[type[Ticket.Event], FollowUp] = {
    Ticket.PriorityChanged: lambda t, e, pr, p: _recalculate(t, pr, p, e.timestamp),
    Ticket.TicketCategorized: lambda t, e, pr, p: _recalculate(t, pr, p, e.timestamp),
    Ticket.StatusChanged: lambda t, e, _, p: t._follow_sla(p, e.timestamp),
    Ticket.TicketAssigned: lambda t, e, _, p: t._follow_sla(p, e.timestamp),
    Ticket.TicketResolved: lambda t, e, _, p: t._stop_clocks_resolved(p, e.timestamp),
    Ticket.TicketReopened: lambda t, e, _, p: t._restart_resolution(p, e.timestamp),
    Ticket.TicketClosed: _after_closed,
}


@dataclass
class Replayed:
    """A ticket's events in the proposed world, and how many were recorded."""

    events: list[Ticket.Event]
    recorded: int


def replay_ticket(
    recorded: Sequence[Ticket.Event],
    proposal: Proposal,
    *,
    until: datetime,
    book: LoadBook,
) -> Replayed:
    """The ticket's stream as the proposal would have made it, up to ``until``.

    ``recorded`` is the whole stored stream, oldest first, starting with
    ``TicketCreated``. Returns the kept facts and the new decisions in
    the order they happen.
    """
    created = recorded[0]
    assert isinstance(created, Ticket.TicketCreated), "streams start with a creation"
    ticket = created.mutate(None)
    assert isinstance(ticket, Ticket)
    out: list[Ticket.Event] = [created]
    creator = provenance_of(created)
    ticket._start_clocks(
        policy_for(proposal.config, proposal.settings_version, facts_of(ticket)),
        creator,
        created.timestamp,
    )
    _assign_on_create(ticket, proposal, creator, created.timestamp, book)
    out.extend(_decided(ticket))
    facts = [e for e in recorded[1:] if not proposal.automations.decided(e)]
    # A comment's reply clocks follow after what the comment caused in the
    # same command (the customer's answer reopening the ticket, say), as
    # ``add_comment`` orders them.
    comment: Ticket.Event | None = None
    for index, event in enumerate(facts):
        if event.timestamp > until:
            break
        if comment is not None and not _caused_by(event, comment):
            _after_comment(ticket, comment, proposal, provenance_of(comment))
            out.extend(_decided(ticket))
            comment = None
        if comment is None:
            out.extend(_fire_timers(ticket, proposal, event.timestamp, book))
        ticket.version = event.originator_version - 1
        event.mutate(ticket)
        out.append(event)
        follow = FOLLOW_UPS.get(type(event))
        if isinstance(event, Ticket.CommentAdded):
            comment = event
        elif follow is not None and not _recalculated_next(event, facts, index):
            follow(ticket, event, proposal, provenance_of(event))
        out.extend(_decided(ticket))
    if comment is not None:
        _after_comment(ticket, comment, proposal, provenance_of(comment))
        out.extend(_decided(ticket))
    out.extend(_fire_timers(ticket, proposal, until, book))
    book.record(out)
    return Replayed(out, len(recorded))


def _decided(ticket: Ticket) -> list[Ticket.Event]:
    """The events the shadow just recorded (nobody saves them)."""
    return cast(list[Ticket.Event], list(ticket.collect_events()))


def _caused_by(event: Ticket.Event, cause: Ticket.Event) -> bool:
    return event.causation_id == event_id(cause.originator_id, cause.originator_version)


def _recalculated_next(
    event: Ticket.Event, facts: Sequence[Ticket.Event], i: int
) -> bool:
    """A recategorization the same update reprioritizes: the policy is
    chosen once, after both (``TicketService.update_ticket``)."""
    if not isinstance(event, Ticket.TicketCategorized) or i + 1 >= len(facts):
        return False
    after = facts[i + 1]
    return (
        isinstance(after, Ticket.PriorityChanged)
        and after.timestamp == event.timestamp
        and after.correlation_id == event.correlation_id
    )


def _assign_on_create(
    ticket: Ticket,
    proposal: Proposal,
    creator: Provenance,
    at: datetime,
    book: LoadBook,
) -> None:
    """``TicketService._create_assigned``: the assignment rules pick."""
    config = proposal.config
    facts = facts_of(ticket)
    decision = choose_assignment(
        config,
        facts,
        loads=book.loads(at),
        turn=_peek_turn(book, config, facts),
    )
    if decision is None:
        return
    book.take_turn(decision.team)
    ticket.assign(
        assignee_id=decision.agent_id,
        team=decision.team,
        reason=decision.reason,
        provenance=creator.acting_as(
            proposal.automations.auto_assignment, causation_id=None
        ),
        at=at,
    )


def _peek_turn(book: LoadBook, config: TenantConfig, facts: TicketFacts) -> int:
    rule = matching_rule(config, facts)
    return 0 if rule is None else book.turns[rule.assigned_team]


def _fire_timers(
    ticket: Ticket, proposal: Proposal, until: datetime, book: LoadBook
) -> list[Ticket.Event]:
    """The timers' work up to ``until``: each deadline at its instant."""
    fired: list[Ticket.Event] = []
    config = proposal.config
    seen: set[tuple[str, str, datetime]] = set()
    while True:
        due = [
            d
            for d in ticket_deadlines(ticket, config)
            if d.kind != "workflow"
            and d.due_at <= until
            and (d.kind, d.key, d.due_at) not in seen
        ]
        if not due:
            return fired
        deadline = min(due, key=lambda d: (d.due_at, d.kind != "sla_warning"))
        seen.add((deadline.kind, deadline.key, deadline.due_at))
        # A deadline before the ticket's latest change fires at that change
        # (the timers claim it only once the change that set it is seen).
        at = max(deadline.due_at, ticket.modified_on)
        tenant = ticket.tenant_id
        if deadline.kind == "escalation":
            _escalate(ticket, deadline.key, proposal, at, book)
        else:
            ticket.check_sla(
                provenance=Provenance(
                    tenant, Actor.automation(proposal.automations.sla_timer)
                ),
                at=at,
            )
        fired.extend(_decided(ticket))


def _escalate(
    ticket: Ticket, rule_name: str, proposal: Proposal, at: datetime, book: LoadBook
) -> None:
    """``TicketAutomations.apply_escalation_rule`` with its hand-over."""
    config = proposal.config
    rule = config.escalation_rule(rule_name)
    verdict = ticket.judge_escalation_rule(
        rule,
        rule_name=rule_name,
        calendar=escalation_calendar(config, ticket.assigned_team),
        now=at,
    )
    agent_id: str | None = None
    why: dict[str, Any] | None = None
    if rule is not None and verdict.action == "escalate":
        name = rule.escalate_to_team
        team = find_team(config, name) if name != ticket.assigned_team else None
        if team is not None and team.agents:
            strategy = team_strategy(config, name)
            agent_id, picked = pick_agent(
                team,
                strategy,
                facts_of(ticket),
                loads=book.loads(at),
                turn=book.take_turn(name),
            )
            why = {"strategy": strategy, "team": name, **picked}
    provenance = Provenance(
        ticket.tenant_id, Actor.automation(proposal.automations.escalation_rules)
    )
    ticket.apply_escalation_rule(
        rule,
        verdict,
        assignee_id=agent_id,
        assignment=why,
        provenance=provenance,
        at=at,
    )
