"""The event store's recorder, writing concurrent saves as one transaction.

A drop-in for the library's ``PostgresApplicationRecorder`` (selected by
``APPLICATION_RECORDER_TOPIC``): the same table, the same lock, the same
NOTIFY, the same errors, so tailing readers and the library's own code see
no difference. What changes is that the saves waiting in this process
(``store.group_commit``) are inserted under one lock and one commit, with
the workload rows of their tickets (``store.workload``).

A batch first inserts everything at once. Only if that hits the primary
key (someone saved one of these aggregates first) does it roll back and
insert again, checking each save's versions inside the lock: the
conflicting saves fail with ``IntegrityError``, as they would alone, and
the others commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg.sql import SQL, Identifier
from psycopg_pool import PoolTimeout

from dotmac.ticketing.domain.workload import WorkloadRow
from dotmac.ticketing.store import store_metrics
from dotmac.ticketing.store.bulk_jobs import ItemDone, write_done
from dotmac.ticketing.store.deadline import DeadlinePassed, current_deadline, passed
from dotmac.ticketing.store.group_commit import GroupCommit, PendingSave, admitted
from dotmac.ticketing.store.subject_keys import SubjectKey, write_keys
from dotmac.ticketing.store.workload import write_rows

#: A save or read that lost its connection is tried this often, this far
#: apart (the library's own retry), unless its deadline passes first.
SAVE_ATTEMPTS = 10
SAVE_RETRY_WAIT = 0.2

Key = tuple[Any, int]
T = TypeVar("T")
#: What a save writes beside its events, in their transaction.
Alongside = WorkloadRow | SubjectKey | ItemDone
Save = PendingSave[StoredEvent, Alongside]


class BatchingRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._group: GroupCommit[StoredEvent, Alongside] = GroupCommit(
            self._write_batch,
            too_late=lambda: DeadlinePassed(
                "the request's deadline passed before its save was written"
            ),
        )
        id_type = Identifier(self.datastore.originator_id_type)
        self._select_stored = SQL(
            "SELECT originator_id, originator_version FROM {schema}.{table}"
            " WHERE (originator_id, originator_version) IN"
            " (SELECT * FROM unnest(%s::{id_type}[], %s::bigint[]))"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=id_type,
        )
        self._begin_locked = SQL("; ").join(
            [
                SQL("BEGIN"),
                *self.lock_table_statements,
                SQL("NOTIFY {}").format(Identifier(self.channel_name)),
            ]
        )

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        workload: Sequence[WorkloadRow] = (),
        subject_keys: Sequence[SubjectKey] = (),
        job_items: Sequence[ItemDone] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Insert the events and write the tickets' ``workload`` rows
        (``store.workload``), new keys (``store.subject_keys``) and the bulk
        job items they apply (``store.bulk_jobs``) with them, in one
        transaction."""
        if kwargs.get("tracking") is not None or self.datastore.enable_db_functions:
            # Not how this application saves: keep the library's own path
            # (the tickets projection writes the workload rows then); the
            # keys are kept first, since the events need them.
            if subject_keys:
                with self.datastore.transaction(commit=True) as curs:
                    write_keys(curs, subject_keys)
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            if job_items:
                # After the events, so never marked without them; a crash
                # in between leaves the item to be applied again.
                with self.datastore.transaction(commit=True) as curs:
                    write_done(curs, job_items)
            return ids
        if not stored_events:
            return []
        submitted: Sequence[int] = self._submit(
            stored_events, [*workload, *subject_keys, *job_items]
        )
        return submitted

    def _submit(
        self, stored_events: Sequence[StoredEvent], alongside: Sequence[Alongside]
    ) -> Sequence[int]:
        deadline = current_deadline()
        return _retried(
            lambda: self._group.submit(stored_events, alongside, deadline=deadline)
        )

    # The library retries its reads on any connection error, ten times with
    # the pool's whole wait each: with the database down, a request would
    # hang for as long. These retry a lost connection only (module notes).
    def select_events(self, *args: Any, **kwargs: Any) -> Any:
        return _retried(lambda: _undecorated_select_events(self, *args, **kwargs))

    def select_notifications(self, *args: Any, **kwargs: Any) -> Any:
        return _retried(
            lambda: _undecorated_select_notifications(self, *args, **kwargs)
        )

    def max_notification_id(self) -> int | None:
        found: int | None = _retried(lambda: _undecorated_max_notification_id(self))
        return found

    def _write_batch(self, saves: Sequence[Save]) -> None:
        try:
            self._insert(saves, check_versions=False)
        except IntegrityError:
            self._insert(saves, check_versions=True)

    def _insert(self, saves: Sequence[Save], *, check_versions: bool) -> None:
        """One transaction under the table lock; outcomes only once committed."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            # BEGIN, the lock and the NOTIFY in one simple query, then the
            # insert, the workload rows (and any new tickets' keys) and the
            # commit: four round trips (five), and
            # none of pipeline mode's CPU (four times as much per transaction
            # here).
            # On an error the pool rolls back the connection returned in its
            # transaction (or discards a broken one): nothing is left half.
            curs.execute(self._begin_locked)
            accepted = self._admitted(curs, saves) if check_versions else saves
            ids = self._insert_saves(curs, accepted)
            alongside = [row for save in accepted for row in save.alongside]
            write_keys(curs, [k for k in alongside if isinstance(k, SubjectKey)])
            write_rows(curs, [r for r in alongside if isinstance(r, WorkloadRow)])
            write_done(curs, [d for d in alongside if isinstance(d, ItemDone)])
            try:
                curs.execute("COMMIT")
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                # The server went away with the COMMIT sent: it may have
                # committed or not, and neither this process nor a retry can
                # tell yet. Not retried (a second insert would conflict with
                # a first one that landed); the caller says so.
                raise CommitOutcomeUnknown(str(error)) from error
        # Committed: hand out the ids in the order the events were inserted.
        store_metrics.BATCH_SAVES.observe(len(saves))
        store_metrics.SAVES.inc(len(accepted))
        store_metrics.EVENTS.inc(len(ids))
        store_metrics.CONFLICTS.inc(len(saves) - len(accepted))
        offset = 0
        for save in accepted:
            save.succeed(ids[offset : offset + len(save.events)])
            offset += len(save.events)
        for save in saves:
            if save.outcome is None:
                save.fail(
                    IntegrityError(
                        "another writer saved a version of this aggregate first"
                    )
                )

    def _insert_saves(self, curs: Any, saves: Sequence[Save]) -> list[int]:
        events = [e for save in saves for e in save.events]
        if not events:
            return []
        curs.execute(
            self.insert_events_statement, ([self._pg_event(e) for e in events],)
        )
        return [row["notification_id"] for row in curs.fetchall()]

    def _admitted(self, curs: Any, saves: Sequence[Save]) -> list[Save]:
        """The saves whose versions are free, checked inside the lock."""
        stored = self._stored_keys(curs, saves)
        verdicts = admitted([_keys(s) for s in saves], stored)
        return [s for s, ok in zip(saves, verdicts, strict=True) if ok]

    def _stored_keys(self, curs: Any, saves: Sequence[Save]) -> set[Key]:
        keys = [k for save in saves for k in _keys(save)]
        curs.execute(self._select_stored, ([k[0] for k in keys], [k[1] for k in keys]))
        return {
            (row["originator_id"], row["originator_version"]) for row in curs.fetchall()
        }

    def _pg_event(self, event: StoredEvent) -> Any:
        return self.construct_pg_stored_event(
            event.originator_id, event.originator_version, event.topic, event.state
        )


class CommitOutcomeUnknown(OperationalError):
    """The connection was lost during COMMIT: the save may be stored or not."""


class SnapshotRecorder(PostgresAggregateRecorder):
    """The snapshots' recorder, whose reads retry a lost connection only."""

    def select_events(self, *args: Any, **kwargs: Any) -> Any:
        return _retried(lambda: _undecorated_snapshot_select(self, *args, **kwargs))


def _retried(call: Callable[[], T]) -> T:
    """``call()``, again after a lost connection (a retried save joins a
    later batch), but not when no connection could be had within the pool's
    wait (the database is down or overloaded: the caller hears so now), and
    never past the request's deadline."""
    deadline = current_deadline()
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            return call()
        except (DeadlinePassed, CommitOutcomeUnknown):
            raise
        except (InterfaceError, OperationalError) as error:
            unreachable = isinstance(error.__cause__, PoolTimeout)
            if unreachable or attempt == SAVE_ATTEMPTS or passed(deadline):
                raise
            time.sleep(SAVE_RETRY_WAIT)
    raise AssertionError("unreachable")  # the loop returns or raises


def _undecorated(method: Callable[..., Any]) -> Callable[..., Any]:
    """The library's method without its retry decorator."""
    return getattr(method, "__wrapped__", method)


_undecorated_select_events = _undecorated(PostgresApplicationRecorder.select_events)
_undecorated_select_notifications = _undecorated(
    PostgresApplicationRecorder.select_notifications
)
_undecorated_max_notification_id = _undecorated(
    PostgresApplicationRecorder.max_notification_id
)
_undecorated_snapshot_select = _undecorated(PostgresAggregateRecorder.select_events)


def _keys(save: Save) -> list[Key]:
    return [(e.originator_id, e.originator_version) for e in save.events]
