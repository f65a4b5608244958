"""Dates and times as a tenant's people read them: their zone, their language.

Pure functions over Babel (CLDR data): the settings validate a tenant's
locale with :func:`canonical_locale`, and the notifier words every instant
in its e-mail with :func:`readable_moment`, e.g. ``Monday, 7 December 2026,
09:30 CET`` for ``en_GB`` in ``Europe/Berlin``.

The date is CLDR's full date and the time its short time, joined by the
locale's own pattern. The zone is the tz database's abbreviation (``CET``,
``EST``, ``UTC``) where it has a word for it, else the offset
(``UTC-03:00``): CLDR names most zones in a few locales only, and a reader
anywhere can work with an abbreviation or an offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format

from dotmac.ticketing.domain.defaults import DEFAULT_LOCALE

# A language, then subtags (script, region, variant): BCP 47's outline.
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")


@lru_cache(maxsize=256)
def _locale(tag: str) -> Locale:
    if not _TAG.fullmatch(tag):
        raise ValueError(f"not a locale: {tag!r}")
    return Locale.parse(tag.replace("-", "_"))


def canonical_locale(tag: str) -> str:
    """``en-gb`` → ``en_GB``; ValueError for a locale CLDR does not know."""
    try:
        return str(_locale(tag.strip()))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"unknown locale {tag!r}: expected a language, optionally with a"
            " region, such as en, en_GB, de or pt_BR"
        ) from None


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``; UTC when it is unset or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def readable_moment(
    moment: datetime, *, timezone: str | None = None, locale: str = DEFAULT_LOCALE
) -> str:
    """The instant in ``timezone``, worded in ``locale`` (unknown: ``en``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone(timezone))
    try:
        language = _locale(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        language = _locale(DEFAULT_LOCALE)
    date = format_date(local, "full", locale=language)
    time = format_time(local, "short", locale=language)
    pattern = str(get_datetime_format("full", locale=language))
    text = pattern.replace("{1}", date).replace("{0}", f"{time} {_zone_label(local)}")
    # CLDR puts narrow no-break spaces in times ("9:30 AM"): plain ones keep
    # an SMS in its 7-bit alphabet and old mail programs from showing "?".
    return text.translate(_PLAIN_SPACES)


_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


def _zone_label(local: datetime) -> str:
    abbreviation = local.tzname() or ""
    if abbreviation.isalpha():
        return abbreviation
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
