"""Test helpers: a settable clock, and running the projection worker to a point.

The worker runs in a thread the way ``ticketing worker projections`` runs
it (advisory lock included) and is stopped once the active build has
applied every event in the store.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from dotmac.ticketing.projections.analytics import point_analytics_views
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.projections.registry import BuildRegistry
from dotmac.ticketing.projections.worker import PROJECTION, ProjectionWorker
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.store.database import eventsourcing_env


class SetClock:
    """A clock the test moves by hand: every event gets a chosen time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def project(
    ticketing: Ticketing,
    database_url: str,
    *,
    rebuild: bool = False,
    timeout: float = 120.0,
) -> str:
    """Run a worker until the active build has caught up; return its schema.

    With ``rebuild``, a rebuild is requested first and the wait is for the
    new build to be swapped in (over ``point_analytics_views``) and caught up.
    """
    datastore = ticketing.app.datastore
    registry = BuildRegistry(datastore)
    before = registry.active(PROJECTION)
    if rebuild and before is not None:
        # (With no build yet, the worker's first build is the rebuild.)
        registry.request_rebuild(PROJECTION)
    worker = ProjectionWorker(
        eventsourcing_env(database_url, pool_size=2),
        datastore=datastore,
        on_swap=point_analytics_views,
        poll_interval=0.05,
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            worker.run(stop)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=work, name="projection-worker", daemon=True)
    thread.start()
    read_model = ReadModel(datastore, ttl=0)
    head = ticketing.app.head_position()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not errors:
            active = registry.active(PROJECTION)
            swapped = not rebuild or (
                active is not None
                and (before is None or active.schema != before.schema)
            )
            if swapped and active is not None and read_model.position() >= head:
                return active.schema
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    raise AssertionError(f"the projection did not reach {head} in {timeout}s")
