"""Property tests of the SLA clock on random calendars, zones and instants."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dotmac.ticketing.domain.calendar import WEEKDAYS, BusinessCalendar

FAST = settings(max_examples=200, deadline=None)
US = timedelta(microseconds=1)
TOLERANCE = 1e-6  # minutes

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kathmandu",  # +05:45
    "America/Sao_Paulo",  # DST changed at midnight until 2019
    "Pacific/Chatham",  # +12:45 / +13:45
]
# Days on which some of the zones above change their clocks.
TRANSITIONS = [
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2026, 9, 27, tzinfo=UTC),
    datetime(2018, 2, 18, tzinfo=UTC),
    datetime(2018, 11, 4, tzinfo=UTC),
]


# Typical and awkward days: office hours, lunch breaks, whole days, intervals
# across or inside a DST gap, around midnight, odd minutes, tiny ones.
DAY_TEMPLATES: list[list[list[str]]] = [
    [],
    [],
    [["08:00", "18:00"]],
    [["09:00", "17:00"]],
    [["08:00", "12:00"], ["13:00", "17:00"]],
    [["00:00", "24:00"]],
    [["01:00", "04:00"]],
    [["02:00", "03:00"]],
    [["02:30", "02:45"], ["03:00", "03:30"]],
    [["00:00", "06:00"], ["22:00", "24:00"]],
    [["07:13", "19:47"]],
    [["12:00", "12:01"]],
    [["00:00", "00:30"], ["06:15", "11:45"], ["23:59", "24:00"]],
]


def fmt(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def random_day(draw: st.DrawFn) -> list[list[str]]:
    """Up to three disjoint working intervals at arbitrary minutes."""
    points = sorted(draw(st.lists(st.integers(0, 1440), max_size=6, unique=True)))
    if len(points) % 2:
        points.pop()
    return [[fmt(a), fmt(b)] for a, b in zip(points[::2], points[1::2], strict=True)]


day_hours = st.one_of(st.sampled_from(DAY_TEMPLATES), random_day())


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    if draw(st.integers(0, 9)) == 0:
        return BusinessCalendar.always_open(draw(st.sampled_from(ZONES)))
    week = {name: draw(day_hours) for name in WEEKDAYS}
    assume(any(week.values()))
    holidays = draw(
        st.lists(
            st.one_of(
                st.dates(date(2015, 1, 1), date(2031, 12, 31)),
                st.sampled_from(TRANSITIONS).map(lambda t: t.date()),
            ),
            max_size=4,
        )
    )
    config: dict[str, Any] = {
        "timezone": draw(st.sampled_from(ZONES)),
        "week": week,
        "holidays": [h.isoformat() for h in holidays],
    }
    return BusinessCalendar.from_config(config)


instants = st.one_of(
    st.datetimes(datetime(2015, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda base, delta: base + timedelta(seconds=delta),
        st.sampled_from(TRANSITIONS),
        st.integers(-2 * 86_400, 2 * 86_400),
    ),
)


def weekly_minutes(cal: BusinessCalendar) -> float:
    total = 0.0
    for intervals in cal.week.values():
        for start, end in intervals:
            end_min = 1440 if end == time(0) else end.hour * 60 + end.minute
            total += end_min - (start.hour * 60 + start.minute)
    return total


@st.composite
def minutes_for(draw: st.DrawFn, cal: BusinessCalendar) -> float:
    """Up to about six weeks of business time, fractional or whole."""
    upper = weekly_minutes(cal) * 6
    if draw(st.booleans()):
        return float(draw(st.integers(0, int(upper))))
    return draw(st.floats(0, upper, allow_nan=False, allow_infinity=False))


@FAST
@given(st.data(), calendars(), instants)
def test_add_inverts_between_and_is_monotonic_in_minutes(
    data: st.DataObject, cal: BusinessCalendar, t: datetime
) -> None:
    m1 = data.draw(minutes_for(cal), label="m1")
    m2 = data.draw(minutes_for(cal), label="m2")
    m1, m2 = sorted((m1, m2))
    due1 = cal.add_business_minutes(t, m1)
    due2 = cal.add_business_minutes(t, m2)
    assert due2.tzinfo is UTC
    # between(t, add(t, m)) == m
    assert abs(cal.business_minutes_between(t, due1) - m1) <= TOLERANCE
    assert abs(cal.business_minutes_between(t, due2) - m2) <= TOLERANCE
    # Monotonic in the minutes, and never before the start.
    assert t <= due1 <= due2
    # Adding zero is the identity, open or closed (a zero target is due now).
    assert cal.add_business_minutes(t, 0) == t
    # The due time is the earliest such instant: the clock was running right
    # up to it, so it is never pushed past a closing time to the next opening.
    if m2 * 60_000_000 >= 1:
        assert cal.is_open(due2 - US)
        assert cal.business_minutes_between(t, due2 - US) < m2


@FAST
@given(st.data(), calendars(), instants, st.integers(0, 10 * 86_400 * 10**6))
def test_add_is_monotonic_in_start(
    data: st.DataObject, cal: BusinessCalendar, t: datetime, later_us: int
) -> None:
    minutes = data.draw(minutes_for(cal))
    t2 = t + timedelta(microseconds=later_us)
    assert cal.add_business_minutes(t, minutes) <= cal.add_business_minutes(t2, minutes)


@FAST
@given(
    calendars(),
    instants,
    st.integers(0, 20 * 86_400 * 10**6),
    st.integers(0, 20 * 86_400 * 10**6),
)
def test_between_is_additive(
    cal: BusinessCalendar, a: datetime, ab: int, bc: int
) -> None:
    b = a + timedelta(microseconds=ab)
    c = b + timedelta(microseconds=bc)
    whole = cal.business_minutes_between(a, c)
    parts = cal.business_minutes_between(a, b) + cal.business_minutes_between(b, c)
    assert abs(whole - parts) <= TOLERANCE
    assert 0 <= whole <= (c - a) / timedelta(minutes=1) + TOLERANCE
    assert cal.business_minutes_between(c, a) == 0
    # The calendar survives its configuration form.
    assert BusinessCalendar.from_config(cal.to_config()) == cal


@settings(max_examples=40, deadline=None)
@given(calendars(), instants, st.integers(1, 2 * 1440))
def test_between_agrees_with_is_open_minute_by_minute(
    cal: BusinessCalendar, t: datetime, span: int
) -> None:
    # Working hours and UTC offsets are whole minutes, so on a minute-aligned
    # grid each minute is either wholly open or wholly closed.
    start = t.replace(second=0, microsecond=0)
    open_minutes = sum(cal.is_open(start + timedelta(minutes=i)) for i in range(span))
    assert cal.business_minutes_between(start, start + timedelta(minutes=span)) == (
        open_minutes
    )


@FAST
@given(st.sampled_from(ZONES), instants, st.floats(0, 10**6, allow_nan=False))
def test_always_open_is_elapsed_time(zone: str, t: datetime, minutes: float) -> None:
    cal = BusinessCalendar.always_open(zone)
    due = cal.add_business_minutes(t, minutes)
    assert abs((due - t) / timedelta(minutes=1) - minutes) <= TOLERANCE
    assert abs(cal.business_minutes_between(t, due) - minutes) <= TOLERANCE
