"""The retention sweep: closed tickets' personal data erased when their period ends.

A tenant's ``retention`` setting (``domain.retention``) says how many days
after closing a ticket's personal data is kept. Every ``interval`` one
timers replica looks, in one transaction, for the closed tickets (the read
model's active build) of the tenants whose settings erase anything
(``retention_tenants``, written by each settings replace) that are past
their period and whose key is still active (``privacy_keys``), the most
overdue first, at most ``limit`` of them, and erases each with
``PrivacyService.erase_ticket``: the key destroyed, ``SubjectErased``
recorded, the other tables scrubbed, the request recorded with reason
``retention``.

Replicas: the sweep holds a transaction-level advisory lock, so another
replica's sweep at the same moment skips its turn instead of erasing the
same tickets twice. Idempotent: an erased ticket has no active key, so no
later sweep picks it again; a crash half-way leaves the rest for the next.
"Now" is the timers' clock, never the database's, so that a test (or a
demo on ``TICKETING_CLOCK_FILE``) moves retention with everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from prometheus_client import Counter
from psycopg import AsyncCursor, sql
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.domain.retention import (
    RetentionPolicy,
    cutoffs,
    erasure_due_at,
)
from dotmac.ticketing.projections.read_model import ProjectionNotReady
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.clock import Clock

log = structlog.get_logger(__name__)

ERASED = Counter(
    "ticketing_timers_retention_erasures",
    "Tickets whose personal data the retention sweep erased.",
)
FAILED = Counter(
    "ticketing_timers_retention_failures",
    "Erasures of the retention sweep that failed (tried again next sweep).",
)

#: Tickets erased per sweep at most: each is a few transactions, and the
#: sweep's lock is held meanwhile; a backlog drains over a few sweeps.
SWEEP_LIMIT = 100

#: The advisory lock of a sweep (``pg_try_advisory_xact_lock``): any
#: constant the service uses nowhere else ("retention" in ASCII).
SWEEP_LOCK = 0x726574656E74696F


@dataclass(frozen=True)
class DueTicket:
    """A closed ticket past its retention period, with its key still active."""

    tenant_id: str
    ticket_id: UUID
    category: str
    closed_at: datetime


async def take_sweep_lock(cur: AsyncCursor[Any]) -> bool:
    """The sweep's lock for this transaction; False if a replica holds it."""
    await cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (SWEEP_LOCK,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def tenants_to_sweep(
    cur: AsyncCursor[Any], tickets: sql.Composable, *, defaults_erase: bool
) -> list[str]:
    """The tenants whose settings erase anything.

    With ``defaults_erase``, also the tenants with closed tickets that
    stored no settings of their own (no row past version 0): they run the
    deployment's defaults. Their settings, read next, decide.
    """
    await cur.execute(
        sql.SQL(
            "SELECT tenant_id FROM retention_tenants WHERE erases"
            " UNION SELECT DISTINCT t.tenant_id FROM {} t"
            " WHERE %s AND t.status = 'closed' AND NOT EXISTS ("
            "SELECT 1 FROM retention_tenants r"
            " WHERE r.tenant_id = t.tenant_id AND r.settings_version > 0)"
            " ORDER BY tenant_id"
        ).format(tickets),
        (defaults_erase,),
    )
    return [row[0] for row in await cur.fetchall()]


async def due_tickets(
    cur: AsyncCursor[Any],
    tickets: sql.Composable,
    cutoffs_by_tenant: dict[str, dict[str, datetime]],
    limit: int,
) -> list[DueTicket]:
    """Closed tickets closed at or before their tenant's and category's
    cutoff whose key is active, the most overdue first."""
    rows = [
        (tenant_id, category, cutoff)
        for tenant_id, by_category in cutoffs_by_tenant.items()
        for category, cutoff in by_category.items()
    ]
    if not rows:
        return []
    tenants, categories, times = (list(column) for column in zip(*rows, strict=True))
    await cur.execute(
        sql.SQL(
            "SELECT t.tenant_id, t.ticket_id, t.category, t.closed_at FROM {} t"
            " JOIN unnest(%s::text[], %s::text[], %s::timestamptz[])"
            " AS c(tenant_id, category, cutoff)"
            " ON c.tenant_id = t.tenant_id AND c.category = t.category"
            " WHERE t.status = 'closed' AND t.closed_at <= c.cutoff"
            " AND EXISTS (SELECT 1 FROM privacy_keys k"
            " WHERE k.ticket_id = t.ticket_id AND k.secret IS NOT NULL)"
            # closed_at - cutoff is due time - now: the most overdue first.
            " ORDER BY t.closed_at - c.cutoff, t.ticket_id LIMIT %s"
        ).format(tickets),
        (tenants, categories, times, limit),
    )
    return [
        DueTicket(tenant_id=r[0], ticket_id=r[1], category=r[2], closed_at=r[3])
        for r in await cur.fetchall()
    ]


class RetentionSweep:
    """Erases closed tickets' personal data once their retention period ends."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        ticketing: Ticketing,
        clock: Clock,
        *,
        interval: float = 5.0,
        limit: int = SWEEP_LIMIT,
    ) -> None:
        self._pool = pool
        self._ticketing = ticketing
        self._clock = clock
        self._interval = interval
        self._limit = limit

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                erased = await self.sweep()
            except Exception as error:  # the database away, say
                log.warning("retention sweep failed", error=repr(error))
                erased = None
            if erased is not None and erased >= self._limit:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def sweep(self) -> int | None:
        """One sweep; how many tickets it erased, None if another replica
        was sweeping (or no build of the read model is active yet)."""
        now = self._clock()
        try:
            build = await asyncio.to_thread(self._ticketing.read_model.active)
        except ProjectionNotReady:
            return None
        tickets = sql.Identifier(build.schema, "tickets")
        async with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            if not await take_sweep_lock(cur):
                return None
            tenants = await tenants_to_sweep(
                cur,
                tickets,
                defaults_erase=self._ticketing.settings_service.defaults_erase,
            )
            policies: dict[str, RetentionPolicy] = {}
            for tenant_id in tenants:
                _, config = await asyncio.to_thread(
                    self._ticketing.tickets.tenant_config, tenant_id
                )
                if config.retention.erases:
                    policies[tenant_id] = config.retention
            due = await due_tickets(
                cur,
                tickets,
                {t: cutoffs(policy, now) for t, policy in policies.items()},
                self._limit,
            )
            erased = 0
            for ticket in due:
                erased += await self._erase(ticket, policies[ticket.tenant_id], now)
        return erased

    async def _erase(
        self, ticket: DueTicket, policy: RetentionPolicy, now: datetime
    ) -> int:
        """Erase one ticket's personal data; 1 if it did, 0 if it failed."""
        try:
            receipt = await asyncio.to_thread(
                self._ticketing.privacy.erase_ticket,
                ticket.tenant_id,
                ticket.ticket_id,
                reason="retention",
            )
        except Exception as error:
            # Its key stays active: the next sweep tries it again.
            FAILED.inc()
            log.warning(
                "retention erasure failed; will retry",
                tenant_id=ticket.tenant_id,
                ticket_id=str(ticket.ticket_id),
                error=repr(error),
            )
            return 0
        if receipt is None:
            # A key without a ticket in the store: nothing to erase by
            # ticket; said each sweep until someone looks.
            log.warning(
                "retention found no such ticket to erase",
                tenant_id=ticket.tenant_id,
                ticket_id=str(ticket.ticket_id),
            )
            return 0
        ERASED.inc()
        due_at = erasure_due_at(
            policy, category=ticket.category, closed_at=ticket.closed_at
        )
        log.info(
            "personal data erased at the end of its retention",
            tenant_id=ticket.tenant_id,
            ticket_id=str(ticket.ticket_id),
            request_id=receipt["request_id"],
            due_at=None if due_at is None else due_at.isoformat(),
            late_seconds=None if due_at is None else (now - due_at).total_seconds(),
        )
        return 1
