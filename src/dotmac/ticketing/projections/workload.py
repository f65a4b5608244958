"""Workload queries for auto-assignment: agents' open tickets, team queues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.projections.read_model import ReadModel

_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)


def open_ticket_counts(
    read_model: ReadModel, tenant_id: str, agent_ids: Sequence[str]
) -> dict[str, int]:
    """Active tickets each agent holds (agents holding none are left out)."""
    if not agent_ids:
        return {}
    rows = read_model.run(
        "SELECT assignee_id, count(*) AS n FROM tickets"
        " WHERE tenant_id = %s AND assignee_id = ANY(%s) AND status = ANY(%s)"
        " GROUP BY assignee_id",
        (tenant_id, list(agent_ids), _ACTIVE),
    )
    return {row["assignee_id"]: int(row["n"]) for row in rows}


def team_queue(
    read_model: ReadModel, tenant_id: str, team: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Active tickets of the team nobody holds, oldest first (arrival order)."""
    return read_model.run(
        "SELECT ticket_id, number, created_at FROM tickets"
        " WHERE tenant_id = %s AND assigned_team = %s AND assignee_id IS NULL"
        " AND status = ANY(%s)"
        " ORDER BY created_at, number LIMIT %s",
        (tenant_id, team, _ACTIVE, limit),
    )
