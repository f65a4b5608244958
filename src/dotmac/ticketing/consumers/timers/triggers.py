"""The trigger consumer: ticket events in, triggers run (``ticketing-triggers``).

A :class:`~consumers.kafka.consumer_loop.Handler` of the shared consumer,
in a group of its own inside the timers' process (the time triggers'
deadlines are the timers' too). Per event it works out the event's kinds
(``domain.triggers.event_kinds``) and hands the tenant's enabled triggers
to ``TriggerService.run_on_event``, which runs those the event sets off.
Their effects are ticket commands, saved outside this consumer's
transaction; each run is keyed by trigger and event (``trigger_runs``)
and each comment by trigger, event and action, so an event consumed again
after a crash runs no trigger twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import structlog
from psycopg import AsyncCursor

from dotmac.ticketing.consumers.kafka.cloudevents import (
    UnknownEventType,
    parse_cloudevent,
)
from dotmac.ticketing.consumers.kafka.consumer_loop import Record
from dotmac.ticketing.domain.triggers import Trigger, event_kinds
from dotmac.ticketing.service.bootstrap import Ticketing

log = structlog.get_logger(__name__)

TRIGGERS_NAME = "ticketing-triggers"


class TenantTriggers:
    """A tenant's enabled triggers, read at most once per ``ttl`` seconds:
    a changed trigger is seen within that, and a burst of one tenant's
    events reads them once."""

    def __init__(self, ticketing: Ticketing, *, ttl: float = 1.0) -> None:
        self._ticketing = ticketing
        self._ttl = ttl
        self._cached: dict[str, tuple[float, Sequence[Trigger]]] = {}

    def of(self, tenant_id: str) -> Sequence[Trigger]:
        now = time.monotonic()
        cached = self._cached.get(tenant_id)
        if cached is None or now - cached[0] >= self._ttl:
            cached = (now, self._ticketing.triggers.enabled(tenant_id))
            self._cached[tenant_id] = cached
        return cached[1]


class TriggerRunner:
    """Runs the event triggers each ticket event sets off (a consumer handler)."""

    def __init__(self, ticketing: Ticketing, *, triggers: TenantTriggers) -> None:
        self._ticketing = ticketing
        self._triggers = triggers

    async def handle(self, record: Record, cur: AsyncCursor[Any]) -> None:
        try:
            envelope, data = parse_cloudevent(record.value)
        except UnknownEventType:
            log.info("skipping an event of unknown type", stream=record.stream)
            return
        kinds = event_kinds(
            type(data).__name__.removesuffix("Data"),
            actor_role=data.actor.role,
            internal=bool(getattr(data, "internal", False)),
        )
        if not kinds:
            return
        await asyncio.to_thread(self._run, data.tenant_id, envelope.id, data, kinds)

    def _run(
        self, tenant_id: str, event_id: str, data: Any, kinds: frozenset[str]
    ) -> None:
        triggers = [t for t in self._triggers.of(tenant_id) if t.events]
        if not triggers:
            return
        outcomes = self._ticketing.triggers.run_on_event(
            tenant_id,
            data.ticket_id,
            event_id=event_id,
            kinds=kinds,
            causation_id=data.causation_id,
            triggers=triggers,
        )
        if outcomes:
            log.debug("triggers ran", event_id=event_id, outcomes=list(outcomes))
