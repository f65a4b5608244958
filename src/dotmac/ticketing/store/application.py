"""The event-sourced application: where ticket events are stored.

Every save goes through :meth:`TicketApplication.save_aggregates`; on
PostgreSQL the recorder behind it commits the saves that arrive together
as one transaction (``store.batch_recorder``, docs/architecture.md).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.utils import Environment, get_topic, register_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from dotmac.ticketing.domain.tenant_config_aggregate import TenantSettings
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workload import workload_of
from dotmac.ticketing.store.batch_recorder import BatchingRecorder, SnapshotRecorder
from dotmac.ticketing.store.database import check_when_suspect

#: Every aggregate stored here. Importing them registers their event topics,
#: so any process reading the log (projections, relay) can decode them all.
AGGREGATES: tuple[type[Aggregate], ...] = (Ticket, TenantSettings)

# The library registers the explicit topics of an aggregate's events, not of
# its snapshot class (until a process first stores a snapshot): without this
# a process that reads a stored snapshot before writing one cannot decode it.
register_topic(Ticket.Snapshot.TOPIC, Ticket.Snapshot)


class TicketApplication(Application[UUID]):
    """Stores ticket (and tenant settings) streams in ``ticketing_events``."""

    name = "ticketing"

    def __init__(
        self, env: dict[str, str] | None = None, *, snapshot_interval: int = 50
    ) -> None:
        # Instance attribute: the interval comes from settings, not the class.
        # Settings events carry the whole document, and every create reads
        # the settings: a snapshot keeps that read to a row or two.
        self.snapshotting_intervals = {  # type: ignore[misc]  # per instance, on purpose
            Ticket: snapshot_interval,
            TenantSettings: 10,
        }
        # The library creates no tables unless told: the migrations do
        # (``ticketing db migrate``, store/schema_migrations.py).
        env = {"CREATE_TABLE": "n", **(env or {}), "IS_SNAPSHOTTING_ENABLED": "y"}
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            env.setdefault("APPLICATION_RECORDER_TOPIC", get_topic(BatchingRecorder))
        super().__init__(env)
        if isinstance(self.recorder, PostgresApplicationRecorder):
            check_when_suspect(self.datastore.pool)

    def construct_snapshot_store(self) -> EventStore[UUID]:
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        if isinstance(recorder, PostgresAggregateRecorder):
            # Its reads must fail fast with the database down, like the
            # events' (store.batch_recorder).
            recorder = SnapshotRecorder(
                recorder.datastore, events_table_name=recorder.events_table_name
            )
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # The library merges os.environ by default; configuration is passed
        # in here, so that one settings object decides everything.
        return Environment(name, {**type(self).env, **(env or {})})

    def save_aggregates(self, *aggregates: Aggregate) -> int | None:
        """Save pending events atomically; return the last event's position.

        Concurrent calls of one process are committed together, each under
        the same rule as alone: all of a call's events or none. Raises
        ``eventsourcing.persistence.IntegrityError`` when another writer
        saved one of these aggregates first.

        Each ticket's workload row (whose load it is, ``store.workload``) is
        written in the same transaction as its events.
        """
        workload = [workload_of(a) for a in aggregates if isinstance(a, Ticket)]
        recordings = self.save(*aggregates, workload=workload)
        if not recordings:
            return None
        return max(r.notification.id for r in recordings)

    def stored_version(self, aggregate_id: UUID) -> int:
        """The aggregate's last stored version (0: none), without loading it."""
        query = SQL(
            "SELECT max(originator_version) AS version FROM {} WHERE originator_id = %s"
        ).format(Identifier(self.recorder.events_table_name))  # type: ignore[attr-defined]
        with self.datastore.get_connection() as conn:
            row = conn.execute(query, (aggregate_id,), prepare=True).fetchone()
        return int(row["version"] or 0) if row is not None else 0

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    @property
    def datastore(self) -> PostgresDatastore:
        datastore: PostgresDatastore = self.recorder.datastore  # type: ignore[attr-defined]
        return datastore

    def transaction(self) -> AbstractContextManager[Cursor[DictRow]]:
        """A committed transaction on the application's own pool."""
        return self.datastore.transaction(commit=True)
