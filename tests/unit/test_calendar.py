"""Business-calendar arithmetic: DST, holidays, weekends, breaks, 24x7."""

import copy
import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dotmac.ticketing.domain.calendar import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_8_18 = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def office(**extra: object) -> BusinessCalendar:
    return BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "week": WEEKDAYS_8_18, **extra}
    )


# -- construction and validation --------------------------------------------


def test_from_config_normalises_week_and_holidays() -> None:
    cal = BusinessCalendar.from_config(
        {
            "timezone": "Europe/Berlin",
            "week": {
                "mon": ["08:00", "18:00"],
                "Tue": [["13:00", "17:00"], ["08:00", "12:00"]],
                "sat": [],
                "sun": None,
            },
            "holidays": ["2026-12-25", "2026-12-26"],
        }
    )
    assert cal.timezone == "Europe/Berlin"
    assert dict(cal.week) == {
        0: ((time(8), time(18)),),
        1: ((time(8), time(12)), (time(13), time(17))),
    }
    assert cal.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})
    assert BusinessCalendar.from_config(cal.to_config()) == cal
    assert hash(BusinessCalendar.from_config(cal.to_config())) == hash(cal)


def test_calendars_pickle_and_copy() -> None:
    cal = office(holidays=["2026-12-25"])
    assert pickle.loads(pickle.dumps(cal)) == cal
    assert copy.deepcopy(cal) == cal
    assert copy.copy(cal) == cal


def test_seconds_in_config() -> None:
    cal = BusinessCalendar.from_config(
        {"timezone": "UTC", "week": {"mon": ["08:00:30", "18:00"]}}
    )
    assert cal.week[0] == ((time(8, 0, 30), time(18)),)
    assert BusinessCalendar.from_config(cal.to_config()) == cal


def test_24x7_config() -> None:
    cal = BusinessCalendar.from_config("24x7")
    assert cal == BusinessCalendar.always_open()
    assert cal.to_config() == "24x7"
    assert cal.is_open(datetime(2026, 12, 25, 3, tzinfo=UTC))


def test_dataclass_constructor_accepts_weekday_numbers_and_names() -> None:
    a = BusinessCalendar("UTC", {0: [(time(9), time(17))]})  # type: ignore[dict-item]
    b = BusinessCalendar("UTC", {"mon": ((time(9), time(17)),)})  # type: ignore[dict-item]
    assert a == b


def test_24_00_ends_the_day() -> None:
    cal = BusinessCalendar.from_config(
        {
            "timezone": "UTC",
            "week": {"mon": ["22:00", "24:00"], "tue": ["00:00", "02:00"]},
        }
    )
    mon = datetime(2026, 3, 2, 21, tzinfo=UTC)
    assert cal.add_business_minutes(mon, 180) == datetime(2026, 3, 3, 1, tzinfo=UTC)
    assert cal.is_open(datetime(2026, 3, 2, 23, 59, tzinfo=UTC))
    assert cal.to_config()["week"]["mon"] == [["22:00", "24:00"]]  # type: ignore[index]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"timezone": "Mars/Olympus", "week": WEEKDAYS_8_18}, "timezone"),
        ({"timezone": "", "week": WEEKDAYS_8_18}, "timezone"),
        ({"week": WEEKDAYS_8_18}, "timezone"),
        ({"timezone": "UTC"}, "week"),
        ({"timezone": "UTC", "week": {"monday": ["08:00", "18:00"]}}, "week.monday"),
        ({"timezone": "UTC", "week": {"mon": ["18:00", "08:00"]}}, "week.mon"),
        ({"timezone": "UTC", "week": {"mon": ["08:00", "08:00"]}}, "week.mon"),
        ({"timezone": "UTC", "week": {"mon": ["8am", "18:00"]}}, "week.mon.start"),
        ({"timezone": "UTC", "week": {"mon": ["08:00", "25:00"]}}, "week.mon.end"),
        ({"timezone": "UTC", "week": {"mon": ["24:00", "24:00"]}}, "week.mon.start"),
        ({"timezone": "UTC", "week": {"mon": ["08:00"]}}, "week.mon"),
        (
            {
                "timezone": "UTC",
                "week": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]},
            },
            "week.mon",
        ),
        (
            {"timezone": "UTC", "week": {"mon": [["08:00", "12:00"], ["13:00", "x"]]}},
            "week.mon[1].end",
        ),
        ({"timezone": "UTC", "week": {}}, "week"),
        ({"timezone": "UTC", "week": {"mon": []}}, "week"),
        (
            {"timezone": "UTC", "week": WEEKDAYS_8_18, "holidays": ["2026-13-01"]},
            "holidays[0]",
        ),
        (
            {
                "timezone": "UTC",
                "week": WEEKDAYS_8_18,
                "holidays": ["2026-01-01", "soon"],
            },
            "holidays[1]",
        ),
        (
            {"timezone": "UTC", "week": WEEKDAYS_8_18, "holidays": "2026-01-01"},
            "holidays",
        ),
        ({"timezone": "UTC", "week": WEEKDAYS_8_18, "colour": "red"}, "colour"),
        ("always", "business_hours"),
    ],
)
def test_invalid_config_names_the_field(config: object, field: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        BusinessCalendar.from_config(config)  # type: ignore[arg-type]
    assert str(excinfo.value).startswith(f"{field}:"), str(excinfo.value)


def test_naive_datetimes_are_refused() -> None:
    cal = office()
    naive = datetime(2026, 3, 2, 9)
    aware = berlin(2026, 3, 2, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_business_minutes(naive, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.business_minutes_between(naive, aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.business_minutes_between(aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        BusinessCalendar.always_open().add_business_minutes(naive, 10)


@pytest.mark.parametrize("minutes", [-1, float("nan"), float("inf")])
def test_bad_minutes_are_refused(minutes: float) -> None:
    with pytest.raises(ValueError, match="minutes"):
        office().add_business_minutes(berlin(2026, 3, 2, 9), minutes)


# -- weekdays, weekends, outside hours ----------------------------------------


def test_results_are_utc() -> None:
    due = office().add_business_minutes(berlin(2026, 3, 2, 9), 60)
    assert due.tzinfo is UTC
    assert due == berlin(2026, 3, 2, 10)


def test_ticket_created_outside_hours_starts_at_next_opening() -> None:
    cal = office()
    friday_evening = berlin(2026, 3, 6, 20)
    assert cal.add_business_minutes(friday_evening, 30) == berlin(2026, 3, 9, 8, 30)
    assert cal.add_business_minutes(berlin(2026, 3, 7, 11), 15) == berlin(
        2026, 3, 9, 8, 15
    )
    before_opening = berlin(2026, 3, 9, 6)
    assert cal.add_business_minutes(before_opening, 60) == berlin(2026, 3, 9, 9)
    assert cal.business_minutes_between(friday_evening, berlin(2026, 3, 9, 8)) == 0


def test_due_time_within_the_day_and_spilling_over() -> None:
    cal = office()
    assert cal.add_business_minutes(berlin(2026, 3, 2, 9), 240) == berlin(
        2026, 3, 2, 13
    )
    # 17:00 + 120 min: 60 today, 60 tomorrow morning.
    assert cal.add_business_minutes(berlin(2026, 3, 2, 17), 120) == berlin(
        2026, 3, 3, 9
    )
    # Friday 17:00 + 120 min lands on Monday 09:00.
    assert cal.add_business_minutes(berlin(2026, 3, 6, 17), 120) == berlin(
        2026, 3, 9, 9
    )


def test_due_time_at_closing_stays_at_closing() -> None:
    cal = office()
    assert cal.add_business_minutes(berlin(2026, 3, 2, 17), 60) == berlin(
        2026, 3, 2, 18
    )
    assert cal.add_business_minutes(berlin(2026, 3, 6, 8), 600) == berlin(
        2026, 3, 6, 18
    )


def test_zero_minutes_is_due_immediately() -> None:
    cal = office()
    open_time = berlin(2026, 3, 2, 9)
    closed_time = berlin(2026, 3, 7, 9)
    assert cal.add_business_minutes(open_time, 0) == open_time
    assert cal.add_business_minutes(closed_time, 0) == closed_time


def test_pause_resume_across_a_weekend() -> None:
    cal = office()
    paused = cal.business_minutes_between(berlin(2026, 3, 6, 17), berlin(2026, 3, 9, 9))
    assert paused == 120
    # Resuming extends a Friday 17:30 due time by the paused business time.
    due = berlin(2026, 3, 6, 17, 30)
    assert cal.add_business_minutes(due, paused) == berlin(2026, 3, 9, 9, 30)


def test_between_is_zero_when_end_not_after_start() -> None:
    cal = office()
    t = berlin(2026, 3, 2, 9)
    assert cal.business_minutes_between(t, t) == 0
    assert cal.business_minutes_between(t, t - timedelta(hours=1)) == 0


def test_between_accepts_mixed_time_zones() -> None:
    cal = office()
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)  # 09:00 Berlin
    end = datetime(2026, 3, 2, 12, tzinfo=ZoneInfo("America/New_York"))  # 18:00 Berlin
    assert cal.business_minutes_between(start, end) == 540


def test_is_open_boundaries() -> None:
    cal = office()
    assert cal.is_open(berlin(2026, 3, 2, 8))
    assert cal.is_open(berlin(2026, 3, 2, 17, 59, 59))
    assert not cal.is_open(berlin(2026, 3, 2, 18))
    assert not cal.is_open(berlin(2026, 3, 2, 7, 59))
    assert not cal.is_open(berlin(2026, 3, 7, 10))  # Saturday
    # 07:30 UTC on a Monday in winter is 08:30 in Berlin.
    assert cal.is_open(datetime(2026, 3, 2, 7, 30, tzinfo=UTC))


def test_long_spans_count_weeks() -> None:
    cal = office()
    start = berlin(2026, 1, 5, 8)  # a Monday
    assert cal.business_minutes_between(start, start + timedelta(weeks=10)) == 10 * 3000
    due = cal.add_business_minutes(start, 10 * 3000)
    assert due == berlin(2026, 3, 13, 18)  # Friday of the 10th week, at closing


def test_long_spans_are_fast() -> None:
    cal = office(holidays=["2027-01-01"])
    start = berlin(2026, 1, 5, 8)
    end = start + timedelta(days=365 * 10)
    minutes = cal.business_minutes_between(start, end)
    assert cal.add_business_minutes(start, minutes) <= end
    assert cal.business_minutes_between(
        start, cal.add_business_minutes(start, minutes)
    ) == (minutes)


# -- holidays -----------------------------------------------------------------


def test_holiday_is_skipped() -> None:
    cal = office(holidays=["2026-12-25"])  # a Friday
    thursday = berlin(2026, 12, 24, 17)
    assert cal.add_business_minutes(thursday, 120) == berlin(2026, 12, 28, 9)
    assert cal.business_minutes_between(thursday, berlin(2026, 12, 28, 9)) == 120
    assert not cal.is_open(berlin(2026, 12, 25, 10))
    assert office().is_open(berlin(2026, 12, 25, 10))


def test_holiday_is_a_local_date() -> None:
    cal = office(holidays=["2026-12-25"])
    # 23:30 UTC on the 24th is already the 25th in Berlin.
    assert (
        cal.business_minutes_between(
            datetime(2026, 12, 24, 23, 30, tzinfo=UTC), berlin(2026, 12, 26, 0)
        )
        == 0
    )


# -- lunch breaks ---------------------------------------------------------------


def test_multi_interval_days() -> None:
    cal = BusinessCalendar.from_config(
        {
            "timezone": "Europe/Berlin",
            "week": {
                d: [["08:00", "12:00"], ["13:00", "17:00"]] for d in WEEKDAYS_8_18
            },
        }
    )
    monday = berlin(2026, 3, 2, 11)
    assert cal.add_business_minutes(monday, 60) == berlin(2026, 3, 2, 12)
    assert cal.add_business_minutes(monday, 90) == berlin(2026, 3, 2, 13, 30)
    assert cal.add_business_minutes(berlin(2026, 3, 2, 12, 15), 10) == berlin(
        2026, 3, 2, 13, 10
    )
    assert (
        cal.business_minutes_between(berlin(2026, 3, 2, 7), berlin(2026, 3, 3, 7))
        == 480
    )
    assert cal.business_minutes_between(monday, berlin(2026, 3, 2, 14)) == 120
    assert not cal.is_open(berlin(2026, 3, 2, 12, 30))
    assert cal.is_open(berlin(2026, 3, 2, 13))


# -- 24x7 -----------------------------------------------------------------------


def test_24x7() -> None:
    cal = BusinessCalendar.always_open()
    t = datetime(2026, 12, 25, 23, 59, tzinfo=UTC)
    assert cal.add_business_minutes(t, 15) == datetime(2026, 12, 26, 0, 14, tzinfo=UTC)
    assert cal.add_business_minutes(t, 0.5) == t + timedelta(seconds=30)
    assert cal.business_minutes_between(t, t + timedelta(days=7)) == 10080
    assert cal.is_open(t)


# -- DST ------------------------------------------------------------------------


def berlin_24x7_with_holiday() -> BusinessCalendar:
    """Open around the clock, but not the fast path (it has a holiday)."""
    return BusinessCalendar.from_config(
        {
            "timezone": "Europe/Berlin",
            "week": {
                d: ["00:00", "24:00"]
                for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
            "holidays": ["1999-01-01"],
        }
    )


@pytest.mark.parametrize(
    "cal",
    [BusinessCalendar.always_open("Europe/Berlin"), berlin_24x7_with_holiday()],
    ids=["always_open", "full-days"],
)
def test_dst_with_24x7(cal: BusinessCalendar) -> None:
    # Spring forward 2026-03-29: the local day has 23 hours.
    assert (
        cal.business_minutes_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 1380
    )
    assert cal.add_business_minutes(berlin(2026, 3, 29, 1, 30), 60) == berlin(
        2026, 3, 29, 3, 30
    )
    # Fall back 2026-10-25: the local day has 25 hours.
    assert (
        cal.business_minutes_between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 1500
    )
    assert cal.add_business_minutes(berlin(2026, 10, 25), 24 * 60) == berlin(
        2026, 10, 25, 23
    )


def sunday_calendar(*hours: tuple[str, str]) -> BusinessCalendar:
    return BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "week": {"sun": [list(h) for h in hours]}}
    )


def test_dst_open_sunday_keeps_local_hours() -> None:
    cal = sunday_calendar(("08:00", "18:00"))
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        start = berlin(day.year, day.month, day.day)
        assert cal.business_minutes_between(start, start + timedelta(days=2)) == 600
        assert cal.add_business_minutes(start, 1) == berlin(
            day.year, day.month, day.day, 8, 1
        )
        assert cal.add_business_minutes(start, 600) == berlin(
            day.year, day.month, day.day, 18
        )
    # Spring forward: 08:00 CEST is 06:00 UTC; fall back: 08:00 CET is 07:00 UTC.
    assert cal.add_business_minutes(berlin(2026, 3, 29), 0.5) == datetime(
        2026, 3, 29, 6, 0, 30, tzinfo=UTC
    )
    assert cal.add_business_minutes(berlin(2026, 10, 25), 0.5) == datetime(
        2026, 10, 25, 7, 0, 30, tzinfo=UTC
    )


def test_dst_interval_across_the_gap_counts_real_minutes() -> None:
    cal = sunday_calendar(("01:00", "04:00"))
    spring = berlin(2026, 3, 29)
    fall = berlin(2026, 10, 25)
    assert cal.business_minutes_between(spring, spring + timedelta(days=1)) == 120
    assert cal.business_minutes_between(fall, fall + timedelta(days=1)) == 240
    # 01:30 CET + 60 real minutes = 03:30 CEST.
    assert cal.add_business_minutes(berlin(2026, 3, 29, 1, 30), 60) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    assert cal.add_business_minutes(spring, 120) == berlin(2026, 3, 29, 4)
    # The hour 02:00-03:00 happens twice on the fall-back night and is open both times.
    second_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert cal.is_open(second_0230)
    assert cal.add_business_minutes(fall, 180) == berlin(2026, 10, 25, 3)  # 02:00 UTC


def test_dst_interval_inside_the_gap_never_opens_that_day() -> None:
    cal = sunday_calendar(("02:00", "03:00"))
    spring = berlin(2026, 3, 29)
    assert cal.business_minutes_between(spring, spring + timedelta(days=1)) == 0
    assert cal.add_business_minutes(spring, 1) == berlin(2026, 4, 5, 2, 1)
    fall = berlin(2026, 10, 25)
    assert cal.business_minutes_between(fall, fall + timedelta(days=1)) == 120


def test_dst_office_week_is_shorter_in_utc_but_not_in_business_time() -> None:
    cal = office()
    # The week around the spring-forward Sunday still has 5 x 600 minutes.
    start = berlin(2026, 3, 23)
    assert cal.business_minutes_between(start, start + timedelta(weeks=2)) == 6000
    assert cal.add_business_minutes(berlin(2026, 3, 27, 17), 120) == berlin(
        2026, 3, 30, 9
    )
    assert cal.add_business_minutes(berlin(2026, 10, 23, 17), 120) == berlin(
        2026, 10, 26, 9
    )
