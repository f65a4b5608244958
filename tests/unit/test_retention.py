"""domain.retention: when a closed ticket's personal data is due for erasure."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dotmac.ticketing.domain.enums import TicketCategory
from dotmac.ticketing.domain.retention import (
    RetentionPolicy,
    cutoffs,
    erasure_due_at,
)

CLOSED = datetime(2031, 3, 30, 0, 30, tzinfo=UTC)
POLICY = RetentionPolicy(closed_days=30, categories={"billing": 1})


def test_a_category_of_its_own_has_its_period_the_others_the_tenants() -> None:
    assert erasure_due_at(
        POLICY, category="billing", closed_at=CLOSED
    ) == CLOSED + timedelta(days=1)
    assert erasure_due_at(
        POLICY, category="general", closed_at=CLOSED
    ) == CLOSED + timedelta(days=30)


def test_without_a_period_the_data_is_kept_forever() -> None:
    assert erasure_due_at(RetentionPolicy(), category="billing", closed_at=CLOSED) is (
        None
    )
    only_billing = RetentionPolicy(categories={"billing": 7})
    assert erasure_due_at(only_billing, category="general", closed_at=CLOSED) is None
    assert erasure_due_at(
        only_billing, category="billing", closed_at=CLOSED
    ) == CLOSED + timedelta(days=7)


def test_a_ticket_not_closed_is_never_due() -> None:
    assert erasure_due_at(POLICY, category="billing", closed_at=None) is None


def test_days_are_24_hours_whatever_the_time_zone_does() -> None:
    # Sunday 2031-03-30 is the EU's change to summer time: Berlin's day has
    # 23 hours, and wall-clock arithmetic would erase an hour early.
    berlin = CLOSED.astimezone(ZoneInfo("Europe/Berlin"))
    due = erasure_due_at(POLICY, category="billing", closed_at=berlin)
    assert due is not None
    assert (due - CLOSED).total_seconds() == 24 * 3600


@pytest.mark.parametrize(
    "now", [CLOSED + timedelta(days=1), CLOSED + timedelta(days=45)]
)
def test_the_cutoffs_say_what_a_due_time_says(now: datetime) -> None:
    found = cutoffs(POLICY, now)
    assert set(found) == {c.value for c in TicketCategory}
    for category, cutoff in found.items():
        # A ticket closed at the cutoff is due exactly now; a moment later
        # is not yet.
        assert erasure_due_at(POLICY, category=category, closed_at=cutoff) == now
        later = cutoff + timedelta(microseconds=1)
        due = erasure_due_at(POLICY, category=category, closed_at=later)
        assert due is not None and due > now


def test_categories_kept_forever_have_no_cutoff() -> None:
    now = CLOSED + timedelta(days=2)
    assert cutoffs(RetentionPolicy(categories={"billing": 1}), now) == {
        "billing": now - timedelta(days=1)
    }
    assert cutoffs(RetentionPolicy(), now) == {}
