"""The tables of inbound e-mail: what each message became, mailboxes, bounces.

Migration 0004 creates them. Every function takes a cursor of the caller's
transaction, so a message's record and its mailbox UID are written
together (``service.inbound_mail``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Cursor

#: Outcomes after which a message is done; ``held`` waits to be released.
FINAL_OUTCOMES = ("ticket", "comment", "follow-up", "ignored", "bounce", "dead-letter")

SENDER_MAX = 320
SUBJECT_MAX = 300


@dataclass(frozen=True)
class MessageRecord:
    """What one message became (a row of ``inbound_messages``)."""

    tenant_id: str
    message_key: str
    source: str
    sender: str | None
    subject: str | None
    outcome: str
    received_at: datetime
    reason: str | None = None
    ticket_id: UUID | None = None
    ticket_number: int | None = None
    comment_id: str | None = None
    size: int = 0


@dataclass(frozen=True)
class MailboxUid:
    """Where an IMAP message sits: its mailbox, UIDVALIDITY and UID."""

    mailbox: str
    uidvalidity: int
    uid: int


_COLUMNS = (
    "tenant_id, message_key, source, sender, subject, outcome, reason,"
    " ticket_id, ticket_number, comment_id, size, received_at"
)


def find_message(cur: Cursor[Any], tenant_id: str, key: str) -> MessageRecord | None:
    cur.execute(
        f"SELECT {_COLUMNS} FROM inbound_messages"
        " WHERE tenant_id = %s AND message_key = %s",
        (tenant_id, key),
    )
    row = cur.fetchone()
    return None if row is None else _record(row)


def record_message(
    cur: Cursor[Any],
    record: MessageRecord,
    *,
    raw: bytes | None = None,
    uid: MailboxUid | None = None,
) -> None:
    """Write what a message became; a final outcome is never replaced.

    ``raw`` is kept for held messages and dead letters only.
    """
    cur.execute(
        "INSERT INTO inbound_messages (tenant_id, message_key, source, sender,"
        " subject, outcome, reason, ticket_id, ticket_number, comment_id, size,"
        " received_at, raw, processed_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " CASE WHEN %s = 'held' THEN NULL ELSE now() END)"
        " ON CONFLICT (tenant_id, message_key) DO UPDATE SET"
        " outcome = excluded.outcome, reason = excluded.reason,"
        " ticket_id = excluded.ticket_id, ticket_number = excluded.ticket_number,"
        " comment_id = excluded.comment_id, raw = excluded.raw,"
        " processed_at = excluded.processed_at"
        " WHERE inbound_messages.outcome = 'held'",
        (
            record.tenant_id,
            record.message_key,
            record.source,
            (record.sender or "")[:SENDER_MAX] or None,
            (record.subject or "")[:SUBJECT_MAX] or None,
            record.outcome,
            record.reason,
            record.ticket_id,
            record.ticket_number,
            record.comment_id,
            record.size,
            record.received_at,
            raw,
            record.outcome,
        ),
    )
    if uid is not None:
        remember_uid(cur, record.tenant_id, uid, record.message_key)


def remember_uid(cur: Cursor[Any], tenant_id: str, uid: MailboxUid, key: str) -> None:
    cur.execute(
        "INSERT INTO inbound_mailbox_uids (tenant_id, mailbox, uidvalidity, uid,"
        " message_key) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant_id, uid.mailbox, uid.uidvalidity, uid.uid, key),
    )


def message_at_uid(
    cur: Cursor[Any], tenant_id: str, uid: MailboxUid
) -> MessageRecord | None:
    """The record of the message taken from this mailbox position, if any."""
    cur.execute(
        f"SELECT {', '.join('m.' + c.strip() for c in _COLUMNS.split(','))}"
        " FROM inbound_mailbox_uids u JOIN inbound_messages m"
        " ON m.tenant_id = u.tenant_id AND m.message_key = u.message_key"
        " WHERE u.tenant_id = %s AND u.mailbox = %s AND u.uidvalidity = %s"
        " AND u.uid = %s",
        (tenant_id, uid.mailbox, uid.uidvalidity, uid.uid),
    )
    row = cur.fetchone()
    return None if row is None else _record(row)


def sender_pace(
    cur: Cursor[Any], tenant_id: str, sender: str, *, since: datetime
) -> tuple[int, int]:
    """``(taken, held)``: the sender's messages that became something since
    ``since``, and those of theirs still held back."""
    cur.execute(
        "SELECT count(*) FILTER (WHERE outcome <> 'held' AND received_at >= %s)"
        " AS taken, count(*) FILTER (WHERE outcome = 'held') AS held"
        " FROM inbound_messages WHERE tenant_id = %s AND sender = %s"
        " AND (received_at >= %s OR outcome = 'held')",
        (since, tenant_id, sender[:SENDER_MAX], since),
    )
    row = cur.fetchone()
    assert row is not None
    return int(row["taken"]), int(row["held"])


def held_messages(cur: Cursor[Any], *, limit: int = 100) -> list[dict[str, Any]]:
    """The oldest held messages of every tenant, with their bytes."""
    cur.execute(
        "SELECT tenant_id, message_key, source, raw, received_at"
        " FROM inbound_messages WHERE outcome = 'held'"
        " ORDER BY received_at LIMIT %s",
        (limit,),
    )
    return [dict(row) for row in cur.fetchall()]


def dead_letters(
    cur: Cursor[Any], tenant_id: str, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The tenant's messages that could not become anything, newest first."""
    cur.execute(
        "SELECT message_key, source, sender, subject, reason, size, received_at"
        " FROM inbound_messages WHERE tenant_id = %s AND outcome = 'dead-letter'"
        " ORDER BY received_at DESC LIMIT %s",
        (tenant_id, limit),
    )
    return [dict(row) for row in cur.fetchall()]


def dead_letter_raw(cur: Cursor[Any], tenant_id: str, key: str) -> bytes | None:
    cur.execute(
        "SELECT raw FROM inbound_messages WHERE tenant_id = %s AND message_key = %s"
        " AND outcome = 'dead-letter'",
        (tenant_id, key),
    )
    row = cur.fetchone()
    return None if row is None else bytes(row["raw"] or b"")


# -- the mailboxes to read ---------------------------------------------------------


def record_tenant_mailboxes(
    cur: Cursor[Any], tenant_id: str, settings_version: int, mailboxes: int
) -> None:
    """Which tenants have mailboxes; an older version never wins."""
    cur.execute(
        "INSERT INTO inbound_mail_tenants (tenant_id, settings_version, mailboxes)"
        " VALUES (%s, %s, %s) ON CONFLICT (tenant_id) DO UPDATE SET"
        " settings_version = excluded.settings_version,"
        " mailboxes = excluded.mailboxes, updated_at = now()"
        " WHERE inbound_mail_tenants.settings_version <= excluded.settings_version",
        (tenant_id, settings_version, mailboxes),
    )


def tenants_with_mailboxes(cur: Cursor[Any]) -> list[str]:
    cur.execute(
        "SELECT tenant_id FROM inbound_mail_tenants WHERE mailboxes > 0"
        " ORDER BY tenant_id"
    )
    return [row["tenant_id"] for row in cur.fetchall()]


# -- addresses that bounce -----------------------------------------------------------


def record_bounce(
    cur: Cursor[Any],
    tenant_id: str,
    address: str,
    *,
    status: str | None,
    diagnostic: str | None,
    ticket_id: UUID | None,
    at: datetime,
) -> None:
    cur.execute(
        "INSERT INTO mail_bounces (tenant_id, address, status, diagnostic,"
        " ticket_id, first_at, last_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, address) DO UPDATE SET"
        " status = excluded.status, diagnostic = excluded.diagnostic,"
        " ticket_id = coalesce(excluded.ticket_id, mail_bounces.ticket_id),"
        " bounces = mail_bounces.bounces + 1, last_at = excluded.last_at",
        (tenant_id, address, status, diagnostic, ticket_id, at, at),
    )


def clear_bounce(cur: Cursor[Any], tenant_id: str, address: str) -> bool:
    cur.execute(
        "DELETE FROM mail_bounces WHERE tenant_id = %s AND address = %s",
        (tenant_id, address),
    )
    return cur.rowcount > 0


def bouncing(cur: Cursor[Any], tenant_id: str, addresses: Sequence[str]) -> set[str]:
    """Which of ``addresses`` (normalised) bounce."""
    if not addresses:
        return set()
    cur.execute(
        "SELECT address FROM mail_bounces WHERE tenant_id = %s AND address = ANY(%s)",
        (tenant_id, list(addresses)),
    )
    return {row["address"] for row in cur.fetchall()}


def bounces(
    cur: Cursor[Any], tenant_id: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT address, status, diagnostic, ticket_id, bounces, first_at, last_at"
        " FROM mail_bounces WHERE tenant_id = %s ORDER BY last_at DESC LIMIT %s",
        (tenant_id, limit),
    )
    return [dict(row) for row in cur.fetchall()]


def ticket_by_number(cur: Cursor[Any], tenant_id: str, number: int) -> UUID | None:
    cur.execute(
        "SELECT ticket_id FROM ticket_workload WHERE tenant_id = %s AND number = %s",
        (tenant_id, number),
    )
    row = cur.fetchone()
    return None if row is None else UUID(str(row["ticket_id"]))


def _record(row: Any) -> MessageRecord:
    return MessageRecord(
        tenant_id=row["tenant_id"],
        message_key=row["message_key"],
        source=row["source"],
        sender=row["sender"],
        subject=row["subject"],
        outcome=row["outcome"],
        reason=row["reason"],
        ticket_id=row["ticket_id"],
        ticket_number=row["ticket_number"],
        comment_id=row["comment_id"],
        size=row["size"],
        received_at=row["received_at"],
    )


PACE_WINDOW = timedelta(minutes=1)
