"""Auto-assignment's shared state: per-team turns, locks and agents' loads.

Choosing an agent is a pure function (``domain.assignment``) of the rules,
the agents' open tickets and a round-robin turn. What makes it correct
under concurrency is here: one team's assignments take turns under a row
lock (held until the ticket is saved), and each one first waits until the
read model has applied the previous assignment of the team, so the loads
it compares include every ticket handed out before it.

The locks live on a pool of their own: a request waiting for a team's
turn holds one of those connections, never one the event store needs to
finish the turn that is running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dotmac.ticketing.domain.tenant_config import TeamConfig
from dotmac.ticketing.projections.read_model import ProjectionNotReady, ReadModel
from dotmac.ticketing.projections.workload import open_ticket_counts, team_queue

log = structlog.get_logger(__name__)


@dataclass
class TeamTurn:
    """One holder's turn at a team: its round-robin number and agents' loads."""

    turn: int
    loads: dict[str, int]
    position: int | None = None

    def record(self, position: int | None) -> None:
        """The log position of what this turn saved (loads must include it)."""
        self.position = position


class AssignmentDesk:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        read_model: ReadModel,
        *,
        read_model_wait: float = 2.0,
    ) -> None:
        self._pool = pool
        self._read_model = read_model
        self._wait = read_model_wait

    @contextmanager
    def team_turn(
        self, tenant_id: str, team: TeamConfig | None, team_name: str
    ) -> Iterator[TeamTurn]:
        """Hold the team's turn; loads of its agents are current inside."""
        with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(
                "INSERT INTO assignment_turns (tenant_id, team) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (tenant_id, team_name),
            )
            cur.execute(
                "SELECT turn, last_position FROM assignment_turns"
                " WHERE tenant_id = %s AND team = %s FOR UPDATE",
                (tenant_id, team_name),
            )
            row = cur.fetchone()
            assert row is not None
            self._catch_up(int(row["last_position"]))
            agents = [a.id for a in team.agents] if team is not None else []
            state = TeamTurn(
                turn=int(row["turn"]), loads=self._loads(tenant_id, agents)
            )
            yield state
            cur.execute(
                "UPDATE assignment_turns SET turn = turn + 1,"
                " last_position = greatest(last_position, %s)"
                " WHERE tenant_id = %s AND team = %s",
                (state.position or 0, tenant_id, team_name),
            )

    def queue(self, tenant_id: str, team_name: str) -> list[dict[str, Any]]:
        """The team's waiting tickets, oldest first."""
        try:
            return team_queue(self._read_model, tenant_id, team_name)
        except ProjectionNotReady:
            return []

    def _loads(self, tenant_id: str, agents: list[str]) -> dict[str, int]:
        try:
            return open_ticket_counts(self._read_model, tenant_id, agents)
        except ProjectionNotReady:
            # No read model yet (first start): everybody counts as free.
            log.warning("no read model yet; assigning without loads")
            return {}

    def catch_up(self, position: int) -> None:
        """Wait (bounded) until the read model has applied ``position``."""
        self._catch_up(position)

    def _catch_up(self, position: int) -> None:
        try:
            self._read_model.active()
        except ProjectionNotReady:
            return  # nothing to wait for: loads count as zero (see _loads)
        if position and not self._read_model.wait_for(position, self._wait):
            # Better an assignment on slightly old loads than none at all.
            log.warning(
                "read model behind; assignment loads may be stale", position=position
            )

    def close(self) -> None:
        self._pool.close()
