"""Bulk jobs and their items in PostgreSQL (migration 0008.bulk-jobs).

A job row holds the action, who asked and the runner's lease; one item row
per ticket holds its outcome. An item whose command saved events is marked
done by the save itself: ``TicketApplication.save_aggregates`` hands the
recorder an ``ItemDone`` for the item being applied (``applying``), and the
recorder writes it in the events' transaction (``store.batch_recorder``).
So a crash leaves an item applied and marked, or neither, and a resumed job
skips exactly those already applied. Items that saved nothing (refused, or
a command that changed nothing) are marked afterwards: doing those again
after a crash applies nothing either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor

RUNNING, FINISHED = "running", "finished"
DONE, CONFLICT_RETRIED, REFUSED = "done", "conflict_retried", "refused"


@dataclass
class ItemAttempt:
    """The item a thread is applying now, and the conflicts it met so far."""

    job_id: UUID
    position: int
    conflicts: int = 0

    def done(self, version: int) -> ItemDone:
        outcome = CONFLICT_RETRIED if self.conflicts else DONE
        return ItemDone(self.job_id, self.position, outcome, self.conflicts, version)


@dataclass(frozen=True)
class ItemDone:
    """An item applied: written with the ticket's events, in their transaction."""

    job_id: UUID
    position: int
    outcome: str
    conflicts: int
    version: int


@dataclass(frozen=True)
class ItemOutcome:
    """An item that saved nothing: refused (``problem``, ``reason``), or
    done without a change."""

    position: int
    outcome: str
    conflicts: int
    problem: str | None = None
    reason: str | None = None
    version: int | None = None


_applying: ContextVar[ItemAttempt | None] = ContextVar("bulk_item", default=None)


@contextmanager
def applying(job_id: UUID, position: int) -> Iterator[ItemAttempt]:
    """Saves made in this context mark the item done in their transaction."""
    attempt = ItemAttempt(job_id, position)
    token = _applying.set(attempt)
    try:
        yield attempt
    finally:
        _applying.reset(token)


def current_attempt() -> ItemAttempt | None:
    return _applying.get()


@dataclass(frozen=True)
class JobRow:
    job_id: UUID
    tenant_id: str
    created_by: str
    roles: tuple[str, ...]
    action: dict[str, Any]
    selection: dict[str, Any]
    state: str
    total: int
    created_at: datetime
    finished_at: datetime | None
    idempotency_key: str | None


_JOB_COLUMNS = (
    "job_id, tenant_id, created_by, roles, action, selection, state, total,"
    " created_at, finished_at, idempotency_key"
)


def _job(row: dict[str, Any]) -> JobRow:
    return JobRow(
        job_id=row["job_id"],
        tenant_id=row["tenant_id"],
        created_by=row["created_by"],
        roles=tuple(row["roles"]),
        action=row["action"],
        selection=row["selection"],
        state=row["state"],
        total=row["total"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        idempotency_key=row["idempotency_key"],
    )


def insert_job(
    cur: Cursor[Any],
    *,
    job_id: UUID,
    tenant_id: str,
    created_by: str,
    roles: Sequence[str],
    action: dict[str, Any],
    selection: dict[str, Any],
    ticket_ids: Sequence[UUID],
    idempotency_key: str | None,
) -> bool:
    """Store the job and its items; False when a job of that id exists."""
    cur.execute(
        "INSERT INTO bulk_jobs (job_id, tenant_id, created_by, roles,"
        " idempotency_key, action, selection, state, total)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (job_id) DO NOTHING",
        (
            job_id,
            tenant_id,
            created_by,
            list(roles),
            idempotency_key,
            json.dumps(action),
            json.dumps(selection),
            RUNNING,
            len(ticket_ids),
        ),
    )
    if cur.rowcount == 0:
        return False
    cur.execute(
        "INSERT INTO bulk_job_items (job_id, position, ticket_id)"
        " SELECT %s, n, id FROM unnest(%s::uuid[]) WITH ORDINALITY AS t(id, n)",
        (job_id, list(ticket_ids)),
    )
    return True


def find_job(cur: Cursor[Any], job_id: UUID) -> JobRow | None:
    cur.execute(f"SELECT {_JOB_COLUMNS} FROM bulk_jobs WHERE job_id = %s", (job_id,))
    row = cur.fetchone()
    return None if row is None else _job(row)


def claim_job(cur: Cursor[Any], owner: str, lease_seconds: float) -> JobRow | None:
    """The oldest unfinished job nobody holds (or whose holder's lease
    ran out), now leased to ``owner``."""
    cur.execute(
        f"UPDATE bulk_jobs SET lease_owner = %s,"
        f" lease_until = now() + make_interval(secs => %s)"
        f" WHERE job_id = (SELECT job_id FROM bulk_jobs WHERE state = %s"
        f" AND (lease_until IS NULL OR lease_until < now())"
        f" ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {_JOB_COLUMNS}",
        (owner, lease_seconds, RUNNING),
    )
    row = cur.fetchone()
    return None if row is None else _job(row)


def renew_lease(
    cur: Cursor[Any], job_id: UUID, owner: str, lease_seconds: float
) -> bool:
    """Extend ``owner``'s lease; False when it holds the job no more."""
    cur.execute(
        "UPDATE bulk_jobs SET lease_until = now() + make_interval(secs => %s)"
        " WHERE job_id = %s AND lease_owner = %s AND state = %s",
        (lease_seconds, job_id, owner, RUNNING),
    )
    return cur.rowcount == 1


def release_lease(cur: Cursor[Any], job_id: UUID, owner: str) -> None:
    """Give the job back at once (a runner stopping), for another to resume."""
    cur.execute(
        "UPDATE bulk_jobs SET lease_owner = NULL, lease_until = NULL"
        " WHERE job_id = %s AND lease_owner = %s",
        (job_id, owner),
    )


def pending_items(cur: Cursor[Any], job_id: UUID, limit: int) -> list[tuple[int, UUID]]:
    """``(position, ticket id)`` of items not applied yet, in order."""
    cur.execute(
        "SELECT position, ticket_id FROM bulk_job_items"
        " WHERE job_id = %s AND outcome IS NULL ORDER BY position LIMIT %s",
        (job_id, limit),
    )
    return [(row["position"], row["ticket_id"]) for row in cur.fetchall()]


def write_done(cur: Cursor[Any], rows: Sequence[ItemDone]) -> None:
    """Mark applied items, in the caller's (the events') transaction."""
    if not rows:
        return
    cur.execute(
        "UPDATE bulk_job_items AS i SET outcome = d.outcome, changed = true,"
        " conflicts = d.conflicts, version = d.version, finished_at = now()"
        " FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::int[], %s::int[])"
        " AS d(job_id, position, outcome, conflicts, version)"
        " WHERE i.job_id = d.job_id AND i.position = d.position",
        (
            [r.job_id for r in rows],
            [r.position for r in rows],
            [r.outcome for r in rows],
            [r.conflicts for r in rows],
            [r.version for r in rows],
        ),
        prepare=True,
    )


def write_outcomes(
    cur: Cursor[Any], job_id: UUID, outcomes: Sequence[ItemOutcome]
) -> None:
    """Mark items that saved nothing (never one already marked done)."""
    if not outcomes:
        return
    cur.execute(
        "UPDATE bulk_job_items AS i SET outcome = o.outcome, changed = false,"
        " conflicts = o.conflicts, problem = o.problem, reason = o.reason,"
        " version = o.version, finished_at = now()"
        " FROM unnest(%s::int[], %s::text[], %s::int[], %s::text[], %s::text[],"
        " %s::int[]) AS o(position, outcome, conflicts, problem, reason, version)"
        " WHERE i.job_id = %s AND i.position = o.position AND i.outcome IS NULL",
        (
            [o.position for o in outcomes],
            [o.outcome for o in outcomes],
            [o.conflicts for o in outcomes],
            [o.problem for o in outcomes],
            [o.reason for o in outcomes],
            [o.version for o in outcomes],
            job_id,
        ),
    )


def finish_job(cur: Cursor[Any], job_id: UUID, owner: str) -> bool:
    """The job is finished once none of its items is pending."""
    cur.execute(
        "UPDATE bulk_jobs SET state = %s, finished_at = now(),"
        " lease_owner = NULL, lease_until = NULL"
        " WHERE job_id = %s AND lease_owner = %s AND NOT EXISTS ("
        " SELECT 1 FROM bulk_job_items WHERE job_id = %s AND outcome IS NULL)",
        (FINISHED, job_id, owner, job_id),
    )
    return cur.rowcount == 1


def outcome_counts(cur: Cursor[Any], job_id: UUID) -> dict[str, int]:
    """Items per outcome (``pending``: not applied yet), and conflicts met."""
    cur.execute(
        "SELECT coalesce(outcome, 'pending') AS outcome, count(*) AS items,"
        " coalesce(sum(conflicts), 0) AS conflicts, count(*) FILTER"
        " (WHERE changed) AS changed FROM bulk_job_items WHERE job_id = %s"
        " GROUP BY 1",
        (job_id,),
    )
    counts = {"pending": 0, DONE: 0, CONFLICT_RETRIED: 0, REFUSED: 0}
    counts["conflicts"] = counts["changed"] = 0
    for row in cur.fetchall():
        counts[row["outcome"]] = int(row["items"])
        counts["conflicts"] += int(row["conflicts"])
        counts["changed"] += int(row["changed"])
    return counts


def item_page(
    cur: Cursor[Any],
    job_id: UUID,
    *,
    outcome: str | None,
    after: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Items after ``position`` ``after``, in order (``outcome``: only those;
    ``pending``: those not applied yet)."""
    where = ""
    params: list[Any] = [job_id, after]
    if outcome == "pending":
        where = " AND outcome IS NULL"
    elif outcome is not None:
        where = " AND outcome = %s"
        params.append(outcome)
    cur.execute(
        "SELECT position, ticket_id, outcome, changed, conflicts, problem, reason,"
        " version, finished_at FROM bulk_job_items"
        f" WHERE job_id = %s AND position > %s{where} ORDER BY position LIMIT %s",
        (*params, limit),
    )
    return list(cur.fetchall())
