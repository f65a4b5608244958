"""Which build of each projection the queries read, and the swap to a new one.

A build is a schema of read tables filled from position zero. Exactly one
build per projection is ``active``; a rebuild fills a ``building`` one next
to it and :meth:`BuildRegistry.activate` swaps them in one transaction.

The registry's own tables (``projection_builds``,
``projection_rebuild_requests``) are static, created by migration 0001; a
build's schema and read tables are created here and by the library when
the build starts, and dropped with it: they are data of the rebuild
mechanism, not part of the versioned schema.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, sql

OnSwap = Callable[[Cursor[Any], str], None]


@dataclass(frozen=True)
class Build:
    projection: str
    version: int
    schema: str
    state: str


class BuildRegistry:
    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore

    def active(self, projection: str) -> Build | None:
        return self._one(projection, "active")

    def building(self, projection: str) -> Build | None:
        return self._one(projection, "building")

    def start_build(self, projection: str, version: int) -> Build:
        """A fresh, empty schema for a new build."""
        schema = f"rm_{projection}_v{version}_{secrets.token_hex(3)}"
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            cur.execute(
                "INSERT INTO projection_builds (schema_name, projection, version,"
                " state) VALUES (%s, %s, %s, 'building')",
                (schema, projection, version),
            )
        return Build(projection, version, schema, "building")

    def activate(self, build: Build, on_swap: OnSwap | None = None) -> Build | None:
        """Make ``build`` the one queries read; return the build it replaced.

        ``on_swap`` runs in the same transaction (it re-points the analysts'
        views), so readers see either the old build everywhere or the new.
        """
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "SELECT schema_name, version FROM projection_builds"
                " WHERE projection = %s AND state = 'active' FOR UPDATE",
                (build.projection,),
            )
            row = cur.fetchone()
            cur.execute(
                "UPDATE projection_builds SET state = 'retired'"
                " WHERE projection = %s AND state = 'active'",
                (build.projection,),
            )
            cur.execute(
                "UPDATE projection_builds SET state = 'active', activated_at = now()"
                " WHERE schema_name = %s",
                (build.schema,),
            )
            if on_swap is not None:
                on_swap(cur, build.schema)
        if row is None:
            return None
        return Build(build.projection, row["version"], row["schema_name"], "retired")

    def analyze(self, build: Build) -> None:
        """Gather planner statistics of a build's tables."""
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s",
                (build.schema,),
            )
            for row in cur.fetchall():
                cur.execute(
                    sql.SQL("ANALYZE {}").format(
                        sql.Identifier(build.schema, row["tablename"])
                    )
                )

    def drop(self, build: Build) -> None:
        """Remove a retired or abandoned build and its tables."""
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(build.schema)
                )
            )
            cur.execute(
                "DELETE FROM projection_builds WHERE schema_name = %s", (build.schema,)
            )

    def request_rebuild(self, projection: str) -> None:
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "INSERT INTO projection_rebuild_requests (projection) VALUES (%s)"
                " ON CONFLICT (projection) DO UPDATE SET requested_at = now()",
                (projection,),
            )

    def take_rebuild_request(self, projection: str) -> bool:
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "DELETE FROM projection_rebuild_requests WHERE projection = %s"
                " RETURNING projection",
                (projection,),
            )
            return cur.fetchone() is not None

    def position(self, build: Build, application_name: str) -> int:
        """How far a build has applied the event log (0 before the first)."""
        table = sql.Identifier(build.schema, f"{build.projection}_tracking")
        with self._datastore.transaction() as cur:
            try:
                cur.execute(
                    sql.SQL(
                        "SELECT notification_id FROM {} WHERE application_name = %s"
                    ).format(table),
                    (application_name,),
                )
            except Exception:
                return 0
            row = cur.fetchone()
        return int(row["notification_id"]) if row else 0

    def _one(self, projection: str, state: str) -> Build | None:
        with self._datastore.transaction() as cur:
            cur.execute(
                "SELECT schema_name, version FROM projection_builds"
                " WHERE projection = %s AND state = %s"
                " ORDER BY created_at DESC LIMIT 1",
                (projection, state),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return Build(projection, row["version"], row["schema_name"], state)
