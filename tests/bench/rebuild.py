"""Rebuild speed: replay the whole event log into fresh read tables.

This is the path of a first deployment or a new projection version: the
worker finds no build of the current version, starts one, catches it up
(the batched catch-up, then the library's runner) and swaps it in. It runs
here, in the bench process, with the production code
(``service.workers.projection_worker``, ``ProjectionWorker.run(...,
until_swapped=True)``), on a log nobody else writes meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from dotmac.ticketing.entry.processes import projection_worker
from dotmac.ticketing.projections.read_model import APPLICATION_NAME
from dotmac.ticketing.projections.registry import Build, BuildRegistry
from dotmac.ticketing.projections.worker import CATCH_UP_BATCH, PROJECTION
from dotmac.ticketing.service.settings import Settings
from tests.bench.harness import BenchError, ReadRow, client_cpu_probe, cpu_used


def run_rebuild(
    database_url: str,
    *,
    tickets: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReadRow:
    """Time a rebuild from position zero to the swap; check what it built."""
    worker, app = projection_worker(
        Settings(database_url=database_url), on_progress=on_progress
    )
    try:
        registry = BuildRegistry(app.datastore)
        if registry.active(PROJECTION) is not None:
            raise BenchError("the rebuild needs a database without a tickets build")
        head = app.head_position()
        row = ReadRow(
            "rebuild from position 0",
            head,
            0.0,
            "events",
            notes=(
                "the whole log into a fresh build and swap it in: "
                "ProjectionWorker.run(until_swapped) in this process (catch-up "
                f"of {CATCH_UP_BATCH} events per transaction)"
            ),
        )
        with cpu_used(_probe, row):
            start = time.perf_counter()
            if not worker.run(threading.Event(), until_swapped=True):
                raise BenchError("the rebuild stopped before it swapped in")
            row.seconds = time.perf_counter() - start
        _check(app.datastore, head, tickets)
        row.notes += "; the worker ANALYZEs the new tables before the swap (timed)"
        return row
    finally:
        app.close()


def _probe() -> dict[str, float]:
    return {
        "this process (the rebuild)" if name == "client" else name: value
        for name, value in client_cpu_probe().items()
    }


def _check(datastore: PostgresDatastore, head: int, tickets: int) -> Build:
    """The swapped-in build has applied every event and has every ticket."""
    registry = BuildRegistry(datastore)
    build = registry.active(PROJECTION)
    if build is None:
        raise BenchError("no active build after the rebuild")
    position = registry.position(build, APPLICATION_NAME)
    with datastore.transaction() as cur:
        cur.execute(
            sql.SQL("SELECT count(*) AS n FROM {}").format(
                sql.Identifier(build.schema, "tickets")
            )
        )
        result = cur.fetchone()
    rows = int(result["n"]) if result else 0
    if position != head or rows != tickets:
        raise BenchError(
            f"the rebuild is incomplete: position {position} of {head}, "
            f"{rows} of {tickets} tickets"
        )
    return build
