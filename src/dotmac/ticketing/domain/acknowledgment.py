"""The customer's acknowledgment of a new ticket: which reply time it promises.

A ticket is acknowledged once (issue 10): the notifier's "We received your
request" e-mail, sent when the ticket is opened, for every category. A
workflow that acknowledges too (``customer_support``'s
``send_acknowledgment``) records its acknowledgment as a public comment
marked ``acknowledgment``, which the notifier does not send again. Both
promise the same thing, worked out here: the first-response due time, but
only while that clock runs towards it.

Pure: the standard library and other domain modules only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dotmac.ticketing.domain.sla import RUNNING, WARNING


def reply_promise(
    first_response: Mapping[str, Any] | None, first_response_at: Any
) -> datetime | None:
    """The time an agent will reply by, or None when none can be promised.

    ``first_response`` is the ticket's first-response clock as an SLA
    report gives it (``state`` and ``due_at``, a datetime or ISO text).
    No time is promised once an agent answered, nor while the clock is
    paused or already past due: a promise the desk is not working to.
    """
    if first_response is None or first_response_at is not None:
        return None
    if first_response.get("state") not in (RUNNING, WARNING):
        return None
    return instant(first_response.get("due_at"))


def readable(moment: datetime) -> str:
    """E.g. ``2026-03-02 09:15 UTC``: unambiguous, and the same in every locale."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def instant(value: Any) -> datetime | None:
    """A datetime or ISO text as an aware datetime (UTC if naive)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
