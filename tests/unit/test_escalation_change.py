"""What an escalation changes (``domain.escalation_change``)."""

from __future__ import annotations

from dotmac.ticketing.domain.escalation_change import escalation_change, holder


def test_another_team_takes_the_ticket_without_the_old_teams_agent() -> None:
    change = escalation_change(
        current_team="Support", current_assignee="ann", team="Engineering"
    )
    assert (change.team, change.assignee_id, change.changes) == (
        "Engineering",
        None,
        True,
    )
    assert change.why == "handed to team Engineering"
    picked = escalation_change(
        current_team="Support",
        current_assignee="ann",
        team="Engineering",
        assignee_id="eve",
    )
    assert (picked.assignee_id, picked.why) == (
        "eve",
        "handed to team Engineering (agent eve)",
    )


def test_the_current_team_or_no_team_changes_nothing() -> None:
    for team in ("Support", None):
        change = escalation_change(
            current_team="Support", current_assignee="ann", team=team
        )
        assert (change.team, change.assignee_id, change.changes) == (
            "Support",
            "ann",
            False,
        )
        assert change.why == "kept by the current holder: team Support (agent ann)"
    assert not escalation_change(current_team=None, current_assignee=None).changes


def test_another_agent_of_the_same_team_is_a_change() -> None:
    change = escalation_change(
        current_team="Support", current_assignee="ann", assignee_id="bob"
    )
    assert change.changes and (change.team, change.assignee_id) == ("Support", "bob")


def test_holders_in_words() -> None:
    assert holder("Support", None) == "team Support"
    assert holder(None, "ann") == "agent ann"
    assert holder(None, None) == "nobody (no team, no agent)"
