"""Auto-assignment's shared state: per-team turns, locks and agents' loads.

Choosing an agent is a pure function (``domain.assignment``) of the rules,
the agents' open tickets and a round-robin turn. What makes it correct
under concurrency is here: one team's assignments take turns under a row
lock, held until the ticket is saved, and the loads each turn reads are the
``ticket_workload`` rows that every save writes in its own transaction
(``store.workload``). So a turn sees every ticket handed out before it,
in any process, without waiting for the read model.

The locks live on a pool of their own: a request waiting for a team's
turn holds one of those connections, never one the event store needs to
finish the turn that is running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dotmac.ticketing.domain.tenant_config import TeamConfig
from dotmac.ticketing.store.workload import open_ticket_counts, team_queue


@dataclass
class TeamTurn:
    """One holder's turn at a team: its round-robin number and agents' loads."""

    tenant_id: str
    team: str
    turn: int
    loads: dict[str, int]
    _conn: Connection[Any] = field(repr=False)

    def queue(self) -> list[dict[str, Any]]:
        """The team's waiting tickets, oldest first, as of now."""
        return team_queue(self._conn, self.tenant_id, self.team)


class AssignmentDesk:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

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
                "SELECT turn FROM assignment_turns"
                " WHERE tenant_id = %s AND team = %s FOR UPDATE",
                (tenant_id, team_name),
            )
            row = cur.fetchone()
            assert row is not None
            agents = [a.id for a in team.agents] if team is not None else []
            # Read committed: each statement sees every save committed before
            # it, and the previous holder's save committed before its turn
            # ended.
            state = TeamTurn(
                tenant_id,
                team_name,
                turn=int(row["turn"]),
                loads=open_ticket_counts(conn, tenant_id, agents),
                _conn=conn,
            )
            yield state
            cur.execute(
                "UPDATE assignment_turns SET turn = turn + 1"
                " WHERE tenant_id = %s AND team = %s",
                (tenant_id, team_name),
            )

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The turns' own connections (for the pool metrics)."""
        return self._pool

    def close(self) -> None:
        self._pool.close()
