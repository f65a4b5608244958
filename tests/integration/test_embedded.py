"""The ``database_url`` fixture hands out a database one can connect to."""

from __future__ import annotations

import psycopg


def test_database_url_is_connectable(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
