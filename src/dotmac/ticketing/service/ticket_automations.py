"""What the ticket's automations ask of it: timers, escalation rules, team queues.

The use cases people ask for are :class:`~service.tickets.TicketService`'s;
these are the ones the timers and consumers call. ``TicketService`` takes
them as its own (``service.check_sla(...)``), with its command loop
(``execute``, ``execute_handover``), clock, tenant configuration and
assignment desk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from dotmac.ticketing.domain.assignment import find_team, pick_agent, team_strategy
from dotmac.ticketing.domain.deadlines import facts_of
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.domain.escalation_rules import (
    EscalationVerdict,
    escalation_calendar,
)
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.context import RequestContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from dotmac.ticketing.service.assignment import AssignmentDesk
    from dotmac.ticketing.service.clock import Clock
    from dotmac.ticketing.service.tickets import CommandResult, Why
    from dotmac.ticketing.store.application import TicketApplication

#: The automations recorded on the events they cause.
AUTO_ASSIGNMENT = "auto-assignment"
SLA_TIMER = "sla-timer"
ESCALATION_RULES = "escalation-rules"


class TicketAutomations:
    """The automations' use cases of :class:`~service.tickets.TicketService`."""

    if TYPE_CHECKING:
        # What the automations use of the service that takes them (its
        # state and its command loop), declared for the type checker.
        _app: TicketApplication
        _clock: Clock
        _desk: AssignmentDesk | None

        def execute(
            self,
            ctx: RequestContext,
            ticket_id: UUID,
            decide: Callable[[Ticket], object],
            expected_version: int | None = None,
        ) -> CommandResult: ...

        def execute_handover(
            self,
            ctx: RequestContext,
            ticket_id: UUID,
            receiving_team: Callable[[Ticket], str | None],
            decide: Callable[[Ticket, str | None, Why], object],
            expected_version: int | None,
            *,
            config: TenantConfig | None = None,
        ) -> CommandResult: ...

        def find(self, ticket_id: UUID) -> Ticket | None: ...

        def tenant_config(self, tenant_id: str) -> tuple[int, TenantConfig]: ...

    def check_sla(
        self,
        tenant_id: str,
        ticket_id: UUID,
        *,
        causation_id: str | None = None,
    ) -> CommandResult:
        """Record the SLA warnings and breaches due now (idempotent)."""
        ctx = RequestContext.for_automation(
            tenant_id, SLA_TIMER, causation_id=causation_id
        )
        return self.execute(
            ctx,
            ticket_id,
            lambda t: t.check_sla(provenance=ctx.provenance(), at=self._clock()),
            None,
        )

    def apply_escalation_rule(
        self,
        tenant_id: str,
        ticket_id: UUID,
        rule_name: str,
        *,
        causation_id: str | None = None,
    ) -> CommandResult:
        """Escalate (or ask approval) if the rule still holds now (idempotent).

        The rule is read from the current configuration and checked against the
        ticket as it is now: a ticket that was answered, changed or already
        escalated since the timer was set is left alone.
        """
        ctx = RequestContext.for_automation(
            tenant_id, ESCALATION_RULES, causation_id=causation_id
        )
        _, config = self.tenant_config(tenant_id)
        rule = config.escalation_rule(rule_name)

        def verdict(ticket: Ticket) -> EscalationVerdict:
            return ticket.judge_escalation_rule(
                rule,
                rule_name=rule_name,
                calendar=escalation_calendar(config, ticket.assigned_team),
                now=self._clock(),
            )

        def receiving_team(ticket: Ticket) -> str | None:
            escalates = rule is not None and verdict(ticket).action == "escalate"
            return rule.escalate_to_team if escalates and rule else None

        def decide(ticket: Ticket, agent_id: str | None, why: Why) -> None:
            judged = verdict(ticket)
            ticket.apply_escalation_rule(
                rule,
                judged,
                assignee_id=agent_id,
                assignment=why,
                provenance=ctx.provenance(),
                at=self._clock(),
            )

        return self.execute_handover(
            ctx,
            ticket_id,
            receiving_team,
            decide,
            None,
            config=config,
        )

    def drain_team_queue(
        self,
        tenant_id: str,
        team_name: str,
        *,
        causation_id: str | None = None,
    ) -> list[UUID]:
        """Hand waiting tickets of a team to agents with room, oldest first.

        Called when capacity frees up (a resolve, close or reassignment).
        Returns the tickets assigned.
        """
        if self._desk is None:
            return []
        _, config = self.tenant_config(tenant_id)
        team = find_team(config, team_name)
        if team is None or not team.agents:
            return []
        strategy = team_strategy(config, team_name)
        ctx = RequestContext.for_automation(
            tenant_id, AUTO_ASSIGNMENT, causation_id=causation_id
        )
        assigned: list[UUID] = []
        with self._desk.team_turn(tenant_id, team, team_name) as turn:
            for waiting in turn.queue():
                ticket = self.find(waiting["ticket_id"])
                if ticket is None or not _waits_in_queue(ticket, team_name):
                    continue
                agent_id, why = pick_agent(
                    team, strategy, facts_of(ticket), loads=turn.loads, turn=turn.turn
                )
                if agent_id is None:
                    break  # everyone is at capacity again
                why = {**why, "queued_since": waiting["created_at"].isoformat()}
                try:
                    ticket.assign(
                        assignee_id=agent_id,
                        team=team_name,
                        reason={"rule": "team queue", "strategy": strategy, **why},
                        provenance=ctx.provenance(),
                        at=self._clock(),
                    )
                    self._app.save_aggregates(ticket)
                except IntegrityError:
                    continue  # changed meanwhile; the next event drains again
                turn.loads[agent_id] = turn.loads.get(agent_id, 0) + 1
                turn.turn += 1
                assigned.append(ticket.id)
        return assigned


def _waits_in_queue(ticket: Ticket, team_name: str) -> bool:
    return (
        ticket.status in ACTIVE_STATUSES
        and ticket.assignee_id is None
        and ticket.assigned_team == team_name
    )
