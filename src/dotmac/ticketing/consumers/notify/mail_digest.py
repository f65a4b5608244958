"""Merging a person's e-mail about one ticket: when, and what the mail says.

Pure. A reply and then a resolution a second later are one thing to the
person receiving them, so e-mail to one recipient about one ticket is
held for the tenant's window (``notifications.email_coalesce_seconds``,
default 30 s, 0: off), counted from the first one's event: everything
that happens within the window goes out as one mail, when it closes,
listing the updates in order.

The held mail is the first update's own ledger row, ``pending`` with
``hold_until`` (the window's end, on the service clock: the events'
clock). A later update in the window is written as a row of its own
(its delivery key keeps it exactly-once) that points at the held one
(``merged_into``), and the held row's message is rendered again with every
update. Rows merged into one share its fate: sent, or failed, with it.
An update joins only a window that nothing has tried to send yet (no
attempt, no dispatcher holding it): a mail that may have reached the
server is never changed under its Message-ID.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dotmac.ticketing.consumers.notify.rules import TICKET_CREATED


@dataclass(frozen=True)
class OpenDigest:
    """A held mail an update might join: its row, when it goes, its tries."""

    key: str
    hold_until: datetime
    attempts: int = 0


def merge_key(tenant_id: str, ticket_id: str, recipient: str) -> str:
    """Which e-mails may merge: one tenant's, about one ticket, to one address."""
    return f"{tenant_id}|{ticket_id}|{recipient.strip().lower()}"


def hold_until(event_at: datetime, window_seconds: int) -> datetime | None:
    """When the mail of an update that opens a window goes; None: at once."""
    if window_seconds <= 0:
        return None
    return event_at + timedelta(seconds=window_seconds)


def joins(digest: OpenDigest | None, event_at: datetime) -> bool:
    """Whether an update of ``event_at`` goes into the held mail ``digest``.

    Only while the window is open at the update's own time (a late update
    of an earlier moment still counts from when it happened), and only if
    no attempt was made to send it.
    """
    return digest is not None and digest.attempts == 0 and event_at < digest.hold_until


def headline(updates: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The update whose subject the merged mail takes.

    The acknowledgment of a new ticket, when it is one of them (the first
    mail about a ticket reads as that); else the latest, which says where
    the ticket stands now ("Resolved: …" after a reply).
    """
    for update in updates:
        if update.get("kind") == TICKET_CREATED:
            return update
    return updates[-1]


def heading(subject: str, number: int) -> str:
    """An update's subject as a heading within the mail: without ``[#N]``."""
    tag = f"[#{number}]"
    return subject.replace(tag, "", 1).strip() if tag in subject else subject
