"""Helpers of the timers' tests: a movable clock, the stack, reading events back."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from dotmac.ticketing.consumers.kafka.broker import DevBroker, ensure_topics
from dotmac.ticketing.consumers.kafka.topics import service_topics
from dotmac.ticketing.consumers.supervision import RunningWorker as AsyncWorker
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.processes import (
    RunningRelay,
    start_notifier,
    start_projection_worker,
    start_relay,
    start_timers,
)
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings

T = TypeVar("T")

#: Tests run on this fake time (a Monday), far from the real one.
EPOCH = datetime.fromisoformat("2031-03-03T09:00:00+00:00")
PARTITIONS = 3


class MovableClock:
    """A clock a test moves by hand, shared by everything in its process."""

    def __init__(self, now: datetime = EPOCH) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def stack_settings(database_url: str, broker: DevBroker, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_partitions=PARTITIONS,
        # A dead consumer's partitions move in about two seconds.
        kafka_session_timeout_ms=2000,
        kafka_fetch_max_wait_ms=20,
        db_pool_size=4,
        timers_poll_interval=0.1,
        **extra,
    )


@dataclass
class Stack:
    """The write side in this process, and the workers the timers depend on."""

    settings: Settings
    ticketing: Ticketing
    clock: MovableClock
    workers: list[RunningRelay | AsyncWorker]

    def stop(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()
        self.ticketing.close()


@contextmanager
def running_stack(
    settings: Settings,
    *,
    clock: MovableClock,
    projections: bool = False,
    notifier: bool = False,
) -> Iterator[Stack]:
    """Ticketing, the relay and the timers (the projections, the notifier)."""
    assert settings.kafka_bootstrap_servers is not None
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap_servers, service_topics(PARTITIONS))
    )
    ticketing = initialize_ticketing(settings, clock=clock)
    stack = Stack(settings, ticketing, clock, [])
    try:
        if projections:
            stack.workers.append(start_projection_worker(settings))
            wait_until(lambda: read_model_ready(ticketing), what="the read model")
        stack.workers.append(start_relay(settings, idle_wait=0.2))
        stack.workers.append(start_timers(settings, clock=clock))
        if notifier:
            stack.workers.append(start_notifier(settings, config={}, clock=clock))
        wait_until(lambda: _timers_running(settings), what="the timers to start")
        yield stack
    finally:
        stack.stop()


def _timers_running(settings: Settings) -> bool:
    """The timers' heartbeat says running: started, and in their group."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT 1 FROM worker_status WHERE worker = 'timers' AND state = 'running'"
        ).fetchone()
    return row is not None


def read_model_ready(ticketing: Ticketing) -> bool:
    try:
        ticketing.read_model.active(refresh=True)
    except Exception:
        return False
    return True


def worker_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment of a worker process configured like ``settings``."""
    assert settings.database_url and settings.kafka_bootstrap_servers
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TICKETING_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "TICKETING_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
        "TICKETING_KAFKA_FETCH_MAX_WAIT_MS": str(settings.kafka_fetch_max_wait_ms),
        "TICKETING_DB_POOL_SIZE": str(settings.db_pool_size),
        "TICKETING_TIMERS_POLL_INTERVAL": str(settings.timers_poll_interval),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "warning",
        **variables,
    }


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    what: str = "the condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def admin(tenant_id: str) -> RequestContext:
    return RequestContext(tenant_id, "admin-1", frozenset({"admin"}))


def agent(tenant_id: str, agent_id: str = "agent-1") -> RequestContext:
    return RequestContext(tenant_id, agent_id, frozenset({"agent"}))


def supervisor(tenant_id: str) -> RequestContext:
    return RequestContext(tenant_id, "lead-1", frozenset({"supervisor"}))


def customer(tenant_id: str, customer_id: str = "cust-1") -> RequestContext:
    return RequestContext(tenant_id, customer_id, frozenset({"customer"}))


def events_of(
    ticketing: Ticketing, kinds: Sequence[type[Ticket.Event]] = ()
) -> list[Ticket.Event]:
    """Every stored ticket event (of ``kinds``), in log order."""
    recorder = ticketing.app.recorder
    mapper = ticketing.app.mapper
    topics = [kind.TOPIC for kind in kinds]  # type: ignore[attr-defined]
    found: list[Ticket.Event] = []
    start = 1
    while True:
        batch = recorder.select_notifications(start, 1000, topics=topics)
        if not batch:
            return found
        for notification in batch:
            event = mapper.to_domain_event(notification)
            if isinstance(event, Ticket.Event):
                found.append(event)
        start = batch[-1].id + 1


def ticket_events(ticketing: Ticketing, ticket_id: Any) -> list[Ticket.Event]:
    """One ticket's events, oldest first."""
    return [
        e for e in ticketing.app.events.get(ticket_id) if isinstance(e, Ticket.Event)
    ]


def names(events: Sequence[Ticket.Event]) -> list[str]:
    return [type(event).__name__ for event in events]
