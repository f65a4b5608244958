"""How each ticket event changes the read tables (SQL per event type).

Each function runs inside the projector's transaction, next to the
tracking row that records the event's position: a crash can neither lose
nor double-apply an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import Cursor, sql
from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.enums import TicketPriority
from dotmac.ticketing.domain.personal_paths import ERASED
from dotmac.ticketing.domain.ticket import Ticket

# Enough text for search to find a ticket by its conversation, bounded so a
# ticket with thousands of replies keeps a reasonable row and vector size.
PUBLIC_TEXT_MAX = 200_000


@dataclass(frozen=True)
class First:
    """Set the column only while it is NULL: the first value stays."""

    value: Any


@dataclass(frozen=True)
class ClearedUnless:
    """Set the column NULL unless the ``guard`` column has a value."""

    guard: str


@dataclass(frozen=True)
class ClearedIfAfter:
    """Set the column NULL if its time is after ``moment`` (still ahead)."""

    moment: datetime


def assignments(changes: dict[str, Any]) -> tuple[list[sql.Composable], list[Any]]:
    """``SET`` clauses and their parameters, for plain or conditional values."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in changes.items():
        column = sql.Identifier(name)
        if isinstance(value, First):
            clauses.append(sql.SQL("{0} = coalesce({0}, %s)").format(column))
            params.append(value.value)
        elif isinstance(value, ClearedUnless):
            clauses.append(
                sql.SQL("{0} = CASE WHEN {1} IS NULL THEN NULL ELSE {0} END").format(
                    column, sql.Identifier(value.guard)
                )
            )
        elif isinstance(value, ClearedIfAfter):
            clauses.append(
                sql.SQL("{0} = CASE WHEN {0} > %s THEN NULL ELSE {0} END").format(
                    column
                )
            )
            params.append(value.moment)
        else:
            clauses.append(sql.SQL("{} = %s").format(column))
            params.append(value)
    return clauses, params


def insert_ticket(cur: Cursor[Any], event: Ticket.TicketCreated, position: int) -> None:
    cur.execute(
        "INSERT INTO tickets (tenant_id, ticket_id, number, title, description,"
        " status, priority, priority_rank, category, channel, customer_id,"
        " customer_email, tags, custom_fields, created_at, updated_at,"
        " last_activity_at, version, position)"
        " VALUES (%s, %s, %s, %s, %s, 'new', %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s)",
        (
            event.tenant_id,
            event.originator_id,
            event.number,
            event.title,
            event.description,
            event.priority,
            TicketPriority(event.priority).rank,
            event.category,
            event.channel,
            event.customer_id,
            event.customer_email,
            list(event.tags),
            Jsonb(event.custom_fields),
            event.timestamp,
            event.timestamp,
            event.timestamp,
            event.originator_version,
            position,
        ),
    )
    count_day(cur, event.tenant_id, event.timestamp, "created")


def update_ticket(
    cur: Cursor[Any],
    event: Ticket.Event,
    position: int,
    changes: dict[str, Any] | None = None,
    *,
    increments: tuple[str, ...] = (),
    touch: bool = True,
) -> None:
    """Set columns, bump counters, and stamp version, position and activity.

    ``touch=False`` leaves ``updated_at`` alone: an SLA clock starting,
    pausing or firing is activity on the ticket, not a change to it.
    """
    clauses, values = assignments(changes or {})
    clauses += [
        sql.SQL("{0} = {0} + 1").format(sql.Identifier(column)) for column in increments
    ]
    if touch:
        clauses.append(sql.SQL("updated_at = %s"))
        values.append(event.timestamp)
    clauses += [
        sql.SQL("last_activity_at = %s"),
        sql.SQL("version = %s"),
        sql.SQL("position = %s"),
    ]
    statement = sql.SQL("UPDATE tickets SET {} WHERE ticket_id = %s").format(
        sql.SQL(", ").join(clauses)
    )
    values += [
        event.timestamp,
        event.originator_version,
        position,
        event.originator_id,
    ]
    cur.execute(statement, values)


def add_public_comment(
    cur: Cursor[Any], event: Ticket.CommentAdded, position: int
) -> None:
    update_ticket(cur, event, position, increments=("comment_count",))
    cur.execute(
        "UPDATE tickets SET public_comment_count = public_comment_count + 1,"
        " public_comments_text = left(public_comments_text || ' ' || %s, %s)"
        " WHERE ticket_id = %s",
        (event.body, PUBLIC_TEXT_MAX, event.originator_id),
    )


def add_internal_note(
    cur: Cursor[Any], event: Ticket.CommentAdded, position: int
) -> None:
    update_ticket(cur, event, position, increments=("comment_count",))
    cur.execute(
        "UPDATE tickets"
        " SET internal_notes_text = left(internal_notes_text || ' ' || %s, %s)"
        " WHERE ticket_id = %s",
        (event.body, PUBLIC_TEXT_MAX, event.originator_id),
    )


def record_escalation(cur: Cursor[Any], event: Ticket.TicketEscalated) -> None:
    cur.execute(
        "INSERT INTO escalations (tenant_id, ticket_id, level, team, reason, rule,"
        " escalated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            event.tenant_id,
            event.originator_id,
            event.level,
            event.team,
            event.reason,
            event.rule,
            event.timestamp,
        ),
    )
    count_day(cur, event.tenant_id, event.timestamp, "escalated")


def record_escalation_request(
    cur: Cursor[Any], event: Ticket.EscalationRequested
) -> None:
    cur.execute(
        "INSERT INTO escalation_requests (tenant_id, ticket_id, requested_version,"
        " level, team, rule, reason, requested_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            event.tenant_id,
            event.originator_id,
            event.originator_version,
            event.level,
            event.team,
            event.rule,
            event.reason,
            event.timestamp,
        ),
    )


def decide_escalation_request(
    cur: Cursor[Any],
    event: Ticket.EscalationApproved | Ticket.EscalationRejected,
    state: str,
) -> None:
    """Record the supervisor's decision on the level's pending request."""
    cur.execute(
        "UPDATE escalation_requests SET state = %s, decided_at = %s,"
        " decided_by = %s, comment = %s"
        " WHERE ticket_id = %s AND level = %s AND state = 'pending'",
        (
            state,
            event.timestamp,
            event.actor.get("id"),
            event.comment,
            event.originator_id,
            event.level,
        ),
    )


def count_day(cur: Cursor[Any], tenant_id: str, at: datetime, counter: str) -> None:
    """Add one to a tenant's daily counter (UTC days)."""
    column = sql.Identifier(counter)
    cur.execute(
        sql.SQL(
            "INSERT INTO daily_metrics (tenant_id, day, {0}) VALUES (%s, %s, 1)"
            " ON CONFLICT (tenant_id, day) DO UPDATE"
            " SET {0} = daily_metrics.{0} + 1"
        ).format(column),
        (tenant_id, at.astimezone(UTC).date()),
    )


def erase_ticket(cur: Cursor[Any], event: Ticket.SubjectErased, position: int) -> None:
    """Blank the customer's personal data in the ticket's rows.

    What a replay of the ticket's events would now write (their personal
    fields read ``"[erased]"``), so that a rebuild after an erasure gives
    the same tables; the search vectors, generated from these columns,
    lose the words with them. Counts, times and states are kept, and
    neither ``updated_at`` nor the last activity moves: an erasure is not
    work on the ticket.
    """
    cur.execute(
        "UPDATE tickets SET title = %(erased)s, description = %(erased)s,"
        " customer_email = NULL,"
        " custom_fields = coalesce((SELECT"
        " jsonb_object_agg(k, to_jsonb(%(erased)s::text))"
        " FROM jsonb_object_keys(custom_fields) AS k), '{}'::jsonb),"
        " public_comments_text = '', internal_notes_text = '',"
        " version = %(version)s, position = %(position)s"
        " WHERE ticket_id = %(ticket)s",
        {
            "erased": ERASED,
            "version": event.originator_version,
            "position": position,
            "ticket": event.originator_id,
        },
    )
    cur.execute(
        "UPDATE escalations SET reason = %s WHERE ticket_id = %s",
        (ERASED, event.originator_id),
    )
    cur.execute(
        "UPDATE escalation_requests SET comment = %s"
        " WHERE ticket_id = %s AND comment IS NOT NULL",
        (ERASED, event.originator_id),
    )


def log_time(cur: Cursor[Any], event: Ticket.TimeLogged) -> None:
    """A time entry's row; a replayed event finds it there already."""
    cur.execute(
        "INSERT INTO time_entries (tenant_id, ticket_id, entry_id, agent_id,"
        " minutes, billable, work_type, logged_by, logged_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (ticket_id, entry_id) DO NOTHING",
        (
            event.tenant_id,
            event.originator_id,
            event.entry_id,
            event.agent_id,
            event.minutes,
            event.billable,
            event.work_type,
            event.actor["id"],
            event.timestamp,
        ),
    )


def remove_time_entry(cur: Cursor[Any], event: Ticket.TimeEntryRemoved) -> None:
    cur.execute(
        "DELETE FROM time_entries WHERE ticket_id = %s AND entry_id = %s",
        (event.originator_id, event.entry_id),
    )
