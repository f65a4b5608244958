"""Starting the Kafka-side workers from settings: the relay alone (``ticketing
worker relay``) or on a thread of ``ticketing dev``; the timers on a thread
(``ticketing worker timers`` runs ``consumers.timers.serve_timers``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import Environment, InfrastructureFactory
from eventsourcing.postgres import PostgresTrackingRecorder

from dotmac.ticketing.consumers.notifier import NOTIFIER_NAME
from dotmac.ticketing.consumers.relay import Relay
from dotmac.ticketing.consumers.supervision import RunningWorker, start_in_thread
from dotmac.ticketing.consumers.timers import TIMERS_NAME, run_timers
from dotmac.ticketing.consumers.workflows import WORKFLOWS_NAME, run_workflows
from dotmac.ticketing.service.application import TicketApplication
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.database import ddl_lock, eventsourcing_env
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.workflows import WorkflowRegistry

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
        with ddl_lock(tracking_env):
            tracking = factory.tracking_recorder()
    except BaseException:
        app.close()
        raise
    assert isinstance(tracking, PostgresTrackingRecorder)
    options.setdefault("partitions", settings.kafka_partitions)
    options.setdefault("consumer_groups", SERVICE_CONSUMER_GROUPS)
    return Relay(app, tracking, settings.kafka_bootstrap_servers, **options)


def close_relay(relay: Relay) -> None:
    try:
        relay.app.close()
    finally:
        relay.tracking.datastore.close()


def run_relay(settings: Settings, stop: threading.Event, **options: Any) -> None:
    """Run the relay on this thread until ``stop`` is set."""
    relay = build_relay(settings, **options)
    try:
        relay.run_sync(stop)
    finally:
        close_relay(relay)


@dataclass
class RunningRelay:
    """The relay on a thread of this process, and how to stop it."""

    thread: threading.Thread
    stop_event: threading.Event
    relay: Relay

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        if not self.thread.is_alive():
            close_relay(self.relay)


def start_relay(settings: Settings, **options: Any) -> RunningRelay:
    """Start the relay on a daemon thread (``ticketing dev``)."""
    relay = build_relay(settings, **options)
    stop = threading.Event()

    def run() -> None:
        try:
            relay.run_sync(stop)
        except Exception:
            log.exception("relay stopped")

    thread = threading.Thread(target=run, name="relay", daemon=True)
    thread.start()
    return RunningRelay(thread=thread, stop_event=stop, relay=relay)


def start_timers(settings: Settings, *, clock: Clock | None = None) -> RunningWorker:
    """Start the timers on a daemon thread (``ticketing dev``, tests).

    ``clock`` defaults to ``TICKETING_CLOCK_FILE`` or the real time; the
    firing loop and the commands it issues share it.
    """
    return start_in_thread(
        "timers", lambda stop: run_timers(settings, stop, clock=clock)
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
    )
