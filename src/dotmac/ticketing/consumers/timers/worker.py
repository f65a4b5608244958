"""The timers: deadlines kept from ticket events, commands issued when they fall due.

``ticketing worker timers`` runs these loops in one process, over one pool
and one ticketing core built with the process's clock:

- :class:`DeadlineKeeper`, the handler of the shared consumer (group
  ``ticketing-timers``). For every ticket event it loads the ticket as it
  is now and the tenant's settings, and replaces the ticket's rows of
  ``timer_deadlines`` with ``domain.deadlines.ticket_deadlines`` of that
  state, in the transaction that also records the partition's offset.
  Working from the current state rather than the event makes replays,
  duplicates and events met out of order harmless. After an event that
  may free an agent (a resolve, close, unassignment, reassignment or an
  escalation to another team) it hands that agent's teams' waiting
  tickets out (``TicketService.drain_team_queue``, idempotent), inside
  the same transaction, so a crash before the commit drains again.
- :class:`SettingsWatcher`: when a tenant's settings change (an escalation
  rule added or edited), it recomputes the rows of the tenant's active
  tickets, instead of waiting for each ticket's next event.
- :class:`~dotmac.ticketing.consumers.timers.retention.RetentionSweep`:
  erases the personal data of closed tickets whose tenant's ``retention``
  period has ended, one replica at a time, a bounded batch per sweep.
- :class:`TimerLoop`, the firing loop. It claims due rows with ``FOR
  UPDATE SKIP LOCKED`` (replicas share the work and never hold the same
  row), issues the command (SLA rows: ``check_sla``; escalation rows:
  ``apply_escalation_rule``), deletes each claimed row unless its due time
  moved, and commits. Commands re-check everything against the ticket
  when they run and are idempotent, so a crash between a command and the
  commit only fires that row again, to no effect. Then it sleeps until the
  next due time, at most ``TICKETING_TIMERS_POLL_INTERVAL``, woken early by
  ``NOTIFY`` when the keeper writes a deadline due sooner than that.

The loop and the ticketing core use the same clock: the real one, or
``TICKETING_CLOCK_FILE`` in tests and demos (``service/clock.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from prometheus_client import Counter, Histogram
from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.kafka.cloudevents import (
    UnknownEventType,
    parse_cloudevent,
)
from dotmac.ticketing.consumers.kafka.consumer_loop import (
    TRANSACTION_BATCH,
    KafkaConfig,
    Record,
    ensure_service_topics,
    ticket_events_consumer,
    worker_pool,
)
from dotmac.ticketing.consumers.supervision import restarting
from dotmac.ticketing.consumers.timers.retention import RetentionSweep
from dotmac.ticketing.consumers.timers.tables import (
    WAKE_CHANNEL,
    DueDeadline,
    claim_due,
    delete_fired,
    next_due_at,
    postpone,
    replace_deadlines,
    stale_tenants,
    tickets_behind,
)
from dotmac.ticketing.consumers.timers.triggers import (
    TRIGGERS_NAME,
    TenantTriggers,
    TriggerRunner,
)
from dotmac.ticketing.domain.deadlines import TimerDeadline, ticket_deadlines
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES
from dotmac.ticketing.domain.errors import DomainError
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.tenant_config import parse as parse_config
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.schemas.events import (
    TicketAssignedData,
    TicketClosedData,
    TicketEscalatedData,
    TicketEventData,
    TicketResolvedData,
    TicketUnassignedData,
)
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.errors import TicketNotFound
from dotmac.ticketing.store.notify_wait import listen, wake_on

log = structlog.get_logger(__name__)

TIMERS_NAME = "ticketing-timers"

# The timers' event-store pool: one thread for the consumer's loads and
# drains, one for the loop's commands, one for the retention sweep's
# erasures, and reads of the read model.
TIMERS_DB_POOL_SIZE = 6
LATENESS = Histogram(
    "ticketing_timer_lateness_seconds",
    "How late a deadline's command ran: fired minus due (service clock).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
FIRED = Counter(
    "ticketing_timers_fired",
    "Deadlines fired, by kind (sla, escalation, workflow, trigger).",
    ("kind",),
)

# Deadlines claimed per transaction. Their rows stay locked until the batch
# commits, holding up (only) the consumer of those tickets' next events.
BATCH_SIZE = 50
# A command that failed is tried again after 2 s, 4 s, ... at most 5 min
# (the rows' own retry times, on the database's clock).
COMMAND_RETRY = Backoff(initial=2.0, maximum=300.0, jitter=0.0)

_FREEING = (
    TicketResolvedData,
    TicketClosedData,
    TicketUnassignedData,
    TicketAssignedData,
    TicketEscalatedData,
)


@dataclass(frozen=True)
class TicketPlan:
    """What the keeper decided for a ticket, outside the transaction."""

    tenant_id: str
    version: int
    deadlines: list[TimerDeadline]
    freed_teams: list[str]
    now: datetime
    settings_version: int = 0
    active: bool = True


class DeadlineKeeper:
    """Keeps ``timer_deadlines`` in step with the tickets (a consumer handler)."""

    def __init__(
        self,
        ticketing: Ticketing,
        clock: Clock,
        *,
        wake_within: float = 1.0,
        settings_ttl: float = 1.0,
    ) -> None:
        self._ticketing = ticketing
        self._clock = clock
        # A loop sleeps at most this long: deadlines due sooner wake it.
        self._wake_within = timedelta(seconds=wake_within)
        # A burst of events of one tenant reads its settings once a second,
        # not once an event. Rows computed under settings a moment old carry
        # that older version, and the SettingsWatcher brings them up to date.
        self._settings_ttl = settings_ttl
        self._configs: dict[str, tuple[float, int, TenantConfig]] = {}
        # Time triggers: a trigger added or changed reaches a ticket's rows
        # with the ticket's next event.
        self._triggers = TenantTriggers(ticketing, ttl=settings_ttl)

    async def handle(self, record: Record, cur: AsyncCursor[Any]) -> None:
        try:
            envelope, data = parse_cloudevent(record.value)
        except UnknownEventType:
            # Written by a newer producer: nothing here depends on it.
            log.info("skipping an event of unknown type", stream=record.stream)
            return
        plan = await asyncio.to_thread(self._plan, data)
        if plan is None:
            log.warning(
                "event of a ticket not in this event store",
                ticket_id=str(data.ticket_id),
                type=envelope.type,
            )
            return
        written = await replace_deadlines(
            cur,
            tenant_id=plan.tenant_id,
            ticket_id=data.ticket_id,
            version=plan.version,
            deadlines=plan.deadlines,
            settings_version=plan.settings_version,
            active=plan.active,
        )
        if written and any(
            d.due_at <= plan.now + self._wake_within for d in plan.deadlines
        ):
            await cur.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))
        for team in plan.freed_teams:
            await asyncio.to_thread(
                self._ticketing.tickets.drain_team_queue,
                plan.tenant_id,
                team,
                causation_id=envelope.id,
            )

    def _plan(self, data: TicketEventData) -> TicketPlan | None:
        ticket = self._find(data.ticket_id)
        if ticket is None:
            return None
        settings_version, config = self._tenant_config(ticket.tenant_id)
        return TicketPlan(
            tenant_id=ticket.tenant_id,
            version=ticket.version,
            deadlines=ticket_deadlines(
                ticket, config, self._triggers.of(ticket.tenant_id)
            ),
            freed_teams=self._freed_teams(ticket, data, config),
            now=self._clock(),
            settings_version=settings_version,
            active=ticket.status in ACTIVE_STATUSES,
        )

    def _tenant_config(self, tenant_id: str) -> tuple[int, TenantConfig]:
        now = time.monotonic()
        cached = self._configs.get(tenant_id)
        if cached is None or now - cached[0] >= self._settings_ttl:
            version, document = self._ticketing.settings_service.get(tenant_id)
            # A version's document never changes: parse it once.
            config = (
                cached[2]
                if cached is not None and cached[1] == version
                else parse_config(document)
            )
            cached = (now, version, config)
            self._configs[tenant_id] = cached
        return cached[1], cached[2]

    def _freed_teams(
        self, ticket: Ticket, data: TicketEventData, config: TenantConfig
    ) -> list[str]:
        """The teams whose queues the event may let an agent serve."""
        if not isinstance(data, _FREEING):
            return []
        agent: str | None
        team: str | None
        if isinstance(data, TicketAssignedData):
            if data.previous_assignee_id == data.assignee_id:
                return []
            agent, team = data.previous_assignee_id, data.previous_team
        elif isinstance(data, TicketUnassignedData):
            agent, team = data.previous_assignee_id, ticket.assigned_team
        else:
            before = self._find(data.ticket_id, version=data.version - 1)
            if before is None or before.status not in ACTIVE_STATUSES:
                return []  # closing a resolved ticket frees nobody
            agent, team = before.assignee_id, before.assigned_team
            if isinstance(data, TicketEscalatedData) and data.assignee_id == agent:
                return []  # the same person keeps it
        if agent is None:
            return []
        # The agent's load counts in every team that lists them.
        teams = [team] + [
            t.name for t in config.teams if any(a.id == agent for a in t.agents)
        ]
        return list(dict.fromkeys(t for t in teams if t))

    def _find(self, ticket_id: UUID, *, version: int | None = None) -> Ticket | None:
        return load_ticket(self._ticketing, ticket_id, version=version)


class SettingsWatcher:
    """Recomputes a tenant's open tickets' deadlines when its settings change.

    Escalation thresholds come from the tenant's rules; the consumer only
    sees ticket events, so a rule added or changed would otherwise reach a
    ticket at its next event. Every ``interval`` this compares each
    tenant's settings version with the one its active tickets' rows were
    computed under and recomputes the rows that are behind, a batch per
    transaction. Any replica may do it: the version guard of
    ``replace_deadlines`` makes a second pass a no-op.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        ticketing: Ticketing,
        clock: Clock,
        *,
        interval: float = 5.0,
        batch_size: int = 200,
    ) -> None:
        self._pool = pool
        self._ticketing = ticketing
        self._clock = clock
        self._interval = interval
        self._batch_size = batch_size

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.catch_up()
            except Exception as error:
                log.warning("settings watch failed", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def catch_up(self) -> int:
        """One pass; returns how many tickets' rows it recomputed."""
        async with self._pool.connection() as conn:
            tenants = await stale_tenants(conn.cursor())
        recomputed = 0
        for tenant_id, oldest in tenants.items():
            version, document = await asyncio.to_thread(
                self._ticketing.settings_service.get, tenant_id
            )
            config = parse_config(document)
            timed = await asyncio.to_thread(self._ticketing.triggers.enabled, tenant_id)
            while version > oldest:
                async with self._pool.connection() as conn, conn.transaction():
                    cur = conn.cursor()
                    behind = await tickets_behind(
                        cur, tenant_id, version, self._batch_size
                    )
                    written = 0
                    for ticket_id in behind:
                        ticket = await asyncio.to_thread(
                            load_ticket, self._ticketing, ticket_id
                        )
                        active = ticket is not None and ticket.status in ACTIVE_STATUSES
                        written += await replace_deadlines(
                            cur,
                            tenant_id=tenant_id,
                            ticket_id=ticket_id,
                            version=0 if ticket is None else ticket.version,
                            deadlines=(
                                ticket_deadlines(ticket, config, timed)
                                if ticket is not None and active
                                else []
                            ),
                            settings_version=version,
                            active=active,
                        )
                    if behind:
                        await cur.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))
                recomputed += written
                if len(behind) < self._batch_size or not written:
                    break  # done, or only rows a newer load owns are left
            if recomputed:
                log.info(
                    "deadlines recomputed for new settings",
                    tenant_id=tenant_id,
                    settings_version=version,
                    tickets=recomputed,
                )
        return recomputed


def load_ticket(
    ticketing: Ticketing, ticket_id: UUID, *, version: int | None = None
) -> Ticket | None:
    """The ticket (at ``version``), or None when the store has no such ticket."""
    try:
        ticket: object = ticketing.app.repository.get(ticket_id, version=version)
    except AggregateNotFoundError:
        return None
    return ticket if isinstance(ticket, Ticket) else None


class TimerLoop:
    """Fires due deadlines: claim, command, delete, commit; then sleep."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        ticketing: Ticketing,
        clock: Clock,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 1.0,
        listen_conninfo: str | None = None,
    ) -> None:
        self._pool = pool
        self._tickets = ticketing.tickets
        self._workflows = ticketing.workflows
        self._triggers = ticketing.triggers
        self._clock = clock
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listen_conninfo = listen_conninfo

    async def run(self, stop: asyncio.Event) -> None:
        """Fire deadlines until ``stop`` is set."""
        wake = asyncio.Event()
        helpers = [asyncio.create_task(wake_on(stop, wake))]
        if self._listen_conninfo is not None:
            helpers.append(
                asyncio.create_task(
                    listen(
                        self._listen_conninfo,
                        WAKE_CHANNEL,
                        wake,
                        stop,
                        retry_seconds=self._poll_interval,
                    )
                )
            )
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    fired, next_due = await self.fire_due()
                except Exception as error:  # the database away, say
                    log.warning("timer pass failed", error=repr(error))
                    fired, next_due = 0, None
                if fired >= self._batch_size:
                    continue  # more may be due right now
                await self._sleep(wake, next_due)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def fire_due(self) -> tuple[int, datetime | None]:
        """One pass; returns how many rows it claimed and the next due time."""
        now = self._clock()
        async with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            claimed = await claim_due(
                cur, now=now, real_now=datetime.now(UTC), limit=self._batch_size
            )
            for group in _commands(claimed):
                try:
                    await asyncio.to_thread(self._command, group[0])
                except Exception as error:
                    # The row stays; it is tried again later (real time).
                    attempts = group[0].attempts + 1
                    delay = COMMAND_RETRY.delay(attempts)
                    log.warning(
                        "timer command failed; will retry",
                        ticket_id=str(group[0].ticket_id),
                        kind=group[0].kind,
                        key=group[0].key,
                        attempts=attempts,
                        retry_in=delay,
                        error=repr(error),
                    )
                    retry_at = datetime.now(UTC) + timedelta(seconds=delay)
                    for deadline in group:
                        await postpone(cur, deadline, retry_at)
                    continue
                fired_at = self._clock()
                for deadline in group:
                    await delete_fired(cur, deadline)
                    LATENESS.observe(
                        max((fired_at - deadline.due_at).total_seconds(), 0)
                    )
                    FIRED.labels(deadline.kind).inc()
            next_due = None
            if len(claimed) < self._batch_size:
                next_due = await next_due_at(cur, after=now)
        if claimed:
            log.debug("deadlines fired", count=len(claimed))
        return len(claimed), next_due

    def _command(self, deadline: DueDeadline) -> None:
        try:
            if deadline.kind == "workflow":
                self._workflows.wake(
                    deadline.tenant_id,
                    deadline.ticket_id,
                    causation_id=deadline.causation_id,
                )
            elif deadline.kind == "trigger":
                self._triggers.run_at_time(
                    deadline.tenant_id,
                    deadline.ticket_id,
                    deadline.key,
                    cause=deadline.causation_id,
                )
            elif deadline.kind == "escalation":
                self._tickets.apply_escalation_rule(
                    deadline.tenant_id,
                    deadline.ticket_id,
                    deadline.key,
                    causation_id=deadline.causation_id,
                )
            else:
                self._tickets.check_sla(
                    deadline.tenant_id,
                    deadline.ticket_id,
                    causation_id=deadline.causation_id,
                )
        except (TicketNotFound, DomainError) as error:
            # Retrying cannot change the answer; the ticket's next event
            # computes its deadlines afresh.
            log.error(
                "timer command refused; deadline dropped",
                ticket_id=str(deadline.ticket_id),
                kind=deadline.kind,
                key=deadline.key,
                error=repr(error),
            )

    async def _sleep(self, wake: asyncio.Event, next_due: datetime | None) -> None:
        """Until the next due time, a NOTIFY (or stop), or the poll interval."""
        timeout = self._poll_interval
        if next_due is not None:
            until_due = (next_due - self._clock()).total_seconds()
            timeout = min(timeout, max(until_due, 0.0))
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)


def _commands(claimed: Sequence[DueDeadline]) -> list[list[DueDeadline]]:
    """Claimed rows grouped by the command that serves them, earliest first.

    One ``check_sla`` records every warning and breach of a ticket that is
    due, so a ticket's SLA rows share one command; each escalation rule is
    a command of its own, and so is each time trigger.
    """
    groups: dict[tuple[UUID, str], list[DueDeadline]] = {}
    for deadline in claimed:  # ordered by due time
        command = {
            "escalation": "escalation:" + deadline.key,
            "trigger": "trigger:" + deadline.key,
        }.get(
            deadline.kind, "sla" if deadline.kind.startswith("sla") else deadline.kind
        )
        groups.setdefault((deadline.ticket_id, command), []).append(deadline)
    return list(groups.values())


# ----------------------------------------------------------------------
# Running it


@dataclass(frozen=True)
class TimersConfig:
    """What the timers are given (the entry layer reads it from the settings)."""

    database_url: str
    kafka: KafkaConfig
    # The firing loop's and the ticketing core's clock.
    clock: Clock
    # Builds the write side the commands run on (with this clock).
    ticketing: Callable[[], Ticketing]
    poll_interval: float = 1.0


async def run_timers(config: TimersConfig, stop: asyncio.Event) -> None:
    """Keep deadlines and fire them until ``stop`` is set."""
    clock = config.clock
    ticketing = await asyncio.to_thread(config.ticketing)
    # The consumers' transactions (deadlines, triggers), the loop's, the
    # settings watch's, the retention sweep's (its lock), one for rebalances.
    pool = worker_pool(config.database_url, TIMERS_NAME, max_size=6)
    try:
        await pool.open()
        await ensure_service_topics("timers", config.kafka, stop)
        consumer = ticket_events_consumer(
            config.kafka,
            name=TIMERS_NAME,
            pool=pool,
            handler=DeadlineKeeper(ticketing, clock, wake_within=config.poll_interval),
            # Its effects are rows of its transaction; a queue drained twice
            # hands out only tickets still waiting.
            batch_size=TRANSACTION_BATCH,
        )
        # Event triggers: their own group, so a slow trigger holds up no
        # deadline; their effects are commands, one event at a time.
        triggers = ticket_events_consumer(
            config.kafka,
            name=TRIGGERS_NAME,
            pool=pool,
            handler=TriggerRunner(ticketing, triggers=TenantTriggers(ticketing)),
        )
        loop = TimerLoop(
            pool,
            ticketing,
            clock,
            poll_interval=config.poll_interval,
            listen_conninfo=config.database_url,
        )
        watcher = SettingsWatcher(
            pool, ticketing, clock, interval=5 * config.poll_interval
        )
        retention = RetentionSweep(
            pool, ticketing, clock, interval=5 * config.poll_interval
        )
        log.info("timers started", bootstrap_servers=config.kafka.bootstrap_servers)
        async with asyncio.TaskGroup() as tasks:
            for name, part in (
                ("consumer", consumer.run),
                ("trigger consumer", triggers.run),
                ("firing loop", loop.run),
                ("settings watch", watcher.run),
                ("retention sweep", retention.run),
            ):
                tasks.create_task(restarting("timers", name, part, stop))
    finally:
        await pool.close()
        await asyncio.to_thread(ticketing.close)
        log.info("timers stopped")
