"""Bulk actions: one action applied to up to 10,000 tickets by a job.

``BulkJobs.start`` resolves the selection (ids, or a list filter read from
the read model) to ticket ids, stores them with the job and answers at
once; a ``BulkRunner`` in every API process claims unfinished jobs by a
lease and applies the action ticket by ticket through the ticket use cases
(``TicketService``: the caller's rights, the state machine, retries on
conflict). docs/bulk-actions.md says why the runner lives in the API.

Exactly once: an item whose command saves events is marked done in the
events' transaction (``store.bulk_jobs``), so a job resumed after a crash
skips precisely the items already applied. Refusals and commands that
changed nothing are marked afterwards; done again after a crash, they
change nothing either.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError

from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.limits import BULK_TICKETS_MAX
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.projections.ticket_queries import matching_ids
from dotmac.ticketing.schemas.bulk import COMMANDS, AddTags, BulkAction, BulkJobCreate
from dotmac.ticketing.schemas.tickets import (
    CommentCreate,
    TicketAssign,
    TicketEscalate,
    TicketReopen,
    TicketResolve,
    TicketStatusChange,
    TicketUpdate,
)
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    JobNotFound,
    MacroNotFound,
    PermissionDenied,
    TicketNotFound,
)
from dotmac.ticketing.service.macros import MacroService
from dotmac.ticketing.service.ticket_lists import ticket_filter
from dotmac.ticketing.service.tickets import CommandResult, TicketService
from dotmac.ticketing.store import bulk_jobs as rows
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.bulk_jobs import ItemOutcome, JobRow
from dotmac.ticketing.store.deadline import DeadlinePassed

log = structlog.get_logger(__name__)

# Keys are scoped to a tenant, like ticket creates' (service.tickets).
BULK_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dotmac-ticketing:bulk-job")

# The words a list filter reads as "nobody" and as "the caller" (Zendesk's
# ``assignee:none`` and ``assignee:me``).
NOBODY, CALLER = "none", "me"

#: Refusals by the ticket or the rules: the item's outcome, with the problem
#: type the single-ticket route would answer (service/api/problems.py).
REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (TicketNotFound, "not-found"),
    (CommandRefused, "command-refused"),
    (InvalidCommand, "invalid-command"),
    (PermissionDenied, "forbidden"),
    (ConcurrencyConflict, "conflict"),
)
#: The database away: the item stays pending and the job is tried again.
UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    DeadlinePassed,
)


class ActionExecutor(Protocol):
    """Applies one kind of action to one ticket, as ``ctx``.

    ``key`` is the item's own (job and position): an executor whose command
    can be keyed (a comment's id) passes it on.
    """

    def handles(self, action: BulkAction) -> bool: ...

    def check(self, ctx: RequestContext, action: BulkAction) -> None:
        """Refuse (422) an action that could apply to no ticket at all, before
        the job is stored."""

    def apply(
        self, ctx: RequestContext, ticket_id: UUID, action: BulkAction, *, key: str
    ) -> CommandResult: ...


class CommandExecutor:
    """The single-ticket commands, each through its ``TicketService`` use case."""

    KINDS = frozenset(COMMANDS)

    def __init__(self, tickets: TicketService) -> None:
        self._tickets = tickets

    def handles(self, action: BulkAction) -> bool:
        return action.kind in self.KINDS

    def check(self, ctx: RequestContext, action: BulkAction) -> None:
        """Nothing beyond the schema: each ticket's state decides the rest."""

    def apply(
        self, ctx: RequestContext, ticket_id: UUID, action: BulkAction, *, key: str
    ) -> CommandResult:
        t, args = self._tickets, action.arguments
        match args:
            case TicketAssign():
                return t.assign(
                    ctx, ticket_id, assignee_id=args.assignee_id, team=args.team
                )
            case TicketStatusChange():
                return t.change_status(ctx, ticket_id, args.status, reason=args.reason)
            case TicketUpdate():
                return t.update_ticket(
                    ctx, ticket_id, **args.model_dump(exclude_unset=True)
                )
            case AddTags():
                return t.add_tags(ctx, ticket_id, tags=args.tags)
            case CommentCreate():
                return t.add_comment(
                    ctx,
                    ticket_id,
                    body=args.body,
                    internal=args.internal,
                    solution=args.solution,
                    comment_id=uuid5(BULK_NAMESPACE, key).hex,
                )
            case TicketEscalate():
                return t.escalate(ctx, ticket_id, reason=args.reason, team=args.team)
            case TicketResolve():
                return t.resolve(
                    ctx,
                    ticket_id,
                    resolution=args.resolution,
                    resolution_code=args.resolution_code,
                )
            case TicketReopen():
                return t.reopen(ctx, ticket_id, reason=args.reason)
        if action.kind == "unassign":
            return t.unassign(ctx, ticket_id)
        if action.kind == "close":
            return t.close(ctx, ticket_id)
        raise AssertionError(f"no command for {action.kind}")  # the schema's kinds


class MacroExecutor:
    """A tenant's macro (``service.macros``): all its actions in one save
    per ticket, its events caused by the macro."""

    def __init__(self, macros: MacroService) -> None:
        self._macros = macros

    def handles(self, action: BulkAction) -> bool:
        return action.kind == "macro"

    def check(self, ctx: RequestContext, action: BulkAction) -> None:
        """A job naming a macro the tenant does not have is refused at once."""
        if action.macro is not None:
            try:
                self._macros.macro(ctx.tenant_id, action.macro)
            except MacroNotFound:
                raise InvalidCommand(
                    "action.macro", f"the tenant has no macro {action.macro}"
                ) from None

    def apply(
        self, ctx: RequestContext, ticket_id: UUID, action: BulkAction, *, key: str
    ) -> CommandResult:
        assert action.macro is not None  # handles() said so
        return self._macros.apply(ctx, ticket_id, action.macro)


@dataclass(frozen=True)
class BulkJobView:
    """A job, its counts and one page of its items."""

    job: JobRow
    counts: dict[str, int]
    items: list[dict[str, Any]]
    next_after: int | None


class BulkJobs:
    """Starting jobs and reading them; ``BulkRunner`` applies them."""

    def __init__(
        self,
        app: TicketApplication,
        read_model: ReadModel,
        executors: Sequence[ActionExecutor],
    ) -> None:
        self._app = app
        self._read_model = read_model
        self.executors = tuple(executors)
        self._listeners: list[Callable[[], None]] = []

    def on_start(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a job is started here (a runner wakes)."""
        self._listeners.append(listener)

    def start(
        self,
        ctx: RequestContext,
        request: BulkJobCreate,
        *,
        idempotency_key: str | None = None,
    ) -> tuple[JobRow, bool]:
        """Store a job (its ticket ids resolved now); ``(job, replayed)``.

        The same ``idempotency_key`` with the same request answers the job
        it started; with another request, ``IdempotencyKeyReused``.
        """
        _require_staff(ctx)
        job_id = (
            uuid5(BULK_NAMESPACE, f"{ctx.tenant_id}\x00{idempotency_key}")
            if idempotency_key
            else uuid4()
        )
        action = request.action.model_dump(
            mode="json", exclude_unset=True, exclude_none=True
        )
        selection = (
            {"ids": len(request.ids)}
            if request.ids is not None
            else {
                "filter": request.filter.model_dump(
                    mode="json", exclude_unset=True, exclude_none=True
                )
            }
            if request.filter is not None
            else {}
        )
        if idempotency_key:
            with self._app.transaction() as cur:
                existing = rows.find_job(cur, job_id)
            if existing is not None:
                return self._replay(existing, action, selection), True
        self.executor_for(request.action).check(ctx, request.action)
        ticket_ids = self._selected(ctx, request)
        with self._app.transaction() as cur:
            created = rows.insert_job(
                cur,
                job_id=job_id,
                tenant_id=ctx.tenant_id,
                created_by=ctx.user_id,
                roles=sorted(ctx.roles),
                action=action,
                selection=selection,
                ticket_ids=ticket_ids,
                idempotency_key=idempotency_key,
            )
            job = rows.find_job(cur, job_id)
        assert job is not None
        if not created:  # the same key's other request won the race
            return self._replay(job, action, selection), True
        log.info("bulk job started", job_id=str(job_id), total=job.total)
        for listener in self._listeners:
            listener()
        return job, False

    def _selected(self, ctx: RequestContext, request: BulkJobCreate) -> list[UUID]:
        if request.ids is not None:
            return list(dict.fromkeys(request.ids))  # once each, in order
        assert request.filter is not None
        found = matching_ids(
            self._read_model,
            ticket_filter(request.filter, ctx),
            limit=BULK_TICKETS_MAX + 1,
        )
        if len(found) > BULK_TICKETS_MAX:
            raise InvalidCommand(
                "filter",
                f"matches more than {BULK_TICKETS_MAX} tickets: narrow it,"
                " or start one job per part",
            )
        return found

    @staticmethod
    def _replay(
        job: JobRow, action: dict[str, Any], selection: dict[str, Any]
    ) -> JobRow:
        if job.action != action or job.selection != selection:
            raise IdempotencyKeyReused(
                "Idempotency-Key was already used for a different bulk job"
            )
        return job

    def get(
        self,
        ctx: RequestContext,
        job_id: UUID,
        *,
        outcome: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> BulkJobView:
        """The job with its counts and the items after position ``after``."""
        _require_staff(ctx)
        with self._app.transaction() as cur:
            job = rows.find_job(cur, job_id)
            if job is None or job.tenant_id != ctx.tenant_id:
                raise JobNotFound(job_id)
            counts = rows.outcome_counts(cur, job_id)
            items = rows.item_page(
                cur, job_id, outcome=outcome, after=after, limit=limit + 1
            )
        more = len(items) > limit
        items = items[:limit]
        return BulkJobView(
            job, counts, items, items[-1]["position"] if more and items else None
        )

    def executor_for(self, action: BulkAction) -> ActionExecutor:
        for executor in self.executors:
            if executor.handles(action):
                return executor
        raise AssertionError(f"no executor for {action.kind}")

    @property
    def app(self) -> TicketApplication:
        return self._app


def _require_staff(ctx: RequestContext) -> None:
    if not ctx.is_staff:
        raise PermissionDenied("bulk actions are for staff")


class _Unavailable(Exception):
    """The database went away while an item was applied: it stays pending."""


class BulkRunner:
    """Works unfinished jobs, one at a time, ``concurrency`` tickets at once.

    A job is claimed with a lease (``lease_seconds``), renewed after every
    chunk of items; a runner that lost its lease stops before its next
    chunk. A process that dies leaves its lease to run out, and then any
    runner (the restarted process's too) resumes the job; one that stops
    cleanly (``stop``, on SIGTERM) gives the lease back at once.
    """

    def __init__(
        self,
        jobs: BulkJobs,
        *,
        concurrency: int = 4,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        chunk: int | None = None,
    ) -> None:
        self._jobs = jobs
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._poll = poll_seconds
        # Small enough that a chunk ends well within the lease.
        self._chunk = chunk or concurrency * 16
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bulk")

    def start(self) -> None:
        self._jobs.on_start(self.wake)
        self._thread = threading.Thread(target=self._loop, name="bulk-runner")
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the chunk in flight, give the job back, end the thread."""
        self._stopping.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = self.run_once()
            except UNAVAILABLE as error:
                log.warning("bulk runner: database unavailable", error=str(error))
                worked = False
            if not worked:
                self._woken.wait(self._poll)
                self._woken.clear()

    def run_once(self) -> bool:
        """Claim one job and work it until finished, stopped or lost;
        whether there was one."""
        app = self._jobs.app
        with app.transaction() as cur:
            job = rows.claim_job(cur, self.owner, self._lease)
        if job is None:
            return False
        log.info("bulk job claimed", job_id=str(job.job_id), owner=self.owner)
        try:
            self._work(job)
        finally:
            with app.transaction() as cur:
                rows.release_lease(cur, job.job_id, self.owner)
        return True

    def _work(self, job: JobRow) -> None:
        app = self._jobs.app
        ctx = RequestContext(
            tenant_id=job.tenant_id,
            user_id=job.created_by,
            roles=frozenset(job.roles),
            # The ticket's history names the job its changes came from.
            correlation_id=str(job.job_id),
        )
        action = BulkAction.model_validate(job.action)
        executor = self._jobs.executor_for(action)
        while not self._stopping.is_set():
            with app.transaction() as cur:
                items = rows.pending_items(cur, job.job_id, self._chunk)
                if not items:
                    rows.finish_job(cur, job.job_id, self.owner)
                    log.info("bulk job finished", job_id=str(job.job_id))
                    return

            def one(item: tuple[int, UUID]) -> ItemOutcome | _Unavailable | None:
                return self._apply(job, ctx, executor, action, *item)

            results = list(self._pool.map(one, items))
            with app.transaction() as cur:
                rows.write_outcomes(
                    cur, job.job_id, [r for r in results if isinstance(r, ItemOutcome)]
                )
                held = rows.renew_lease(cur, job.job_id, self.owner, self._lease)
            if any(isinstance(r, _Unavailable) for r in results):
                # Left pending; tried again once the database is back.
                time.sleep(self._poll)
                return
            if not held:
                log.warning("bulk job lease lost", job_id=str(job.job_id))
                return

    def _apply(
        self,
        job: JobRow,
        ctx: RequestContext,
        executor: ActionExecutor,
        action: BulkAction,
        position: int,
        ticket_id: UUID,
    ) -> ItemOutcome | _Unavailable | None:
        """Apply one item: None when its save marked it done, else its outcome."""
        with rows.applying(job.job_id, position) as attempt:
            try:
                result = executor.apply(
                    ctx, ticket_id, action, key=f"{job.job_id}:{position}"
                )
            except UNAVAILABLE as error:
                # Even a commit whose outcome is unknown is safe: the item
                # was marked in that same commit, or not at all.
                return _Unavailable(str(error))
            except Exception as error:
                problem = next(
                    (slug for kind, slug in REFUSALS if isinstance(error, kind)),
                    None,
                )
                if problem is None:
                    log.exception("bulk item failed", job_id=str(job.job_id))
                    problem = "internal-error"
                return ItemOutcome(
                    position,
                    rows.REFUSED,
                    attempt.conflicts,
                    problem=problem,
                    reason=str(error)[:2000],
                )
        if result.position is not None:
            return None  # marked done with its events
        done = rows.CONFLICT_RETRIED if attempt.conflicts else rows.DONE
        return ItemOutcome(
            position, done, attempt.conflicts, version=result.ticket.version
        )
