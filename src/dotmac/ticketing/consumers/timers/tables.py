"""The timers' deadline table: one row per moment a ticket needs attention.

``timer_deadlines`` holds, per ticket, what ``domain.deadlines.ticket_deadlines``
says of its latest state: SLA warnings and breaches not yet recorded, and
the threshold of each escalation rule that could still fire. The consumer
replaces a ticket's rows on every event of the ticket; the firing loop
claims due rows and deletes them once their command ran.

``timer_tickets`` remembers which version of each ticket the rows were
computed from, so that a consumer holding an older load of the ticket (a
member the group has already replaced, still finishing its batch) cannot
overwrite rows computed from a newer one; and under which version of the
tenant's settings, so that a changed escalation rule reaches the tenant's
open tickets without waiting for their next event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncCursor

from dotmac.ticketing.domain.deadlines import TimerDeadline

#: Wakes sleeping firing loops when a deadline is due sooner than they look.
WAKE_CHANNEL = "timer_deadlines"


@dataclass(frozen=True)
class DueDeadline:
    """A claimed row: which ticket, what to do, and the due time it had."""

    tenant_id: str
    ticket_id: UUID
    kind: str
    key: str
    due_at: datetime
    attempts: int

    @property
    def causation_id(self) -> str:
        """Recorded on the events the deadline causes (their ``causation_id``)."""
        return (
            f"timer:{self.ticket_id}:{self.kind}:{self.key}@{self.due_at.isoformat()}"
        )


async def replace_deadlines(
    cur: AsyncCursor[Any],
    *,
    tenant_id: str,
    ticket_id: UUID,
    version: int,
    deadlines: Sequence[TimerDeadline],
    settings_version: int = 0,
    active: bool = True,
) -> bool:
    """Make the ticket's rows exactly ``deadlines`` (of the ticket at ``version``).

    False, changing nothing, when rows of a newer version are there already.
    Waits for rows a firing loop has claimed: their command and deletion
    come first, then these rows replace whatever is left.
    """
    await cur.execute(
        "INSERT INTO timer_tickets"
        " (ticket_id, version, tenant_id, settings_version, active)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (ticket_id) DO UPDATE SET version = EXCLUDED.version,"
        " tenant_id = EXCLUDED.tenant_id,"
        " settings_version = EXCLUDED.settings_version, active = EXCLUDED.active"
        " WHERE timer_tickets.version < EXCLUDED.version"
        " OR (timer_tickets.version = EXCLUDED.version"
        " AND timer_tickets.settings_version <= EXCLUDED.settings_version)"
        " RETURNING ticket_id",
        (ticket_id, version, tenant_id, settings_version, active),
    )
    if await cur.fetchone() is None:
        return False
    await cur.execute("DELETE FROM timer_deadlines WHERE ticket_id = %s", (ticket_id,))
    if deadlines:
        await cur.executemany(
            "INSERT INTO timer_deadlines (ticket_id, kind, key, tenant_id, due_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(ticket_id, d.kind, d.key, tenant_id, d.due_at) for d in deadlines],
        )
    return True


async def claim_due(
    cur: AsyncCursor[Any], *, now: datetime, real_now: datetime, limit: int
) -> list[DueDeadline]:
    """Lock up to ``limit`` due rows no other transaction holds, earliest first.

    ``now`` is the service's clock (due times are in its time); retries of
    failed commands wait in real time (``real_now``), since they wait for
    the world (a database, a lock) to recover.
    """
    await cur.execute(
        "SELECT tenant_id, ticket_id, kind, key, due_at, attempts"
        " FROM timer_deadlines"
        " WHERE due_at <= %s AND (retry_at IS NULL OR retry_at <= %s)"
        " ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, real_now, limit),
    )
    return [
        DueDeadline(
            tenant_id=row[0],
            ticket_id=row[1],
            kind=row[2],
            key=row[3],
            due_at=row[4],
            attempts=row[5],
        )
        for row in await cur.fetchall()
    ]


async def delete_fired(cur: AsyncCursor[Any], deadline: DueDeadline) -> None:
    """Drop a claimed row whose command ran, unless its due time has moved."""
    await cur.execute(
        "DELETE FROM timer_deadlines"
        " WHERE ticket_id = %s AND kind = %s AND key = %s AND due_at = %s",
        (deadline.ticket_id, deadline.kind, deadline.key, deadline.due_at),
    )


async def postpone(
    cur: AsyncCursor[Any], deadline: DueDeadline, retry_at: datetime
) -> None:
    """Try a failed deadline again at ``retry_at`` (real time)."""
    await cur.execute(
        "UPDATE timer_deadlines SET attempts = attempts + 1, retry_at = %s"
        " WHERE ticket_id = %s AND kind = %s AND key = %s AND due_at = %s",
        (retry_at, deadline.ticket_id, deadline.kind, deadline.key, deadline.due_at),
    )


async def next_due_at(cur: AsyncCursor[Any], *, after: datetime) -> datetime | None:
    """The earliest due time still ahead of ``after`` (for the loop's sleep).

    Rows due already are either being fired by another replica (locked) or
    waiting for a retry; neither should keep this loop from sleeping.
    """
    await cur.execute(
        "SELECT min(due_at) FROM timer_deadlines WHERE due_at > %s", (after,)
    )
    row = await cur.fetchone()
    return None if row is None else row[0]


async def stale_tenants(cur: AsyncCursor[Any]) -> dict[str, int]:
    """Each tenant with active tickets: the oldest settings version of their rows."""
    await cur.execute(
        "SELECT tenant_id, min(settings_version) FROM timer_tickets"
        " WHERE active AND tenant_id IS NOT NULL GROUP BY tenant_id"
    )
    return {row[0]: int(row[1]) for row in await cur.fetchall()}


async def tickets_behind(
    cur: AsyncCursor[Any], tenant_id: str, settings_version: int, limit: int
) -> list[UUID]:
    """Active tickets of a tenant whose rows predate ``settings_version``."""
    await cur.execute(
        "SELECT ticket_id FROM timer_tickets"
        " WHERE active AND tenant_id = %s AND settings_version < %s LIMIT %s",
        (tenant_id, settings_version, limit),
    )
    return [row[0] for row in await cur.fetchall()]
