"""What-if replays as background jobs: ``POST /simulations`` and its progress.

A simulation takes a proposed settings document (validated as ``PUT
/settings`` validates it) and a period, and replays the real events of the
tickets created in that period, followed to the moment it starts, under
the proposal (``domain.simulation``). It writes nothing to tickets: its
one row in ``simulations`` (migration 0010) holds its state, progress
(tickets done of total) and, once done, the result side by side with what
happened, and the tickets whose outcome changes.

It runs on a small thread pool of the API process. Each batch renews the
row's lease; a simulation whose process died (its lease expired) reads as
failed, and is simply asked for again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent
from psycopg import sql
from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.errors import DomainError, InvalidCommand
from dotmac.ticketing.domain.simulation import (
    Automations,
    LoadBook,
    Proposal,
    Tally,
    outcome_of,
    replay_ticket,
)
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, SimulationNotFound
from dotmac.ticketing.service.ticket_automations import (
    AUTO_ASSIGNMENT,
    ESCALATION_RULES,
    SLA_TIMER,
)
from dotmac.ticketing.store.application import TicketApplication, open_keys_of

log = logging.getLogger(__name__)

AUTOMATIONS = Automations(
    sla_timer=SLA_TIMER,
    escalation_rules=ESCALATION_RULES,
    auto_assignment=AUTO_ASSIGNMENT,
)
#: Tickets whose events are read (one query) and replayed per batch.
BATCH_TICKETS = 1000
#: The longest period one simulation may replay.
PERIOD_MAX = timedelta(days=93)
#: A running simulation's lease, renewed by every batch.
LEASE = timedelta(seconds=120)
#: How many changed tickets the result lists (all are counted).
CHANGED_LIST_MAX = 100
#: Simulations one API process runs at once (the rest queue).
WORKERS = 1

_COLUMNS = (
    "simulation_id, state, period_start, period_end, tickets_total,"
    " tickets_done, events_read, result, error, created_at, finished_at,"
    " requested_by, lease_until"
)


@dataclass
class Progress:
    tickets_done: int = 0
    events_read: int = 0


class SimulationService:
    """Starts simulations, runs them in the background, reports them."""

    def __init__(
        self,
        app: TicketApplication,
        read_model: ReadModel,
        clock: Clock,
        *,
        workers: int = WORKERS,
    ) -> None:
        self._app = app
        self._read_model = read_model
        self._clock = clock
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="simulation")
        #: Simulations this process took and has not finished: their leases
        #: are renewed with every batch of any of them (the queued wait).
        self._mine: set[UUID] = set()
        self._mine_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- use cases ------------------------------------------------------------

    def start(
        self,
        ctx: RequestContext,
        document: TenantSettingsDocument,
        *,
        period_start: datetime,
        period_end: datetime,
    ) -> UUID:
        """Queue a simulation of ``document`` over the period; its id."""
        _require_staff_lead(ctx)
        if period_end <= period_start:
            raise InvalidCommand("period_end", "must be after period_start")
        if period_end - period_start > PERIOD_MAX:
            raise InvalidCommand(
                "period_end", f"a period is at most {PERIOD_MAX.days} days"
            )
        settings = document.document()
        simulation_id = uuid4()
        with self._app.transaction() as cur:
            cur.execute(
                "INSERT INTO simulations (simulation_id, tenant_id, requested_by,"
                " state, period_start, period_end, settings, lease_until)"
                " VALUES (%s, %s, %s, 'queued', %s, %s, %s, now() + %s)",
                (
                    simulation_id,
                    ctx.tenant_id,
                    ctx.user_id,
                    period_start,
                    period_end,
                    Jsonb(settings),
                    LEASE,
                ),
            )
        with self._mine_lock:
            self._mine.add(simulation_id)
        self._pool.submit(self._run_guarded, simulation_id, ctx.tenant_id)
        return simulation_id

    def get(self, ctx: RequestContext, simulation_id: UUID) -> dict[str, Any]:
        """The simulation's row (another tenant's: not found)."""
        _require_staff_lead(ctx)
        self.fail_expired()
        with self._app.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM simulations"
                " WHERE simulation_id = %s AND tenant_id = %s",
                (simulation_id, ctx.tenant_id),
            )
            row = cur.fetchone()
        if row is None:
            raise SimulationNotFound(simulation_id)
        return dict(row)

    def fail_expired(self) -> int:
        """Mark simulations whose process died (lease expired) failed."""
        with self._app.transaction() as cur:
            cur.execute(
                "UPDATE simulations SET state = 'failed', finished_at = now(),"
                " error = 'the process running it stopped; ask again'"
                " WHERE state IN ('queued', 'running') AND lease_until < now()"
            )
            return cur.rowcount

    # -- the job ------------------------------------------------------------------

    def _run_guarded(self, simulation_id: UUID, tenant_id: str) -> None:
        try:
            self.run(simulation_id, tenant_id)
        except Exception as error:
            log.exception("simulation %s failed", simulation_id)
            with self._app.transaction() as cur:
                cur.execute(
                    "UPDATE simulations SET state = 'failed', error = %s,"
                    " finished_at = now() WHERE simulation_id = %s",
                    (f"{type(error).__name__}: {error}", simulation_id),
                )
        finally:
            with self._mine_lock:
                self._mine.discard(simulation_id)

    def run(self, simulation_id: UUID, tenant_id: str) -> dict[str, Any]:
        """Replay the period; record progress per batch and the result."""
        with self._app.transaction() as cur:
            cur.execute(
                "UPDATE simulations SET state = 'running', lease_until = now() + %s"
                " WHERE simulation_id = %s AND tenant_id = %s AND state = 'queued'"
                " RETURNING period_start, period_end, settings",
                (LEASE, simulation_id, tenant_id),
            )
            row = cur.fetchone()
        if row is None:
            raise SimulationNotFound(simulation_id)
        proposal = Proposal(
            config=parse(row["settings"]),
            # Replayed clocks explain themselves as the proposal's, not a
            # stored version's.
            settings_version=0,
            automations=AUTOMATIONS,
        )
        until = self._clock()
        ids = self._ticket_ids(tenant_id, row["period_start"], row["period_end"])
        self._progress(simulation_id, total=len(ids), progress=Progress())
        actual, proposed = Tally(), Tally()
        changed: list[dict[str, Any]] = []
        changed_count = 0
        not_replayed = 0
        book = LoadBook()
        progress = Progress()
        started = time.perf_counter()
        for batch, streams in self._read_ahead(_batches(ids, BATCH_TICKETS)):
            for ticket_id in batch:
                recorded = streams.get(ticket_id)
                if not recorded:
                    continue
                progress.events_read += len(recorded)
                before = outcome_of(recorded)
                try:
                    replayed = replay_ticket(recorded, proposal, until=until, book=book)
                except DomainError:
                    # A command the proposal makes that the ticket refuses
                    # (as the timers would log and skip it): counted apart.
                    log.exception("simulation %s: ticket %s", simulation_id, ticket_id)
                    not_replayed += 1
                    continue
                after = outcome_of(replayed.events)
                actual.add(before)
                proposed.add(after)
                if before.signature() != after.signature():
                    changed_count += 1
                    if len(changed) < CHANGED_LIST_MAX:
                        created = recorded[0]
                        assert isinstance(created, Ticket.TicketCreated)
                        changed.append(
                            {
                                "ticket_id": str(ticket_id),
                                "number": created.number,
                                "actual": before.signature(),
                                "proposed": after.signature(),
                            }
                        )
            progress.tickets_done += len(batch)
            self._progress(simulation_id, total=len(ids), progress=progress)
        seconds = time.perf_counter() - started
        result = {
            "until": until.isoformat(),
            "actual": actual.report(),
            "proposed": proposed.report(),
            "changed_tickets": {"count": changed_count, "tickets": changed},
            "events_replayed": progress.events_read,
            "tickets_not_replayed": not_replayed,
            "seconds": round(seconds, 3),
        }
        with self._app.transaction() as cur:
            cur.execute(
                "UPDATE simulations SET state = 'done', result = %s,"
                " finished_at = now() WHERE simulation_id = %s",
                (Jsonb(result), simulation_id),
            )
        return result

    def _read_ahead(
        self, batches: Iterator[Sequence[UUID]]
    ) -> Iterator[tuple[Sequence[UUID], dict[UUID, list[Ticket.Event]]]]:
        """Each batch with its streams, the next one read meanwhile (the
        database works on it while this thread replays)."""
        with ThreadPoolExecutor(1, thread_name_prefix="simulation-read") as reader:
            ahead: tuple[Sequence[UUID], Future[Any]] | None = None
            for batch in batches:
                if ahead is not None:
                    yield ahead[0], ahead[1].result()
                ahead = (batch, reader.submit(self.streams, batch))
            if ahead is not None:
                yield ahead[0], ahead[1].result()

    def _ticket_ids(self, tenant_id: str, start: datetime, end: datetime) -> list[UUID]:
        rows = self._read_model.run(
            "SELECT ticket_id FROM tickets WHERE tenant_id = %s"
            " AND created_at >= %s AND created_at < %s ORDER BY created_at, number",
            (tenant_id, start, end),
        )
        return [row["ticket_id"] for row in rows]

    def streams(self, ticket_ids: Sequence[UUID]) -> dict[UUID, list[Ticket.Event]]:
        """The stored events of the tickets, decoded, each stream in order."""
        table = self._app.recorder.events_table_name  # type: ignore[attr-defined]
        query = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}"
            " WHERE originator_id = ANY(%s)"
            " ORDER BY originator_id, originator_version"
        ).format(sql.Identifier(table))
        with self._app.datastore.get_connection() as conn:
            rows = conn.execute(query, (list(ticket_ids),)).fetchall()
        stored = [
            StoredEvent(
                originator_id=r["originator_id"],
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]
        open_keys_of(self._app, stored)
        streams: dict[UUID, list[Ticket.Event]] = {}
        mapper = self._app.mapper
        for item in stored:
            event = mapper.to_domain_event(item)
            assert isinstance(event, Ticket.Event)
            streams.setdefault(event.originator_id, []).append(event)
        return streams

    def _progress(self, simulation_id: UUID, *, total: int, progress: Progress) -> None:
        with self._mine_lock:
            mine = list(self._mine | {simulation_id})
        with self._app.transaction() as cur:
            cur.execute(
                "UPDATE simulations SET lease_until = now() + %s"
                " WHERE simulation_id = ANY(%s) AND state IN ('queued', 'running')",
                (LEASE, mine),
            )
            cur.execute(
                "UPDATE simulations SET tickets_total = %s, tickets_done = %s,"
                " events_read = %s WHERE simulation_id = %s",
                (total, progress.tickets_done, progress.events_read, simulation_id),
            )


def _require_staff_lead(ctx: RequestContext) -> None:
    if not ctx.has_role("admin", "supervisor"):
        raise PermissionDenied("simulations are for admins and supervisors")


def _batches(items: Sequence[UUID], size: int) -> Iterator[Sequence[UUID]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
