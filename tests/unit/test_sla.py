"""SLA policies and deadline arithmetic (the pure functions of domain/sla.py).

The calendar itself is covered by test_calendar*.py; these tests are about
what the SLA layer adds on top: choosing a policy, pauses pushing due times
out, the warning point, and how a clock's state and outcome are named.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotmac.ticketing.domain import sla
from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.defaults import DEFAULT_SLA_MINUTES
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import SLAPolicy, policy_for
from dotmac.ticketing.domain.tenant_config import parse
from tests.unit.test_calendar_properties import calendars, instants, weekly_minutes

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE_CONFIG: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "week": {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    # Good Friday and Easter Monday 2026.
    "holidays": ["2026-04-03", "2026-04-06"],
}
OFFICE = BusinessCalendar.from_config(OFFICE_CONFIG)
TOLERANCE = 1e-6  # minutes


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def facts(**overrides: Any) -> TicketFacts:
    fields: dict[str, Any] = {
        "category": "general",
        "priority": "normal",
        "channel": "email",
        "tags": (),
        "custom_fields": {},
        "title": "VPN down",
        "description": "",
    }
    fields.update(overrides)
    return TicketFacts(**fields)


def pause(start: datetime, end: datetime | None) -> dict[str, datetime | None]:
    return {"start": start, "end": end}


# -- policy_for ------------------------------------------------------------------


def test_an_empty_document_gives_the_default_policy() -> None:
    policy = policy_for(parse({}), 0, facts())
    assert policy.name == sla.DEFAULT_POLICY
    assert policy.settings_version == 0
    assert policy.calendar == "24x7"
    assert policy.warning_percent == 80
    for priority, (response, resolution) in DEFAULT_SLA_MINUTES.items():
        assert policy.minutes(priority, sla.FIRST_RESPONSE) == response
        assert policy.minutes(priority, sla.RESOLUTION) == resolution
        # Without its own target, a follow-up is due like a first reply.
        assert policy.minutes(priority, sla.NEXT_REPLY) == response
    assert policy.pauses(sla.RESOLUTION, "pending")
    assert not policy.pauses(sla.FIRST_RESPONSE, "pending")
    assert not policy.pauses(sla.RESOLUTION, "on_hold")


def test_sla_config_overrides_priorities_and_keeps_the_others() -> None:
    document = {
        "sla_config": {
            "critical": {"response": 10, "resolution": 120, "next_reply": 30},
            "warning_percent": 75,
            "pause_on": {"first_response": ["on_hold"]},
        },
        "business_hours": OFFICE_CONFIG,
    }
    policy = policy_for(parse(document), 7, facts())
    assert policy.name == "default"
    assert policy.settings_version == 7
    assert policy.calendar == OFFICE_CONFIG
    assert policy.business_calendar() == OFFICE
    assert dict(policy.targets["critical"]) == {
        "first_response": 10,
        "resolution": 120,
        "next_reply": 30,
    }
    assert policy.minutes("urgent", sla.RESOLUTION) == 480
    assert policy.warning_percent == 75
    assert policy.pauses(sla.FIRST_RESPONSE, "on_hold")
    # Naming one target's statuses keeps the defaults of the others.
    assert policy.pauses(sla.RESOLUTION, "pending")


NARROWED = {
    "sla_config": {
        "high": {"response": 200, "resolution": 1000},
        "warning_percent": 80,
        "policies": [
            {
                "name": "gold_billing",
                "conditions": {"category": ["billing"], "customer_tier": ["gold"]},
                "targets": {"high": {"response": 30, "resolution": 240}},
                "warning_percent": 50,
            },
            {
                "name": "billing",
                "conditions": {"category": ["billing"]},
                "targets": {"low": {"response": 600, "resolution": 6000}},
                "pause_on": {"first_response": ["on_hold"]},
            },
            {
                "name": "tier_2",
                "conditions": {"customer_tier": ["2"]},
                "targets": {"high": {"response": 120, "resolution": 480}},
            },
        ],
    }
}


def test_the_first_matching_policy_wins() -> None:
    gold = facts(category="billing", custom_fields={"customer_tier": "gold"})
    policy = policy_for(parse(NARROWED), 1, gold)
    # Both billing policies match; the first in the document wins.
    assert policy.name == "gold_billing"
    assert policy.minutes("high", sla.FIRST_RESPONSE) == 30
    assert policy.minutes("high", sla.NEXT_REPLY) == 30
    assert policy.warning_percent == 50
    assert not policy.pauses(sla.FIRST_RESPONSE, "on_hold")


def test_a_narrowed_policy_inherits_the_base_for_what_it_leaves_out() -> None:
    policy = policy_for(parse(NARROWED), 1, facts(category="billing"))
    assert policy.name == "billing"
    assert policy.minutes("low", sla.RESOLUTION) == 6000
    # Priorities it leaves out keep the tenant's targets, not the built-in ones.
    assert policy.minutes("high", sla.FIRST_RESPONSE) == 200
    assert policy.minutes("critical", sla.FIRST_RESPONSE) == 15
    assert policy.warning_percent == 80
    assert policy.pauses(sla.FIRST_RESPONSE, "on_hold")
    assert policy.pauses(sla.RESOLUTION, "pending")


def test_customer_tier_narrows_and_a_numeric_tier_matches_its_name() -> None:
    policy = policy_for(parse(NARROWED), 1, facts(custom_fields={"customer_tier": 2}))
    assert policy.name == "tier_2"
    assert policy.minutes("high", sla.RESOLUTION) == 480


def test_no_matching_policy_is_the_default() -> None:
    policy = policy_for(
        parse(NARROWED), 1, facts(custom_fields={"customer_tier": "gold"})
    )
    assert policy.name == "default"
    assert policy.minutes("high", sla.FIRST_RESPONSE) == 200


def test_the_snapshot_survives_json_and_gives_back_the_policy() -> None:
    policy = policy_for(parse(NARROWED | {"business_hours": OFFICE_CONFIG}), 4, facts())
    stored = json.loads(json.dumps(policy.snapshot()))
    assert stored == policy.snapshot()
    assert SLAPolicy.from_snapshot(stored) == policy
    assert SLAPolicy.from_snapshot(stored).business_calendar() == OFFICE


# -- due_time, paused_minutes, business_minutes_used --------------------------------


def test_without_pauses_the_due_time_is_the_calendar_sum() -> None:
    start = berlin(2026, 3, 2, 9)
    assert sla.due_time(OFFICE, start, 240) == berlin(2026, 3, 2, 13)
    assert sla.due_time(OFFICE, start, 0) == start


def test_a_clock_started_outside_business_hours_counts_from_the_next_opening() -> None:
    # Thursday evening before Easter: Friday and Monday are holidays.
    start = berlin(2026, 4, 2, 19, 30)
    assert sla.due_time(OFFICE, start, 30) == berlin(2026, 4, 7, 8, 30)
    # Landing exactly on closing time stays there.
    assert sla.due_time(OFFICE, start, 600) == berlin(2026, 4, 7, 18)


def test_a_pause_across_a_weekend_adds_its_business_minutes() -> None:
    start = berlin(2026, 3, 2, 9)  # Monday
    weekend = pause(berlin(2026, 3, 6, 17), berlin(2026, 3, 9, 9))
    without = sla.due_time(OFFICE, start, 4320)
    with_pause = sla.due_time(OFFICE, start, 4320, [weekend])
    assert without == berlin(2026, 3, 11, 11)
    assert with_pause == berlin(2026, 3, 11, 13)
    # Friday 17-18 and Monday 08-09: two business hours, the weekend is free.
    assert sla.paused_minutes(OFFICE, [weekend], with_pause) == 120
    assert OFFICE.business_minutes_between(without, with_pause) == 120


def test_pauses_after_the_due_time_or_outside_hours_change_nothing() -> None:
    start = berlin(2026, 3, 2, 9)
    due = berlin(2026, 3, 2, 13)
    later = pause(berlin(2026, 3, 2, 14), berlin(2026, 3, 3, 9))
    at_due = pause(due, berlin(2026, 3, 2, 15))
    saturday = pause(berlin(2026, 3, 7, 9), berlin(2026, 3, 7, 17))
    for pauses in ([later], [at_due], [at_due, later], [saturday]):
        assert sla.due_time(OFFICE, start, 240, pauses) == due
    # An open pause after the due time leaves it known, too.
    assert sla.due_time(OFFICE, start, 240, [pause(due, None)]) == due


def test_an_open_pause_before_the_due_time_leaves_it_unknown() -> None:
    start = berlin(2026, 3, 2, 9)
    assert sla.due_time(OFFICE, start, 240, [pause(berlin(2026, 3, 2, 10), None)]) is (
        None
    )
    # A closed pause before an open one is still counted when it closes.
    pauses = [
        pause(berlin(2026, 3, 2, 12), None),
        pause(berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 11)),
    ]
    assert sla.due_time(OFFICE, start, 240, pauses) is None
    pauses[0] = pause(berlin(2026, 3, 2, 12), berlin(2026, 3, 2, 12, 30))
    assert sla.due_time(OFFICE, start, 240, pauses) == berlin(2026, 3, 2, 14, 30)
    # Pauses are taken in time order, whatever the order given.
    assert sla.due_time(OFFICE, start, 240, pauses[::-1]) == berlin(2026, 3, 2, 14, 30)


def test_paused_minutes_counts_open_pauses_to_until_and_clips_at_it() -> None:
    until = berlin(2026, 3, 3, 10)
    pauses = [
        pause(berlin(2026, 3, 2, 17), berlin(2026, 3, 3, 9)),  # 60 + 60
        pause(berlin(2026, 3, 3, 9, 30), None),  # open: 30 up to until
        pause(berlin(2026, 3, 3, 11), berlin(2026, 3, 3, 12)),  # after until
    ]
    assert sla.paused_minutes(OFFICE, pauses, until) == 150
    assert sla.paused_minutes(OFFICE, pauses[:1], berlin(2026, 3, 2, 17, 30)) == 30
    assert sla.paused_minutes(OFFICE, [], until) == 0


def test_business_minutes_used_leaves_out_the_pauses() -> None:
    start = berlin(2026, 3, 2, 9)
    pauses = [pause(berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 11))]
    assert sla.business_minutes_used(OFFICE, start, berlin(2026, 3, 2, 12)) == 180
    assert sla.business_minutes_used(OFFICE, start, berlin(2026, 3, 2, 12), pauses) == (
        120
    )
    # Mid-pause, the paused part so far is left out.
    assert sla.business_minutes_used(
        OFFICE, start, berlin(2026, 3, 2, 10, 30), [pause(berlin(2026, 3, 2, 10), None)]
    ) == (60)
    assert sla.business_minutes_used(OFFICE, start, start - timedelta(hours=1)) == 0


def test_the_warning_point_is_the_warning_share_of_the_target() -> None:
    policy = policy_for(
        parse(
            {
                "sla_config": {"high": {"response": 240, "resolution": 1440}},
                "business_hours": OFFICE_CONFIG,
            }
        ),
        1,
        facts(),
    )
    start = berlin(2026, 3, 2, 9)
    first = sla.deadline(
        policy, priority="high", target=sla.FIRST_RESPONSE, started_at=start, pauses=[]
    )
    assert first.due_at == berlin(2026, 3, 2, 13)
    # 80 % of 240 business minutes is 192: 12:12.
    assert first.warning_at == berlin(2026, 3, 2, 12, 12)
    resolution = sla.deadline(
        policy, priority="high", target=sla.RESOLUTION, started_at=start, pauses=[]
    )
    # 1152 of 1440 minutes: Monday 540, Tuesday 600, Wednesday 12 more.
    assert resolution.warning_at == berlin(2026, 3, 4, 8, 12)
    assert resolution.due_at == berlin(2026, 3, 4, 13)
    paused = sla.deadline(
        policy,
        priority="high",
        target=sla.FIRST_RESPONSE,
        started_at=start,
        pauses=[pause(berlin(2026, 3, 2, 10), None)],
    )
    assert paused == sla.Deadline(due_at=None, warning_at=None)


def test_the_explanation_says_why() -> None:
    policy = policy_for(parse({"business_hours": OFFICE_CONFIG}), 9, facts())
    start = berlin(2026, 3, 6, 16)
    pauses = [pause(berlin(2026, 3, 6, 17), berlin(2026, 3, 9, 9))]
    due = sla.due_time(OFFICE, start, 240, pauses)
    explanation = sla.explain(
        policy,
        priority="urgent",
        target=sla.FIRST_RESPONSE,
        started_at=start,
        pauses=pauses,
        due_at=due,
        warning_at=None,
    )
    assert explanation == {
        "policy": "default",
        "settings_version": 9,
        "priority": "urgent",
        "target": "first_response",
        "target_minutes": 60.0,
        "warning_percent": 80.0,
        "calendar": OFFICE_CONFIG,
        "started_at": start.isoformat(),
        "paused": [
            {
                "start": berlin(2026, 3, 6, 17).isoformat(),
                "end": berlin(2026, 3, 9, 9).isoformat(),
                "business_minutes": 120.0,
            }
        ],
        "due_at": due.isoformat() if due else None,
        "warning_at": None,
    }
    json.dumps(explanation)  # stored on events as is


# -- target_state and stop_outcome --------------------------------------------------

DUE = datetime(2026, 3, 2, 12, tzinfo=UTC)
WARN = datetime(2026, 3, 2, 11, tzinfo=UTC)


def clock(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "due_at": DUE,
        "warning_at": WARN,
        "warned": False,
        "breached": False,
        "stopped_at": None,
        "outcome": None,
    }
    fields.update(overrides)
    return fields


MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("overrides", "now", "state"),
    [
        ({}, WARN - MINUTE, "running"),
        ({}, WARN, "warning"),
        ({"warned": True}, WARN - MINUTE, "warning"),
        ({}, DUE, "breached"),
        ({"warned": True, "breached": True}, WARN - MINUTE, "breached"),
        ({"due_at": None, "warning_at": None}, DUE + MINUTE, "paused"),
        ({"due_at": None, "warning_at": None, "warned": True}, DUE, "paused"),
        ({"due_at": None, "warning_at": None, "breached": True}, DUE, "breached"),
        ({"stopped_at": WARN, "outcome": "met"}, DUE + MINUTE, "met"),
        ({"stopped_at": DUE, "outcome": "breached"}, DUE, "breached"),
        ({"stopped_at": WARN, "outcome": "stopped"}, DUE + MINUTE, "stopped"),
        ({"stopped_at": WARN, "outcome": None}, DUE, "stopped"),
    ],
)
def test_target_state(overrides: dict[str, Any], now: datetime, state: str) -> None:
    assert sla.target_state(clock(**overrides), now) == state


@pytest.mark.parametrize(
    ("overrides", "at", "goal_reached", "outcome"),
    [
        ({}, DUE - MINUTE, True, "met"),
        # Using exactly the target minutes is meeting it.
        ({}, DUE, True, "met"),
        ({}, DUE + timedelta(microseconds=1), True, "breached"),
        ({}, DUE - MINUTE, False, "stopped"),
        # Owed and not given in time: late is late, goal or not.
        ({}, DUE + MINUTE, False, "breached"),
        # A recorded breach stands even if the due time moved out since.
        ({"breached": True}, DUE - MINUTE, True, "breached"),
        ({"due_at": None}, DUE + MINUTE, True, "met"),
    ],
)
def test_stop_outcome(
    overrides: dict[str, Any], at: datetime, goal_reached: bool, outcome: str
) -> None:
    assert sla.stop_outcome(clock(**overrides), at, goal_reached=goal_reached) == (
        outcome
    )


# -- properties ----------------------------------------------------------------------

PROPERTIES = settings(max_examples=150, deadline=None)
US = timedelta(microseconds=1)


@st.composite
def minutes_for(draw: st.DrawFn, cal: BusinessCalendar) -> float:
    """Up to about two weeks of business time, fractional or whole."""
    upper = weekly_minutes(cal) * 2
    if draw(st.booleans()):
        return float(draw(st.integers(0, int(upper))))
    return draw(st.floats(0, upper, allow_nan=False, allow_infinity=False))


@st.composite
def closed_pauses(draw: st.DrawFn, start: datetime) -> list[dict[str, Any]]:
    """Disjoint closed pauses from ``start`` on, as a ticket records them.

    Gaps and lengths run from nothing (a pause right at the start, two
    pauses back to back, an empty pause) to several days.
    """
    spans = st.one_of(st.just(0), st.integers(1, 4 * 3600), st.integers(0, 5 * 86_400))
    pauses = []
    cursor = start
    for _ in range(draw(st.integers(0, 4))):
        begin = cursor + timedelta(seconds=draw(spans))
        end = begin + timedelta(
            seconds=draw(spans), microseconds=draw(st.integers(0, 999_999))
        )
        pauses.append(pause(begin, end))
        cursor = end
    return pauses


@PROPERTIES
@given(st.data(), calendars(), instants)
def test_without_pauses_due_time_is_add_business_minutes(
    data: st.DataObject, cal: BusinessCalendar, start: datetime
) -> None:
    minutes = data.draw(minutes_for(cal))
    assert sla.due_time(cal, start, minutes) == cal.add_business_minutes(start, minutes)
    assert sla.due_time(cal, start, minutes, []) == cal.add_business_minutes(
        start, minutes
    )


@PROPERTIES
@given(st.data(), calendars(), instants)
def test_the_running_time_up_to_the_due_time_is_the_target(
    data: st.DataObject, cal: BusinessCalendar, start: datetime
) -> None:
    minutes = data.draw(minutes_for(cal), label="minutes")
    pauses = data.draw(closed_pauses(start), label="pauses")
    due = sla.due_time(cal, start, minutes, pauses)
    assert due is not None
    assert due >= start
    used = sla.business_minutes_used(cal, start, due, pauses)
    assert abs(used - minutes) <= TOLERANCE


@PROPERTIES
@given(st.data(), calendars(), instants)
def test_a_pause_never_makes_the_due_time_earlier(
    data: st.DataObject, cal: BusinessCalendar, start: datetime
) -> None:
    minutes = data.draw(minutes_for(cal), label="minutes")
    pauses = data.draw(closed_pauses(start), label="pauses")
    for dropped in range(len(pauses)):
        fewer = pauses[:dropped] + pauses[dropped + 1 :]
        before = sla.due_time(cal, start, minutes, fewer)
        after = sla.due_time(cal, start, minutes, pauses)
        assert before is not None and after is not None
        assert before <= after


@PROPERTIES
@given(st.data(), calendars(), instants)
def test_due_time_is_monotonic_in_minutes(
    data: st.DataObject, cal: BusinessCalendar, start: datetime
) -> None:
    m1 = data.draw(minutes_for(cal), label="m1")
    m2 = data.draw(minutes_for(cal), label="m2")
    m1, m2 = sorted((m1, m2))
    pauses = data.draw(closed_pauses(start), label="pauses")
    due1 = sla.due_time(cal, start, m1, pauses)
    due2 = sla.due_time(cal, start, m2, pauses)
    assert due1 is not None and due2 is not None
    assert start <= due1 <= due2


@PROPERTIES
@given(st.data(), calendars(), instants)
def test_an_open_last_pause_is_unknown_only_when_reached_before_the_due_time(
    data: st.DataObject, cal: BusinessCalendar, start: datetime
) -> None:
    minutes = data.draw(minutes_for(cal), label="minutes")
    pauses = data.draw(closed_pauses(start), label="pauses")
    closed_due = sla.due_time(cal, start, minutes, pauses)
    assert closed_due is not None
    last_end = pauses[-1]["end"] if pauses else start
    open_start = last_end + timedelta(seconds=data.draw(st.integers(0, 3 * 86_400)))
    with_open = sla.due_time(cal, start, minutes, [*pauses, pause(open_start, None)])
    if open_start < closed_due:
        assert with_open is None
    else:
        assert with_open == closed_due
