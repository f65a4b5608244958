"""How the SLA clock events change the read tables.

A target's current clock is on the ``tickets`` row (columns prefixed
``sla_response_``, ``sla_resolution_``, ``sla_next_reply_``); every clock
run also has its own ``sla_clocks`` row. Each event changes both the same
way, so the two never disagree. Only one clock per target runs at a time
(the domain starts a new one only after the last stopped), which is how
``sla_clocks`` finds the row an event is about: ``stopped_at IS NULL``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import Cursor, sql

from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.projections.tables import TARGET_PREFIX
from dotmac.ticketing.projections.ticket_rows import (
    ClearedUnless,
    assignments,
    count_day,
    update_ticket,
)

#: ``daily_metrics`` counter prefix of each target's stopped clocks.
DAILY_PREFIX = {
    "first_response": "response",
    "resolution": "resolution",
    "next_reply": "next_reply",
}


def start_clock(cur: Cursor[Any], event: Ticket.SLAStarted, position: int) -> None:
    """A new clock for the target: it replaces the ticket's current one."""
    policy, settings_version = _policy(event.policy)
    clock = {
        "started_at": event.timestamp,
        "target_minutes": event.target_minutes,
        "due_at": event.due_at,
        "warning_at": event.warning_at,
        "paused_at": None,
        "paused_minutes": 0.0,
        "warned_at": None,
        "breached_at": None,
        "goal_at": None,
        "stopped_at": None,
        "outcome": None,
        "business_minutes": None,
    }
    prefix = TARGET_PREFIX[event.target]
    changes = {f"{prefix}_{column}": value for column, value in clock.items()}
    changes |= {"sla_policy": policy, "sla_settings_version": settings_version}
    update_ticket(cur, event, position, changes, touch=False)
    columns = [
        "tenant_id",
        "ticket_id",
        "target",
        "started_version",
        "policy",
        "settings_version",
        "priority",
        *clock,
    ]
    values = [
        event.tenant_id,
        event.originator_id,
        event.target,
        event.originator_version,
        policy,
        settings_version,
        event.explanation.get("priority"),
        *clock.values(),
    ]
    cur.execute(
        sql.SQL(
            "INSERT INTO sla_clocks ({}) VALUES ({}) ON CONFLICT DO NOTHING"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        ),
        values,
    )


def recalculate_clock(
    cur: Cursor[Any], event: Ticket.SLARecalculated, position: int
) -> None:
    """New target and due time (priority or policy changed); pauses stay."""
    changes: dict[str, Any] = {
        "target_minutes": event.target_minutes,
        "due_at": event.due_at,
        "warning_at": event.warning_at,
    }
    if event.warning_at is not None and event.warning_at > event.timestamp:
        # A later warning point is a new warning to give, unless the clock
        # breached already: a breach is final (as the domain).
        changes["warned_at"] = ClearedUnless("breached_at")
    policy, settings_version = _policy(event.policy)
    change_clock(
        cur,
        event,
        position,
        event.target,
        changes,
        ticket={"sla_policy": policy, "sla_settings_version": settings_version},
        clock={
            "policy": policy,
            "settings_version": settings_version,
            "priority": event.explanation.get("priority"),
        },
    )


def change_clock(
    cur: Cursor[Any],
    event: Ticket.Event,
    position: int,
    target: str,
    changes: dict[str, Any],
    *,
    ticket: dict[str, Any] | None = None,
    clock: dict[str, Any] | None = None,
) -> None:
    """Apply ``changes`` to the target's running clock, in both tables.

    ``ticket`` and ``clock`` are further columns of one table only.
    """
    prefix = TARGET_PREFIX[target]
    prefixed = {
        f"{prefix}_{column}": (
            ClearedUnless(f"{prefix}_{value.guard}")
            if isinstance(value, ClearedUnless)
            else value
        )
        for column, value in changes.items()
    }
    update_ticket(cur, event, position, prefixed | (ticket or {}), touch=False)
    clauses, params = assignments(changes | (clock or {}))
    cur.execute(
        sql.SQL(
            "UPDATE sla_clocks SET {} WHERE ticket_id = %s AND target = %s"
            " AND stopped_at IS NULL"
        ).format(sql.SQL(", ").join(clauses)),
        [*params, event.originator_id, target],
    )


def stop_clock(cur: Cursor[Any], event: Ticket.SLAStopped, position: int) -> None:
    changes = {
        "stopped_at": event.timestamp,
        "outcome": event.outcome,
        "business_minutes": event.business_minutes_used,
        "paused_at": None,
    }
    change_clock(cur, event, position, event.target, changes)
    if event.outcome in ("met", "breached"):
        counter = f"{DAILY_PREFIX[event.target]}_{event.outcome}"
        count_day(cur, event.tenant_id, event.timestamp, counter)


def record_alert(
    cur: Cursor[Any],
    event: Ticket.SLAWarning | Ticket.SLABreached,
    kind: str,
    business_minutes: float,
) -> None:
    """One row per warning or breach, and its count of the day."""
    cur.execute(
        "INSERT INTO sla_alerts (tenant_id, ticket_id, version, target, kind, at,"
        " due_at, business_minutes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            event.tenant_id,
            event.originator_id,
            event.originator_version,
            event.target,
            kind,
            event.timestamp,
            event.due_at,
            business_minutes,
        ),
    )
    count_day(
        cur,
        event.tenant_id,
        event.timestamp,
        "warnings" if kind == "warning" else "breached",
    )


def reach_goal(cur: Cursor[Any], event: Ticket.Event, targets: Iterable[str]) -> None:
    """Mark the running clocks of ``targets`` as having reached their goal.

    The ``SLAStopped`` that follows says met or breached but not why the
    clock stopped; a reply (or resolution) first marks the clock, so that
    "business minutes to first response" counts only clocks that ended
    with one (not one stopped because the ticket was resolved unanswered).
    """
    for target in targets:
        p = TARGET_PREFIX[target]
        cur.execute(
            sql.SQL(
                "UPDATE tickets SET {goal} = coalesce({goal}, %s)"
                " WHERE ticket_id = %s AND {started} IS NOT NULL"
                " AND {stopped} IS NULL"
            ).format(
                goal=sql.Identifier(f"{p}_goal_at"),
                started=sql.Identifier(f"{p}_started_at"),
                stopped=sql.Identifier(f"{p}_stopped_at"),
            ),
            (event.timestamp, event.originator_id),
        )
        cur.execute(
            "UPDATE sla_clocks SET goal_at = coalesce(goal_at, %s)"
            " WHERE ticket_id = %s AND target = %s AND stopped_at IS NULL",
            (event.timestamp, event.originator_id, target),
        )


def _policy(snapshot: dict[str, Any]) -> tuple[str | None, int | None]:
    version = snapshot.get("settings_version")
    return snapshot.get("name"), None if version is None else int(version)
