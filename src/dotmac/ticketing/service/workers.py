"""Starting the background workers from settings (CLI and `ticketing dev`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from dotmac.ticketing.projections.analytics import (
    point_analytics_views,
    repoint_analytics_views,
)
from dotmac.ticketing.projections.registry import BuildRegistry
from dotmac.ticketing.projections.worker import ProjectionWorker
from dotmac.ticketing.service.application import TicketApplication
from dotmac.ticketing.service.database import eventsourcing_env
from dotmac.ticketing.service.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class RunningWorker:
    """A worker on a thread of this process, and how to stop it."""

    thread: threading.Thread
    stop_event: threading.Event
    app: TicketApplication

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        self.app.close()


def projection_worker(
    settings: Settings, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[ProjectionWorker, TicketApplication]:
    """The projection worker over the configured database."""
    assert settings.database_url is not None
    env = eventsourcing_env(settings.database_url, pool_size=2)
    # Its own small pool: the advisory-lock connection and registry reads.
    app = TicketApplication(env)
    BuildRegistry(app.datastore).create_tables()
    # A build swapped in by an older version may have no analysts' views yet.
    repoint_analytics_views(app.datastore)
    worker = ProjectionWorker(
        env,
        datastore=app.datastore,
        # Analysts' views follow every swap, in the swap's own transaction.
        on_swap=point_analytics_views,
        on_progress=on_progress,
    )
    return worker, app


def start_projection_worker(settings: Settings) -> RunningWorker:
    worker, app = projection_worker(settings)
    stop = threading.Event()

    def run() -> None:
        try:
            worker.run(stop)
        except Exception:
            log.exception("projection worker stopped")

    thread = threading.Thread(target=run, name="projection-worker", daemon=True)
    thread.start()
    return RunningWorker(thread=thread, stop_event=stop, app=app)
