"""Building the projection worker from settings.

``entry/workers.py`` runs it under the supervisor (restarts, heartbeat);
``ticketing projections rebuild`` runs one directly.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from dotmac.ticketing.projections.analytics import (
    point_analytics_views,
    repoint_analytics_views,
)
from dotmac.ticketing.projections.worker import ProjectionWorker
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env

log = structlog.get_logger(__name__)


def projection_worker(
    settings: Settings, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[ProjectionWorker, TicketApplication]:
    """The projection worker over the configured database."""
    assert settings.database_url is not None
    env = eventsourcing_env(settings.database_url, pool_size=2)
    # Its own small pool: the advisory-lock connection and registry reads.
    app = TicketApplication(env)
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
