"""Pooled connections are not pinged on every checkout, yet a closed one is
never handed out."""

from __future__ import annotations

import psycopg

from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env


def test_connections_the_server_ended_are_replaced_before_use(
    isolated_database_url: str,
) -> None:
    app = TicketApplication(eventsourcing_env(isolated_database_url, pool_size=3))
    try:
        pool = app.datastore.pool
        pool.wait(5)
        with pool.connection() as a, pool.connection() as b:
            pids = {a.info.backend_pid, b.info.backend_pid}
        # An operator (or a restarted server) ends every idle connection.
        with psycopg.connect(isolated_database_url, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

        for _ in range(3):  # each idle connection in turn, and a new one
            with app.datastore.get_connection() as conn:
                assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
                assert conn.info.backend_pid not in pids
    finally:
        app.close()
