"""The event-sourced application: where ticket events are stored.

Every save goes through :meth:`TicketApplication.save_aggregates`; on
PostgreSQL the recorder behind it commits the saves that arrive together
as one transaction (``store.batch_recorder``, docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore, IntegrityError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.utils import Environment, get_topic, register_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from dotmac.ticketing.domain.privacy_request import PrivacyRequest
from dotmac.ticketing.domain.tenant_config_aggregate import TenantSettings
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workload import workload_of
from dotmac.ticketing.store.batch_recorder import BatchingRecorder, SnapshotRecorder
from dotmac.ticketing.store.bulk_jobs import current_attempt
from dotmac.ticketing.store.database import check_when_suspect
from dotmac.ticketing.store.sealing import SealingMapper, sealing_with
from dotmac.ticketing.store.subject_keys import (
    CachedKeys,
    KeyStore,
    PostgresKeys,
    SubjectKey,
)

#: Every aggregate stored here. Importing them registers their event topics,
#: so any process reading the log (projections, relay) can decode them all.
AGGREGATES: tuple[type[Aggregate], ...] = (Ticket, TenantSettings, PrivacyRequest)

# The library registers the explicit topics of an aggregate's events, not of
# its snapshot class (until a process first stores a snapshot): without this
# a process that reads a stored snapshot before writing one cannot decode it.
register_topic(Ticket.Snapshot.TOPIC, Ticket.Snapshot)


class TicketApplication(Application[UUID]):
    """Stores ticket (and tenant settings) streams in ``ticketing_events``."""

    name = "ticketing"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        snapshot_interval: int = 50,
        seal_personal_data: bool = True,
        key_store: KeyStore | None = None,
        key_cache_seconds: float = 10.0,
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
        env = {
            "CREATE_TABLE": "n",
            **(env or {}),
            "IS_SNAPSHOTTING_ENABLED": "y",
            # Personal data sealed per data subject (store.sealing).
            "MAPPER_TOPIC": get_topic(SealingMapper),
        }
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            env.setdefault("APPLICATION_RECORDER_TOPIC", get_topic(BatchingRecorder))
        super().__init__(env)
        postgres = isinstance(self.recorder, PostgresApplicationRecorder)
        if postgres:
            check_when_suspect(self.datastore.pool)
        mapper = self.mapper
        assert isinstance(mapper, SealingMapper)
        mapper.sealing = seal_personal_data
        if key_store is not None or postgres:
            mapper.keys = CachedKeys(
                key_store or PostgresKeys(self.datastore), ttl=key_cache_seconds
            )
        #: The keys of the tickets' personal data (store.subject_keys).
        self.keys: CachedKeys = mapper.keys
        # New keys go into the save's own transaction where the recorder
        # can take them; elsewhere they are kept first, on their own.
        self._keys_with_events = isinstance(self.recorder, BatchingRecorder)

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
        written in the same transaction as its events, and so is the bulk
        job item being applied, if any (``store.bulk_jobs.applying``).
        """
        workload = [workload_of(a) for a in aggregates if isinstance(a, Ticket)]
        item = current_attempt()
        changed = [a for a in aggregates if a.pending_events]
        job_items = [item.done(changed[0].version)] if item and changed else []
        try:
            recordings = self.save(*aggregates, workload=workload, job_items=job_items)
        except IntegrityError:
            if item is not None:
                item.conflicts += 1
            raise
        if not recordings:
            return None
        return int(max(r.notification.id for r in recordings))

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The library's save, with each ticket's key at hand (store.sealing).

        A new ticket's key is made here and written with its first events;
        another ticket's is looked up only if one of its events (or its
        snapshot) has personal data to seal.
        """
        tickets = {o.id: o for o in objs if isinstance(o, Ticket) and o.pending_events}
        new = [
            _new_key(t)
            for t in tickets.values()
            if t.pending_events[0].originator_version == 1
        ]
        if new and not self._keys_with_events:
            new = [self.keys.add(k) for k in new]
        keys = {k.ticket_id: k for k in new}

        def otherwise(ticket_id: UUID) -> SubjectKey:
            # Erased, or written before sealing: a new key, kept at once.
            found = self.keys.active_key(ticket_id)
            return found or self.keys.add(_new_key(tickets[ticket_id]))

        with sealing_with(keys, otherwise):
            recordings = super().save(
                *objs,
                subject_keys=new if self._keys_with_events else [],
                **kwargs,
            )
        self.keys.remember(new)
        return recordings

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


def _new_key(ticket: Ticket) -> SubjectKey:
    """A new key for the ticket's personal data, its customer's."""
    return SubjectKey.new(
        tenant_id=ticket.tenant_id, subject_id=ticket.customer_id, ticket_id=ticket.id
    )


def open_keys_of(app: TicketApplication, stored: Iterable[StoredEvent]) -> None:
    """Fetch the keys a batch of stored events was sealed with, in one go."""
    mapper = app.mapper
    if isinstance(mapper, SealingMapper):
        mapper.open_keys_of(stored)
