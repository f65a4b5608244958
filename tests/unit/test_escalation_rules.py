"""Escalation thresholds (their anchors) and the order of the verdict's checks."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dotmac.ticketing.domain.escalation_rules import (
    EscalationVerdict,
    escalation_calendar,
    escalation_threshold,
    evaluate_escalation,
)
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.tenant_config import EscalationRule, parse

CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UPDATED = datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
FIRST_RESPONSE_DUE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RESOLUTION_DUE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
DUE = {"first_response": FIRST_RESPONSE_DUE, "resolution": RESOLUTION_DUE}

CRITICAL = TicketFacts(
    category="technical_support",
    priority="critical",
    channel="phone",
    tags=(),
    custom_fields={},
    title="Core router down",
    description="",
)


def rule(**fields: Any) -> EscalationRule:
    written = {
        "name": "critical_escalation",
        "conditions": {"priority": ["critical"]},
        "escalation_time_hours": 1,
        "escalate_to_team": "Engineering",
        **fields,
    }
    return parse({"escalation_rules": [written]}).escalation_rules[0]


def threshold(r: EscalationRule, **due: datetime | None) -> datetime | None:
    return escalation_threshold(
        r, created_at=CREATED, last_activity_at=UPDATED, due_times={**DUE, **due}
    )


# -- thresholds ------------------------------------------------------------------


def test_measured_from_creation_by_default() -> None:
    assert threshold(rule()) == CREATED + timedelta(hours=1)


@pytest.mark.parametrize(
    ("measured_from", "anchor"),
    [
        ("created", CREATED),
        ("last_update", UPDATED),
        ("first_response_due", FIRST_RESPONSE_DUE),
        ("resolution_due", RESOLUTION_DUE),
    ],
)
def test_each_anchor(measured_from: str, anchor: datetime) -> None:
    r = rule(measured_from=measured_from, escalation_time_hours=2.5)
    assert threshold(r) == anchor + timedelta(hours=2, minutes=30)


def test_negative_hours_fire_before_the_resolution_due_time() -> None:
    r = rule(measured_from="resolution_due", escalation_time_hours=-2)
    assert threshold(r) == datetime(2026, 3, 3, 11, 0, tzinfo=UTC)


def test_hours_are_wall_clock_hours_across_a_weekend() -> None:
    friday_evening = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    r = rule(escalation_time_hours=48)
    at = escalation_threshold(
        r, created_at=friday_evening, last_activity_at=friday_evening, due_times={}
    )
    assert at == datetime(2026, 3, 8, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("measured_from", "key"),
    [("first_response_due", "first_response"), ("resolution_due", "resolution")],
)
def test_no_threshold_while_the_due_time_is_stopped_or_paused(
    measured_from: str, key: str
) -> None:
    r = rule(measured_from=measured_from)
    assert threshold(r, **{key: None}) is None


def test_a_missing_due_time_is_no_threshold_either() -> None:
    r = rule(measured_from="resolution_due")
    at = escalation_threshold(
        r, created_at=CREATED, last_activity_at=UPDATED, due_times={}
    )
    assert at is None


def test_a_stopped_due_time_does_not_affect_other_anchors() -> None:
    assert threshold(rule(), first_response=None, resolution=None) is not None


def test_unknown_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown escalation anchor 'closed'"):
        threshold(rule(measured_from="closed"))


# -- verdicts -------------------------------------------------------------------


AT = CREATED + timedelta(hours=1)


def verdict(r: EscalationRule, **overrides: Any) -> EscalationVerdict:
    facts = overrides.pop("facts", CRITICAL)
    arguments: dict[str, Any] = {
        "active": True,
        "current_level": 0,
        "rejected_levels": (),
        "pending_levels": (),
        "threshold": AT,
        "now": AT,
        **overrides,
    }
    return evaluate_escalation(r, facts, **arguments)


def test_escalates_once_due() -> None:
    assert verdict(rule()) == EscalationVerdict(
        "escalate",
        "rule critical_escalation: 1 h since creation"
        " (threshold 2026-03-02T10:00:00+00:00)",
    )


def test_a_rule_whose_team_holds_the_ticket_does_nothing() -> None:
    team = rule().escalate_to_team
    for approval in (False, True):
        held = verdict(rule(requires_approval=approval), current_team=team)
        assert held == EscalationVerdict(
            "none", f"team {team} holds the ticket already"
        )
    assert verdict(rule(), current_team="Somebody else").action == "escalate"


def test_requests_approval_when_the_rule_requires_it() -> None:
    v = verdict(rule(requires_approval=True))
    assert v.action == "request_approval"
    assert v.reason.endswith("; approval required")


@pytest.mark.parametrize(
    ("fields", "span"),
    [
        (
            {"measured_from": "last_update", "escalation_time_hours": 1.5},
            "1.5 h since last update",
        ),
        ({"measured_from": "first_response_due"}, "1 h after first response due"),
        (
            {"measured_from": "resolution_due", "escalation_time_hours": -2},
            "2 h before resolution due",
        ),
    ],
)
def test_the_reason_says_what_was_measured(fields: dict[str, Any], span: str) -> None:
    assert verdict(rule(**fields)).reason.startswith(
        f"rule critical_escalation: {span} ("
    )


def test_not_yet_due() -> None:
    v = verdict(rule(), now=AT - timedelta(seconds=1))
    assert v == EscalationVerdict(
        "none", "not yet due (threshold 2026-03-02T10:00:00+00:00)"
    )


def test_due_exactly_at_the_threshold() -> None:
    assert verdict(rule(), now=AT).action == "escalate"


def test_no_threshold_never_escalates() -> None:
    v = verdict(rule(), threshold=None, now=AT + timedelta(days=30))
    assert v.action == "none"
    assert "stopped or paused" in v.reason


def test_an_inactive_ticket_is_never_escalated() -> None:
    v = verdict(rule(), active=False)
    assert v.action == "none"
    assert "no longer active" in v.reason


def test_conditions_that_no_longer_match() -> None:
    v = verdict(rule(), facts=_with_priority("high"))
    assert v == EscalationVerdict("none", "conditions no longer match")


def test_level_defaults_to_one_and_only_goes_up() -> None:
    assert verdict(rule(), current_level=1) == EscalationVerdict(
        "none", "already at level 1"
    )
    assert verdict(rule(level=2), current_level=3).reason == "already at level 3"
    assert verdict(rule(level=2), current_level=1).action == "escalate"


def test_a_rejected_level_is_not_asked_for_again() -> None:
    v = verdict(
        rule(level=2, requires_approval=True), current_level=1, rejected_levels={2}
    )
    assert v == EscalationVerdict("none", "level 2 rejected")
    assert verdict(rule(level=2), rejected_levels={1}).action == "escalate"


def test_a_pending_level_waits_for_its_approval() -> None:
    v = verdict(rule(requires_approval=True), pending_levels={1})
    assert v == EscalationVerdict("none", "level 1 awaiting approval")


def _with_priority(priority: str) -> TicketFacts:
    return TicketFacts(
        category=CRITICAL.category,
        priority=priority,
        channel=CRITICAL.channel,
        tags=CRITICAL.tags,
        custom_fields=CRITICAL.custom_fields,
        title=CRITICAL.title,
        description=CRITICAL.description,
    )


# Each row breaks every check from its own onwards; the first broken check is
# the one reported, which pins the order of the checks.
ORDER = [
    ({"active": False}, "no longer active"),
    ({"facts": "high"}, "conditions no longer match"),
    ({"current_level": 1}, "already at level 1"),
    ({"rejected_levels": {1}}, "level 1 rejected"),
    ({"pending_levels": {1}}, "level 1 awaiting approval"),
    ({"threshold": None}, "stopped or paused"),
    ({"now": AT - timedelta(seconds=1)}, "not yet due"),
]


@pytest.mark.parametrize("first", range(len(ORDER)))
def test_the_checks_run_in_order(first: int) -> None:
    broken: dict[str, Any] = {}
    for change, _ in ORDER[first:]:
        broken.update(change)
    if "facts" in broken:
        broken["facts"] = _with_priority(broken["facts"])
    v = verdict(rule(), **broken)
    assert v.action == "none"
    assert ORDER[first][1] in v.reason


# -- business hours ------------------------------------------------------------------

BERLIN_DESK = {
    "timezone": "Europe/Berlin",
    "week": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}
LATE_TEAM = {
    "timezone": "Europe/Berlin",
    "week": {d: ["10:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}
DOCUMENT = {
    "business_hours": BERLIN_DESK,
    "teams": [
        {"name": "Support", "agents": []},
        {"name": "Night", "agents": [], "business_hours": LATE_TEAM},
    ],
}
# Monday 2 March 2026, 08:30 in Berlin (UTC+1): before the desk opens.
BEFORE_OPENING = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def threshold_of(team: str | None, **fields: Any) -> datetime | None:
    return escalation_threshold(
        rule(**fields),
        created_at=BEFORE_OPENING,
        last_activity_at=BEFORE_OPENING,
        due_times=DUE,
        calendar=escalation_calendar(parse(DOCUMENT), team),
    )


def test_a_rule_in_business_hours_counts_from_the_opening() -> None:
    # Wall clock: 09:30 Berlin; business hours: 10:00 (one hour after 09:00).
    assert threshold_of("Support") == BEFORE_OPENING + timedelta(hours=1)
    assert threshold_of("Support", business_hours=True) == datetime(
        2026, 3, 2, 9, 0, tzinfo=UTC
    )
    # Friday 16:30 Berlin + 1 business hour = Monday 09:30.
    friday = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
    assert escalation_threshold(
        rule(business_hours=True),
        created_at=friday,
        last_activity_at=friday,
        due_times=DUE,
        calendar=escalation_calendar(parse(DOCUMENT), "Support"),
    ) == datetime(2026, 3, 9, 8, 30, tzinfo=UTC)


def test_a_team_with_its_own_hours_counts_on_them() -> None:
    assert threshold_of("Night", business_hours=True) == datetime(
        2026, 3, 2, 10, 0, tzinfo=UTC
    )
    # Without a team (or with one that has no hours): the tenant's calendar.
    assert threshold_of(None, business_hours=True) == datetime(
        2026, 3, 2, 9, 0, tzinfo=UTC
    )
    assert escalation_calendar(parse({}), None).add_business_minutes(
        BEFORE_OPENING, 60
    ) == BEFORE_OPENING + timedelta(hours=1)
