"""What an escalation changes: who holds the ticket after it, or why nobody new.

An escalation hands a ticket over: to another team (whose assignment may
pick one of its agents) or to another agent. One whose target is who holds
the ticket already, the same team and the same agent, changes nothing a
person could notice: recording it would mail "Escalated" to a team that
has the ticket anyway, and count an escalation on the dashboard that moved
nothing. So the ticket records none (``Ticket.escalate``), whoever asks: a
person, an escalation rule or a workflow step. The escalation level is not
a change of its own: it counts the hand-overs.

Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EscalationChange", "escalation_change", "holder"]


@dataclass(frozen=True)
class EscalationChange:
    """Who holds the ticket after the escalation, and whether that is new.

    ``why`` says what changes, or why nothing does (shown in a workflow
    step's record).
    """

    team: str | None
    assignee_id: str | None
    changes: bool
    why: str


def escalation_change(
    *,
    current_team: str | None,
    current_assignee: str | None,
    team: str | None = None,
    assignee_id: str | None = None,
) -> EscalationChange:
    """The holder after escalating to ``team`` / ``assignee_id``.

    Without a team the current team keeps the ticket; an agent of the
    current team keeps it within that team, not when it goes to another
    one (unless the escalation names the agent who takes it).
    """
    new_team = team or current_team
    kept = current_assignee if new_team == current_team else None
    new_assignee = assignee_id or kept
    if (new_team, new_assignee) == (current_team, current_assignee):
        return EscalationChange(
            new_team,
            new_assignee,
            False,
            f"kept by the current holder: {holder(current_team, current_assignee)}",
        )
    return EscalationChange(
        new_team,
        new_assignee,
        True,
        f"handed to {holder(new_team, new_assignee)}",
    )


def holder(team: str | None, assignee_id: str | None) -> str:
    """Who holds a ticket, in words: "team Support (agent ann)"."""
    if team and assignee_id:
        return f"team {team} (agent {assignee_id})"
    if team:
        return f"team {team}"
    if assignee_id:
        return f"agent {assignee_id}"
    return "nobody (no team, no agent)"
