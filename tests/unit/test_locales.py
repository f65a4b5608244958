"""Instants worded in a tenant's zone and language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dotmac.ticketing.schemas.locales import canonical_locale, readable_moment

MOMENT = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "zone", "text"),
    [
        ("en_GB", "Europe/Berlin", "Monday, 7 December 2026, 09:30 CET"),
        ("en", "Europe/Berlin", "Monday, December 7, 2026, 9:30 AM CET"),
        ("en", "UTC", "Monday, December 7, 2026, 8:30 AM UTC"),
        ("de", "Europe/Berlin", "Montag, 7. Dezember 2026, 09:30 CET"),
        ("fr", "America/New_York", "lundi 7 décembre 2026, 03:30 EST"),
        (
            "pt_BR",
            "America/Sao_Paulo",
            "segunda-feira, 7 de dezembro de 2026 05:30 UTC-03:00",
        ),
        ("en", "Asia/Kathmandu", "Monday, December 7, 2026, 2:15 PM UTC+05:45"),
    ],
)
def test_an_instant_reads_in_the_zone_and_locale(
    locale: str, zone: str, text: str
) -> None:
    assert readable_moment(MOMENT, timezone=zone, locale=locale) == text


def test_summer_time_has_its_own_abbreviation() -> None:
    summer = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert readable_moment(summer, timezone="Europe/Berlin", locale="en_GB").endswith(
        "10:30 CEST"
    )


def test_unknown_zones_and_locales_fall_back_to_utc_and_english() -> None:
    assert readable_moment(MOMENT, timezone="Mars/Olympus", locale="xx") == (
        "Monday, December 7, 2026, 8:30 AM UTC"
    )


def test_locales_are_checked_and_spelled_one_way() -> None:
    assert canonical_locale("en-gb") == "en_GB"
    assert canonical_locale(" de ") == "de"
    for bad in ("xx_YY", "", "../etc", "en_GB_extra!"):
        with pytest.raises(ValueError, match="unknown locale"):
            canonical_locale(bad)
