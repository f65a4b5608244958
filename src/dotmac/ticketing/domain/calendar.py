"""Business calendars and the SLA clock arithmetic on them.

A :class:`BusinessCalendar` says when a tenant is "at work": a time zone, the
working intervals of each weekday as wall-clock times in that zone, and
holidays (whole local dates on which it is closed).  The SLA clock only runs
while the calendar is open.

Semantics and edge choices (all deliberate, all covered by tests):

* **Open set.**  An instant ``t`` is open when, in the calendar's zone, its
  local date is not a holiday and its local wall-clock time lies in one of the
  half-open intervals ``[start, end)`` of that date's weekday.  So a ticket is
  *closed* exactly at closing time and *open* exactly at opening time.
  ``is_open``, ``add_business_minutes`` and ``business_minutes_between`` all
  use this one definition.
* **Midnight.**  An interval end of ``00:00`` (``"24:00"`` or ``"00:00"`` in
  configuration) means midnight at the *end* of the day.  Intervals may not
  cross midnight: split them over two days (``22:00-24:00`` and
  ``00:00-06:00``).
* **DST.**  Working hours are wall-clock times, so 08:00-18:00 stays
  08:00-18:00 local on the days the clocks change, and business time is the
  real elapsed time in UTC.  An interval that spans the spring-forward gap is
  shorter by the gap (01:00-04:00 Berlin on 2026-03-29 counts 120 minutes), one
  that spans the fall-back overlap is longer (240 minutes on 2026-10-25).  Wall
  times that do not exist (inside the gap) are simply never reached; wall
  times that occur twice (the overlap) are open both times.
* **Adding.**  ``add_business_minutes(start, m)`` is the *earliest* instant
  ``T >= start`` with ``business_minutes_between(start, T) == m``.  Hence:

  - a due time that lands exactly at closing time stays at closing time (it
    does not move to the next morning's opening);
  - ``add_business_minutes(t, 0) == t`` always, also when ``t`` is outside
    business hours: a zero target is due immediately.  Any positive amount
    started while closed counts from the next opening (Friday 20:00 plus 30
    minutes on a Monday-Friday 08:00-18:00 calendar is Monday 08:30).

* **Precision.**  Arithmetic is exact on integer microseconds; minutes (which
  may be fractional) are rounded to the nearest microsecond.
* All inputs must be timezone-aware (naive datetimes raise ``ValueError``);
  results are returned in UTC.
* **Efficiency.**  The loops advance a local day at a time (never minute by
  minute); a calendar that is open around the clock with no holidays is
  plain UTC arithmetic.  Time-zone transitions are located per day by
  sampling the UTC offset every few hours and bisecting to the second, which
  is exact for every real time zone (transitions are never closer than a few
  hours apart).

Pure: standard library only, no I/O beyond the time-zone database that
:mod:`zoneinfo` reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ALWAYS_OPEN",
    "WEEKDAYS",
    "BusinessCalendar",
    "Interval",
]

#: Weekday names as used in configuration; the index is ``date.weekday()``.
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: The configuration value for a calendar that never closes.
ALWAYS_OPEN = "24x7"

#: A working interval ``(start, end)`` in local wall-clock time; an ``end`` of
#: ``time(0)`` means midnight at the end of the day.
Interval = tuple[time, time]

_MIDNIGHT = time(0)
_US_PER_MINUTE = 60_000_000
_US_PER_SECOND = 1_000_000
_US_PER_HOUR = 3_600 * _US_PER_SECOND
_US_PER_DAY = 24 * _US_PER_HOUR
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# UTC offsets have never exceeded ±16 h (historic local mean times included).
_OFFSET_MARGIN_US = 16 * _US_PER_HOUR
# The UTC offset is sampled this often to find transitions within a day.
_SAMPLE_STEP_US = 4 * _US_PER_HOUR
# Give up when a calendar stays closed this long after its last holiday.
_MAX_CLOSED_DAYS = 400

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONFIG_KEYS = frozenset({"timezone", "week", "holidays"})


def _to_us(at: datetime, name: str = "datetime") -> int:
    """An aware datetime as integer microseconds since the Unix epoch."""
    if not isinstance(at, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at!r}")
    return (at - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _minutes_to_us(minutes: float) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise TypeError(f"minutes must be a number, not {type(minutes).__name__}")
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"minutes must be finite and >= 0, got {minutes!r}")
    return round(minutes * _US_PER_MINUTE)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond


def _end_us(t: time) -> int:
    """Microseconds into the day of an interval end (00:00 is end of day)."""
    return _US_PER_DAY if t == _MIDNIGHT else _time_us(t)


def _day_us(day: date) -> int:
    """Local midnight of ``day`` as naive wall-clock microseconds."""
    return (day.toordinal() - _EPOCH_ORDINAL) * _US_PER_DAY


def _offset_us(zone: ZoneInfo, utc_us: int) -> int:
    offset = _from_us(utc_us).astimezone(zone).utcoffset()
    assert offset is not None
    return offset // _ONE_US


@lru_cache(maxsize=16_384)
def _offset_segments(zone: ZoneInfo, day: date) -> tuple[tuple[int, int, int], ...]:
    """UTC segments of constant offset covering every instant of local ``day``.

    Returns ``(utc_start_us, utc_end_us, offset_us)`` triples, contiguous and in
    order; the whole covers ``[local midnight - 16 h, next midnight + 16 h)``
    read as UTC, which contains all instants whose local date is ``day``.
    """
    lo = _day_us(day) - _OFFSET_MARGIN_US
    hi = _day_us(day) + _US_PER_DAY + _OFFSET_MARGIN_US
    samples = [*range(lo, hi, _SAMPLE_STEP_US), hi]
    offsets = [_offset_us(zone, s) for s in samples]
    segments: list[tuple[int, int, int]] = []
    seg_start, seg_offset = lo, offsets[0]
    for i in range(1, len(samples)):
        if offsets[i] == offsets[i - 1]:
            continue
        # Bisect to the second: transitions happen on whole seconds.
        left = samples[i - 1] // _US_PER_SECOND
        right = samples[i] // _US_PER_SECOND
        before = offsets[i - 1]
        while right - left > 1:
            mid = (left + right) // 2
            if _offset_us(zone, mid * _US_PER_SECOND) == before:
                left = mid
            else:
                right = mid
        transition = right * _US_PER_SECOND
        segments.append((seg_start, transition, seg_offset))
        seg_start, seg_offset = transition, _offset_us(zone, transition)
    segments.append((seg_start, hi, seg_offset))
    return tuple(segments)


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone: expected an IANA time zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"timezone: unknown time zone {name!r}") from exc


def _normalise_day(name: str, intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    checked: list[Interval] = []
    for pair in intervals:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"week.{name}: an interval is a (start, end) pair")
        start, end = pair
        if not isinstance(start, time) or not isinstance(end, time):
            raise ValueError(f"week.{name}: interval bounds must be datetime.time")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"week.{name}: times are wall-clock, without tzinfo")
        if _end_us(end) <= _time_us(start):
            raise ValueError(
                f"week.{name}: end {end.isoformat()} is not after start "
                f"{start.isoformat()}"
            )
        checked.append((start, end))
    checked.sort(key=lambda p: _time_us(p[0]))
    for (_, end), (start, _) in pairwise(checked):
        if _time_us(start) < _end_us(end):
            raise ValueError(f"week.{name}: working intervals overlap")
    return tuple(checked)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in a time zone; see the module docstring for semantics.

    ``week`` maps ``date.weekday()`` numbers (0 = Monday … 6 = Sunday; the
    names ``"mon"`` … ``"sun"`` are accepted too) to the day's working
    intervals; absent or empty days are closed.  It is normalised to a
    read-only mapping with sorted intervals and integer keys.
    """

    timezone: str
    week: Mapping[int, tuple[Interval, ...]]
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _always_open: bool = field(init=False, repr=False, compare=False)
    _last_holiday: date | None = field(init=False, repr=False, compare=False)
    #: Each local day's open intervals once worked out (``_pieces``): the
    #: calendar never changes, and SLA arithmetic asks for the same days.
    _day_pieces: dict[date, list[tuple[int, int]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        zone = _zone(self.timezone)
        if not isinstance(self.week, Mapping):
            raise ValueError("week: expected a mapping of weekday to intervals")
        week: dict[int, tuple[Interval, ...]] = {}
        for key, intervals in self.week.items():
            day = _weekday_index(key)
            name = WEEKDAYS[day]
            if day in week:
                raise ValueError(f"week.{name}: given twice")
            normalised = _normalise_day(name, intervals)
            if normalised:
                week[day] = normalised
        if not week:
            raise ValueError("week: no working hours on any day")
        holidays = frozenset(self.holidays)
        for holiday in holidays:
            if not isinstance(holiday, date) or isinstance(holiday, datetime):
                raise ValueError(f"holidays: {holiday!r} is not a date")
        full_day = ((_MIDNIGHT, _MIDNIGHT),)
        always = not holidays and all(week.get(d) == full_day for d in range(7))
        object.__setattr__(self, "week", MappingProxyType(dict(sorted(week.items()))))
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_always_open", always)
        object.__setattr__(self, "_day_pieces", {})
        object.__setattr__(self, "_last_holiday", max(holidays, default=None))

    def __hash__(self) -> int:
        return hash((self.timezone, tuple(self.week.items()), self.holidays))

    def __reduce__(self) -> tuple[type[BusinessCalendar], tuple[Any, ...]]:
        # The read-only week mapping cannot be pickled or deep-copied as is.
        return (type(self), (self.timezone, dict(self.week), self.holidays))

    # -- construction -------------------------------------------------------

    @classmethod
    def always_open(cls, timezone: str = "UTC") -> BusinessCalendar:
        """24×7: every instant is business time (the zone is informational)."""
        return cls(timezone, {d: ((_MIDNIGHT, _MIDNIGHT),) for d in range(7)})

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> BusinessCalendar:
        """Build from the settings shape, or the string ``"24x7"``.

        ``{"timezone": "Europe/Berlin", "week": {"mon": ["08:00", "18:00"],
        "tue": [["08:00", "12:00"], ["13:00", "17:00"]], "sat": []},
        "holidays": ["2026-12-25"]}``.  A day is one ``[start, end]`` pair or a
        list of them; ``"24:00"`` ends a day; absent days are closed.  Errors
        raise ``ValueError`` whose message starts with the offending field,
        e.g. ``week.mon[0].end: ...`` or ``holidays[2]: ...``.  Times are
        ``HH:MM`` (or ``HH:MM:SS``).
        """
        if isinstance(config, str):
            if config.strip().lower() == ALWAYS_OPEN:
                return cls.always_open()
            raise ValueError(f"business_hours: expected {ALWAYS_OPEN!r} or a mapping")
        if not isinstance(config, Mapping):
            raise ValueError("business_hours: expected a mapping or '24x7'")
        unknown = sorted(str(k) for k in config if k not in _CONFIG_KEYS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field")
        if "timezone" not in config:
            raise ValueError("timezone: required")
        timezone = config["timezone"]
        _zone(timezone)
        if "week" not in config:
            raise ValueError("week: required")
        raw_week = config["week"]
        if isinstance(raw_week, str) and raw_week.strip().lower() == ALWAYS_OPEN:
            raw_week = {name: ["00:00", "24:00"] for name in WEEKDAYS}
        if not isinstance(raw_week, Mapping):
            raise ValueError("week: expected a mapping of weekday to hours")
        week: dict[int, tuple[Interval, ...]] = {}
        for key, value in raw_week.items():
            if not isinstance(key, str) or key.strip().lower() not in WEEKDAYS:
                raise ValueError(
                    f"week.{key}: unknown weekday (use {', '.join(WEEKDAYS)})"
                )
            name = key.strip().lower()
            week[WEEKDAYS.index(name)] = _parse_day(name, value)
        raw_holidays = config.get("holidays", [])
        if raw_holidays is None:
            raw_holidays = []
        if isinstance(raw_holidays, str | bytes) or not isinstance(
            raw_holidays, Sequence | frozenset | set
        ):
            raise ValueError("holidays: expected a list of YYYY-MM-DD dates")
        holidays = frozenset(
            _parse_date(f"holidays[{i}]", v) for i, v in enumerate(raw_holidays)
        )
        return cls(timezone, week, holidays)

    def to_config(self) -> dict[str, Any] | str:
        """The inverse of :meth:`from_config` (``"24x7"`` for always-open UTC)."""
        if self._always_open and self.timezone == "UTC":
            return ALWAYS_OPEN

        def fmt(t: time, end: bool = False) -> str:
            if end and t == _MIDNIGHT:
                return "24:00"
            return t.isoformat(timespec="minutes" if not t.second else "seconds")

        return {
            "timezone": self.timezone,
            "week": {
                WEEKDAYS[d]: [[fmt(s), fmt(e, end=True)] for s, e in intervals]
                for d, intervals in self.week.items()
            },
            "holidays": sorted(h.isoformat() for h in self.holidays),
        }

    # -- the clock ----------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` is business time (opening instant yes, closing no)."""
        _to_us(at, "at")
        if self._always_open:
            return True
        local = at.astimezone(self._zone)
        day = local.date()
        if day in self.holidays:
            return False
        now = _time_us(local.time())
        return any(
            _time_us(start) <= now < _end_us(end)
            for start, end in self.week.get(day.weekday(), ())
        )

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The earliest instant at which ``minutes`` of business time have
        elapsed since ``start`` (which may be outside business hours); UTC."""
        cursor = _to_us(start, "start")
        remaining = _minutes_to_us(minutes)
        if remaining == 0 or self._always_open:
            return _from_us(cursor + remaining)
        day = start.astimezone(self._zone).date() - timedelta(days=1)
        closed_days = 0
        while True:
            pieces = self._pieces(day)
            closed_days = 0 if pieces else closed_days + 1
            for lo, hi in pieces:
                lo = max(lo, cursor)
                if lo >= hi:
                    continue
                if remaining <= hi - lo:
                    return _from_us(lo + remaining)
                remaining -= hi - lo
            if closed_days > _MAX_CLOSED_DAYS and (
                self._last_holiday is None or day > self._last_holiday
            ):
                raise ValueError("calendar never opens")  # pragma: no cover
            day += timedelta(days=1)

    def business_minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes in ``[start, end)``; 0 when ``end <= start``."""
        lo_us = _to_us(start, "start")
        hi_us = _to_us(end, "end")
        if hi_us <= lo_us:
            return 0.0
        if self._always_open:
            return (hi_us - lo_us) / _US_PER_MINUTE
        day = start.astimezone(self._zone).date() - timedelta(days=1)
        last = end.astimezone(self._zone).date() + timedelta(days=1)
        total = 0
        while day <= last:
            for lo, hi in self._pieces(day):
                overlap = min(hi, hi_us) - max(lo, lo_us)
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total / _US_PER_MINUTE

    # -- internals ----------------------------------------------------------

    def _pieces(self, day: date) -> list[tuple[int, int]]:
        """The open UTC intervals (microseconds) of local ``day``, in order."""
        known = self._day_pieces.get(day)
        if known is None:
            known = self._day_pieces[day] = self._work_out_pieces(day)
        return known

    def _work_out_pieces(self, day: date) -> list[tuple[int, int]]:
        if day in self.holidays:
            return []
        intervals = self.week.get(day.weekday())
        if not intervals:
            return []
        midnight = _day_us(day)
        pieces: list[tuple[int, int]] = []
        for seg_lo, seg_hi, offset in _offset_segments(self._zone, day):
            for start, end in intervals:
                lo = max(seg_lo, midnight + _time_us(start) - offset)
                hi = min(seg_hi, midnight + _end_us(end) - offset)
                if lo < hi:
                    pieces.append((lo, hi))
        pieces.sort()
        return pieces


def _weekday_index(key: object) -> int:
    if isinstance(key, bool):
        raise ValueError(f"week.{key}: unknown weekday")
    if isinstance(key, int) and 0 <= key <= 6:
        return key
    if isinstance(key, str) and key.strip().lower() in WEEKDAYS:
        return WEEKDAYS.index(key.strip().lower())
    raise ValueError(f"week.{key}: unknown weekday (0-6 or {', '.join(WEEKDAYS)})")


def _parse_time(fieldname: str, value: object, *, end: bool) -> time:
    if not isinstance(value, str):
        raise ValueError(f"{fieldname}: expected 'HH:MM', got {value!r}")
    if end and value == "24:00":
        return _MIDNIGHT
    match = _TIME_RE.match(value)
    if match is None:
        raise ValueError(f"{fieldname}: invalid time {value!r} (expected 'HH:MM')")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def _parse_day(name: str, value: object) -> tuple[Interval, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"week.{name}: expected ['HH:MM', 'HH:MM'] or a list of them")
    if len(value) == 0:
        return ()
    pairs: Sequence[object] = (
        [value] if all(isinstance(v, str) for v in value) else list(value)
    )
    intervals: list[Interval] = []
    for i, pair in enumerate(pairs):
        where = f"week.{name}[{i}]" if len(pairs) > 1 else f"week.{name}"
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"{where}: expected ['HH:MM', 'HH:MM']")
        start = _parse_time(f"{where}.start", pair[0], end=False)
        end = _parse_time(f"{where}.end", pair[1], end=True)
        if _end_us(end) <= _time_us(start):
            raise ValueError(f"{where}: end {pair[1]} is not after start {pair[0]}")
        intervals.append((start, end))
    return _normalise_day(name, intervals)


def _parse_date(fieldname: str, value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError(f"{fieldname}: invalid date {value!r} (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{fieldname}: invalid date {value!r}") from exc
