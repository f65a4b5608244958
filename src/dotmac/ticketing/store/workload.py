"""The ``ticket_workload`` table: agents' loads and teams' queues, exact.

Written with a ticket's events in their transaction (``store.batch_recorder``)
and repaired by the tickets projection from its row; read by auto-assignment
(``service.assignment``) inside a team's turn. Every write keeps the higher
version, so the two writers need no order between them (migration 0003).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import dict_row

from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.domain.workload import WorkloadRow, latest_per_ticket

_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)

_COLUMNS = (
    "ticket_id, tenant_id, version, assignee_id, team, active, number, created_at"
)

_KEEP_HIGHER_VERSION = (
    " ON CONFLICT (ticket_id) DO UPDATE SET"
    " version = excluded.version, assignee_id = excluded.assignee_id,"
    " team = excluded.team, active = excluded.active"
    " WHERE public.ticket_workload.version < excluded.version"
)

_WRITE = (
    f"INSERT INTO public.ticket_workload ({_COLUMNS})"
    " SELECT * FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[],"
    " %s::text[], %s::bool[], %s::bigint[], %s::timestamptz[])" + _KEEP_HIGHER_VERSION
)

# Run with the tickets build's schema on the search path. Only rows behind
# their read row are written (and locked): none, when every writer is of
# this release.
_REPAIR = (
    f"INSERT INTO public.ticket_workload ({_COLUMNS})"
    " SELECT t.ticket_id, t.tenant_id, t.version, t.assignee_id, t.assigned_team,"
    " t.status = ANY(%s), t.number, t.created_at"
    " FROM tickets t LEFT JOIN public.ticket_workload w USING (ticket_id)"
    " WHERE t.ticket_id = ANY(%s) AND (w.version IS NULL OR w.version < t.version)"
    + _KEEP_HIGHER_VERSION
)


def write_rows(cur: Cursor[Any], rows: Sequence[WorkloadRow]) -> None:
    """Write the rows in the caller's transaction (one statement)."""
    if not rows:
        return
    latest = latest_per_ticket(list(rows))
    cur.execute(
        _WRITE,
        (
            [r.ticket_id for r in latest],
            [r.tenant_id for r in latest],
            [r.version for r in latest],
            [r.assignee_id for r in latest],
            [r.team for r in latest],
            [r.active for r in latest],
            [r.number for r in latest],
            [r.created_at for r in latest],
        ),
        prepare=True,
    )


def repair_from_read_rows(cur: Cursor[Any], ticket_ids: Sequence[UUID]) -> None:
    """The tickets' rows from the projection's, where those are newer."""
    cur.execute(_REPAIR, (_ACTIVE, list(ticket_ids)))


def open_ticket_counts(
    conn: Connection[Any], tenant_id: str, agent_ids: Sequence[str]
) -> dict[str, int]:
    """Active tickets each agent holds (agents holding none are left out)."""
    if not agent_ids:
        return {}
    with conn.cursor(row_factory=dict_row) as rows:
        rows.execute(
            "SELECT assignee_id, count(*) AS n FROM public.ticket_workload"
            " WHERE tenant_id = %s AND assignee_id = ANY(%s) AND active"
            " GROUP BY assignee_id",
            (tenant_id, list(agent_ids)),
        )
        return {row["assignee_id"]: int(row["n"]) for row in rows.fetchall()}


def team_queue(
    conn: Connection[Any], tenant_id: str, team: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Active tickets of the team nobody holds, oldest first (arrival order)."""
    with conn.cursor(row_factory=dict_row) as rows:
        rows.execute(
            "SELECT ticket_id, number, created_at FROM public.ticket_workload"
            " WHERE tenant_id = %s AND team = %s AND assignee_id IS NULL AND active"
            " ORDER BY created_at, number LIMIT %s",
            (tenant_id, team, limit),
        )
        return rows.fetchall()
