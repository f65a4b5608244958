"""Starting the workers from settings, each under the supervisor
(``consumers/supervision.py``: restarts with back-off, a heartbeat for
``/ready``): as the process (``ticketing worker relay``, ``ticketing
worker projections``) or on a thread of ``ticketing dev`` and the tests.
The notifier, the timers and the workflows have their ``serve_*`` beside
their code.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import Environment

from dotmac.ticketing.consumers.notify.notifier import NOTIFIER_NAME
from dotmac.ticketing.consumers.relay import Relay
from dotmac.ticketing.consumers.supervision import (
    RunningWorker,
    blocking,
    current_health,
    serve,
    start_in_thread,
)
from dotmac.ticketing.consumers.timers.worker import TIMERS_NAME, run_timers
from dotmac.ticketing.consumers.workflows.worker import (
    WORKFLOWS_NAME,
    run_workflows,
)
from dotmac.ticketing.entry.projection_worker import projection_worker
from dotmac.ticketing.projections.status import projection_statuses
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.workflows import WorkflowRegistry
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env

log = structlog.get_logger(__name__)

# The relay's tracking table is ``relay_tracking``.
RELAY_TRACKING = "relay"
# The service's consumer groups of the ticket topic: after the broker lost
# the topic the relay republishes what any of them has not applied.
SERVICE_CONSUMER_GROUPS = (NOTIFIER_NAME, TIMERS_NAME, WORKFLOWS_NAME)


def build_relay(settings: Settings, **options: Any) -> Relay:
    """A relay over the configured database and brokers (call ``close_relay``).

    ``options`` are passed to :class:`Relay` (tests shorten its timeouts).
    """
    if not settings.database_url:
        raise ValueError("the relay needs DATABASE_URL")
    if not settings.kafka_bootstrap_servers:
        raise ValueError("the relay needs KAFKA_BOOTSTRAP_SERVERS")
    # Reads the log: one LISTEN connection, one for reads, one spare.
    app = TicketApplication(eventsourcing_env(settings.database_url, pool_size=3))
    try:
        # The position, and the advisory lock's connection.
        tracking_env = eventsourcing_env(settings.database_url, pool_size=2)
        factory = InfrastructureFactory.construct(
            Environment(RELAY_TRACKING, tracking_env)
        )
        tracking = factory.tracking_recorder()
    except BaseException:
        app.close()
        raise
    assert isinstance(tracking, PostgresTrackingRecorder)
    options.setdefault("partitions", settings.kafka_partitions)
    options.setdefault("consumer_groups", SERVICE_CONSUMER_GROUPS)
    options.setdefault(
        "recreate_mismatched_topics", settings.kafka_recreate_mismatched_topics
    )
    return Relay(app, tracking, settings.kafka_bootstrap_servers, **options)


def close_relay(relay: Relay) -> None:
    try:
        relay.app.close()
    finally:
        relay.tracking.datastore.close()


def relay_lag(relay: Relay) -> int:
    """Log positions the relay has not published yet."""
    head = relay.app.head_position()
    return max(head - (relay.tracking.max_tracking_id(relay.app.name) or 0), 0)


async def relay_main(relay: Relay, stop: asyncio.Event) -> None:
    """Run a built relay until ``stop`` (its loop waits on a thread's event)."""
    health = current_health()
    if health is not None:
        health.watch_lag("relay", lambda: asyncio.to_thread(relay_lag, relay))
    thread_stop = threading.Event()
    watcher = asyncio.ensure_future(stop.wait())
    watcher.add_done_callback(lambda _: thread_stop.set())
    try:
        await relay.run(thread_stop)
    finally:
        watcher.cancel()
        if health is not None:
            health.unwatch_lag("relay")


async def run_relay(settings: Settings, stop: asyncio.Event, **options: Any) -> None:
    """Build the relay and run it until ``stop`` (``ticketing worker relay``)."""
    relay = await asyncio.to_thread(build_relay, settings, **options)
    try:
        await relay_main(relay, stop)
    finally:
        await asyncio.to_thread(close_relay, relay)


def serve_relay(settings: Settings) -> None:
    """Run the relay as this process until SIGTERM or Ctrl-C.

    On SIGTERM the batch in flight is finished (or abandoned unrecorded).
    """
    serve("relay", settings, lambda stop: run_relay(settings, stop))


@dataclass
class RunningRelay:
    """The relay on a thread of this process, and how to stop it."""

    worker: RunningWorker
    relay: Relay

    def stop(self, timeout: float = 10.0) -> None:
        self.worker.stop(timeout)
        if not self.worker.thread.is_alive():
            close_relay(self.relay)


def start_relay(settings: Settings, **options: Any) -> RunningRelay:
    """Start the relay on a daemon thread (``ticketing dev``, tests)."""
    relay = build_relay(settings, **options)
    worker = start_in_thread(
        "relay", lambda stop: relay_main(relay, stop), settings=settings
    )
    return RunningRelay(worker=worker, relay=relay)


def projection_lag(app: TicketApplication) -> int:
    """Log positions the live tickets projection has not applied yet."""
    (tickets,) = projection_statuses(app.datastore)
    return tickets.lag


async def run_projections(settings: Settings, stop: asyncio.Event) -> None:
    """The projection worker until ``stop`` (``ticketing worker projections``)."""
    worker, app = await asyncio.to_thread(projection_worker, settings)
    health = current_health()
    if health is not None:
        health.watch_lag("projections", lambda: asyncio.to_thread(projection_lag, app))
    try:
        await blocking(worker.run, stop)
    finally:
        if health is not None:
            health.unwatch_lag("projections")
        await asyncio.to_thread(app.close)


def serve_projections(settings: Settings) -> None:
    """Run the projection worker as this process until SIGTERM or Ctrl-C."""
    serve("projections", settings, lambda stop: run_projections(settings, stop))


def start_projection_worker(settings: Settings) -> RunningWorker:
    """Start the projection worker on a daemon thread (``ticketing dev``, tests)."""
    return start_in_thread(
        "projections",
        lambda stop: run_projections(settings, stop),
        settings=settings,
    )


def start_timers(settings: Settings, *, clock: Clock | None = None) -> RunningWorker:
    """Start the timers on a daemon thread (``ticketing dev``, tests).

    ``clock`` defaults to ``TICKETING_CLOCK_FILE`` or the real time; the
    firing loop and the commands it issues share it.
    """
    return start_in_thread(
        "timers",
        lambda stop: run_timers(settings, stop, clock=clock),
        settings=settings,
    )


def start_workflows(
    settings: Settings,
    *,
    clock: Clock | None = None,
    workflows: WorkflowRegistry | None = None,
) -> RunningWorker:
    """Start the workflow runtime on a daemon thread (``ticketing dev``, tests).

    ``workflows`` replaces the default registry (the built-ins and the
    installed entry points), e.g. with workflows registered in code.
    """
    return start_in_thread(
        "workflows",
        lambda stop: run_workflows(settings, stop, clock=clock, workflows=workflows),
        settings=settings,
    )
