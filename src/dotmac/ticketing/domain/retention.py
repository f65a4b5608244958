"""How long a closed ticket's personal data is kept (the ``retention`` setting).

A tenant may have its closed tickets' personal data erased some days
after closing: ``closed_days`` for every category, and ``categories``
overriding it per category (a category listed there has its own period
even when ``closed_days`` is unset, which keeps the others forever).
Days are whole days of 24 hours from the moment of closing, not calendar
days of any time zone: a retention period is a legal duration, not a
business-hours target, and a DST change must not move it by an hour.
Only the personal data goes (``service.privacy.erase_ticket``); the
ticket and its facts stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from dotmac.ticketing.domain.enums import TicketCategory


@dataclass(frozen=True)
class RetentionPolicy:
    """Days a closed ticket's personal data is kept; None: forever."""

    closed_days: int | None = None
    categories: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def erases(self) -> bool:
        """Whether any ticket of the tenant is ever due for erasure."""
        return self.closed_days is not None or bool(self.categories)

    def days_for(self, category: str) -> int | None:
        """The category's own period, else the tenant's; None: kept forever."""
        return self.categories.get(category, self.closed_days)


def erasure_due_at(
    policy: RetentionPolicy, *, category: str, closed_at: datetime | None
) -> datetime | None:
    """When the personal data of a ticket closed at ``closed_at`` is due
    for erasure; None when it is kept (not closed, or no period applies)."""
    if closed_at is None:
        return None
    days = policy.days_for(category)
    if days is None:
        return None
    # In UTC: an aware datetime's own zone would add wall-clock days (23 or
    # 25 hours across a DST change).
    return closed_at.astimezone(UTC) + timedelta(days=days)


def cutoffs(policy: RetentionPolicy, now: datetime) -> dict[str, datetime]:
    """Per category, the latest closing time whose data is due at ``now``
    (categories kept forever are left out): what a query of due tickets
    compares ``closed_at`` with."""
    found: dict[str, datetime] = {}
    for category in TicketCategory:
        days = policy.days_for(category.value)
        if days is not None:
            found[category.value] = now.astimezone(UTC) - timedelta(days=days)
    return found
