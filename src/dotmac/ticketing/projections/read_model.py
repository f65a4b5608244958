"""The query side's handle on the active build of a projection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, sql

from dotmac.ticketing.projections.registry import Build, BuildRegistry

APPLICATION_NAME = "ticketing"


class ProjectionNotReady(Exception):
    """No build of the projection has been swapped in yet."""


class ReadModel:
    """Reads the active build; remembers which one for a moment.

    The active schema is looked up at most every ``ttl`` seconds: a swap is
    seen within that time, and a query that still hits the retired (and
    dropped) schema is retried once on the new one.
    """

    def __init__(
        self,
        datastore: PostgresDatastore,
        projection: str = "tickets",
        *,
        ttl: float = 1.0,
    ) -> None:
        self._datastore = datastore
        self._registry = BuildRegistry(datastore)
        self._projection = projection
        self._ttl = ttl
        self._cached: tuple[float, Build] | None = None

    def active(self, *, refresh: bool = False) -> Build:
        now = time.monotonic()
        if not refresh and self._cached and now - self._cached[0] < self._ttl:
            return self._cached[1]
        build = self._registry.active(self._projection)
        if build is None:
            raise ProjectionNotReady(f"the {self._projection} projection is building")
        self._cached = (now, build)
        return build

    @contextmanager
    def cursor(self) -> Iterator[Cursor[Any]]:
        """A read-only transaction with the active build on the search path."""
        build = self.active()
        with self._datastore.transaction() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(
                sql.SQL("SET LOCAL search_path TO {}").format(
                    sql.Identifier(build.schema)
                )
            )
            yield cur

    def run(self, query: Any, params: Any = None) -> list[dict[str, Any]]:
        """Fetch all rows of ``query`` from the active build."""
        for attempt in (1, 2):
            try:
                with self.cursor() as cur:
                    cur.execute(query, params)
                    return list(cur.fetchall())
            except Exception as error:
                # The build was swapped and dropped under us: look again.
                if attempt == 2 or "does not exist" not in str(error):
                    raise
                self.active(refresh=True)
        raise AssertionError("unreachable")

    def position(self) -> int:
        """The last event position the active build has applied."""
        try:
            build = self.active()
        except ProjectionNotReady:
            return 0
        return self._registry.position(build, APPLICATION_NAME)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Wait (bounded) until the projection has applied ``position``."""
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            if self.position() >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
