"""How each ticket event changes the read tables (SQL per event type).

Each function runs inside the projector's transaction, next to the
tracking row that records the event's position: a crash can neither lose
nor double-apply an event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import Cursor, sql
from psycopg.types.json import Jsonb

from domain.enums import TicketPriority
from domain.ticket import Ticket

# Enough text for search to find a ticket by its conversation, bounded so a
# ticket with thousands of replies keeps a reasonable row and vector size.
PUBLIC_TEXT_MAX = 200_000


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
) -> None:
    """Set columns, bump counters, and stamp version, position and activity."""
    assignments = [
        sql.SQL("{} = %s").format(sql.Identifier(column)) for column in (changes or {})
    ]
    assignments += [
        sql.SQL("{0} = {0} + 1").format(sql.Identifier(column)) for column in increments
    ]
    assignments += [
        sql.SQL("updated_at = %s"),
        sql.SQL("last_activity_at = %s"),
        sql.SQL("version = %s"),
        sql.SQL("position = %s"),
    ]
    statement = sql.SQL("UPDATE tickets SET {} WHERE ticket_id = %s").format(
        sql.SQL(", ").join(assignments)
    )
    values = [*(changes or {}).values()]
    values += [
        event.timestamp,
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


def record_escalation(cur: Cursor[Any], event: Ticket.TicketEscalated) -> None:
    cur.execute(
        "INSERT INTO escalations (tenant_id, ticket_id, level, team, reason,"
        " escalated_at) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            event.tenant_id,
            event.originator_id,
            event.level,
            event.team,
            event.reason,
            event.timestamp,
        ),
    )
    count_day(cur, event.tenant_id, event.timestamp, "escalated")


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
