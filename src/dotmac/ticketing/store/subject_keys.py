"""The keys that seal each ticket's personal data, and where they are kept.

Each ticket has a key of its own, which belongs to the ticket's customer
(its data subject): erasing the customer destroys all of their keys,
erasing one ticket (a retention period) only that ticket's. A key is
created with the ticket and written in the same transaction as its first
events (``store.batch_recorder``), so no event is ever sealed with a key
that was not stored.

:class:`KeyStore` is the small interface a key management service could
implement instead of the ``privacy_keys`` table (migration 0005).
:class:`CachedKeys` keeps the keys this process used a short while, so
sealing and opening cost no round trip: a key destroyed by another process
is forgotten here within ``ttl`` seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor

#: AES-256: 32 bytes.
SECRET_BYTES = 32


@dataclass(frozen=True)
class SubjectKey:
    """A ticket's key, and whose data it seals."""

    key_id: UUID
    tenant_id: str
    subject_id: str
    ticket_id: UUID
    secret: bytes

    @classmethod
    def new(cls, *, tenant_id: str, subject_id: str, ticket_id: UUID) -> SubjectKey:
        return cls(uuid4(), tenant_id, subject_id, ticket_id, os.urandom(SECRET_BYTES))


@dataclass(frozen=True)
class DestroyedKey:
    key_id: UUID
    ticket_id: UUID


class KeyStore(Protocol):
    """Where keys are kept; a KMS could stand in for the table."""

    def active_key(self, ticket_id: UUID) -> SubjectKey | None:
        """The ticket's key still in use, if any."""

    def secret(self, key_id: UUID) -> bytes | None:
        """The key's secret; None once it is destroyed (or was never kept)."""

    def secrets(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        """Several keys' secrets at once, by their ids' text (None: destroyed
        or unknown)."""

    def add(self, key: SubjectKey) -> SubjectKey:
        """Keep a key on its own; returns the ticket's key in use (another
        writer's, if one was added first)."""

    def destroy(
        self,
        tenant_id: str,
        *,
        subject_id: str | None = None,
        ticket_id: UUID | None = None,
    ) -> list[DestroyedKey]:
        """Destroy the subject's (or one ticket's) keys still in use."""

    def tickets_of(self, tenant_id: str, subject_id: str) -> list[UUID]:
        """Every ticket a key of the subject was made for."""


class PostgresKeys:
    """The ``privacy_keys`` table."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore

    def active_key(self, ticket_id: UUID) -> SubjectKey | None:
        with self._datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT key_id, tenant_id, subject_id, ticket_id, secret"
                " FROM public.privacy_keys WHERE ticket_id = %s AND secret IS NOT NULL",
                (ticket_id,),
                prepare=True,
            ).fetchone()
        return _key(row) if row is not None else None

    def secret(self, key_id: UUID) -> bytes | None:
        with self._datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT secret FROM public.privacy_keys WHERE key_id = %s",
                (key_id,),
                prepare=True,
            ).fetchone()
        return bytes(row["secret"]) if row is not None and row["secret"] else None

    def secrets(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        # As text both ways: a rebuild asks for a key per ticket, and parsing
        # thousands of UUIDs a batch showed in its profile.
        with self._datastore.get_connection() as conn:
            rows = conn.execute(
                "SELECT key_id::text AS id, secret FROM public.privacy_keys"
                " WHERE key_id = ANY(%s::text[]::uuid[])",
                (list(key_ids),),
            ).fetchall()
        found = {r["id"]: bytes(r["secret"]) if r["secret"] else None for r in rows}
        return {key_id: found.get(key_id) for key_id in key_ids}

    def add(self, key: SubjectKey) -> SubjectKey:
        with self._datastore.transaction(commit=True) as cur:
            write_keys(cur, [key], if_absent=True)
        found = self.active_key(key.ticket_id)
        if found is None:  # destroyed between the two statements: try again
            return self.add(SubjectKey.new(**_owner(key)))
        return found

    def destroy(
        self,
        tenant_id: str,
        *,
        subject_id: str | None = None,
        ticket_id: UUID | None = None,
    ) -> list[DestroyedKey]:
        if (subject_id is None) == (ticket_id is None):
            raise ValueError("destroy one subject's keys or one ticket's")
        column, value = (
            ("subject_id", subject_id)
            if subject_id is not None
            else ("ticket_id", ticket_id)
        )
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "UPDATE public.privacy_keys SET secret = NULL, destroyed_at = now()"
                f" WHERE tenant_id = %s AND {column} = %s AND secret IS NOT NULL"
                " RETURNING key_id, ticket_id",
                (tenant_id, value),
            )
            return [DestroyedKey(r["key_id"], r["ticket_id"]) for r in cur.fetchall()]

    def tickets_of(self, tenant_id: str, subject_id: str) -> list[UUID]:
        with self._datastore.get_connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ticket_id FROM public.privacy_keys"
                " WHERE tenant_id = %s AND subject_id = %s ORDER BY ticket_id",
                (tenant_id, subject_id),
            ).fetchall()
        return [r["ticket_id"] for r in rows]


def write_keys(
    cur: Cursor[Any], keys: Sequence[SubjectKey], *, if_absent: bool = False
) -> None:
    """Insert the keys in the caller's transaction (one statement)."""
    if not keys:
        return
    cur.execute(
        "INSERT INTO public.privacy_keys"
        " (key_id, tenant_id, subject_id, ticket_id, secret)"
        " SELECT * FROM unnest("
        "%s::uuid[], %s::text[], %s::text[], %s::uuid[], %s::bytea[])"
        + (" ON CONFLICT DO NOTHING" if if_absent else ""),
        (
            [k.key_id for k in keys],
            [k.tenant_id for k in keys],
            [k.subject_id for k in keys],
            [k.ticket_id for k in keys],
            [k.secret for k in keys],
        ),
    )


class MemoryKeys:
    """Keys in this process only: for an application without PostgreSQL."""

    def __init__(self) -> None:
        self._keys: dict[UUID, SubjectKey] = {}
        self._destroyed: set[UUID] = set()
        self._lock = threading.Lock()

    def active_key(self, ticket_id: UUID) -> SubjectKey | None:
        with self._lock:
            return next(
                (
                    k
                    for k in self._keys.values()
                    if k.ticket_id == ticket_id and k.key_id not in self._destroyed
                ),
                None,
            )

    def secret(self, key_id: UUID) -> bytes | None:
        with self._lock:
            key = self._keys.get(key_id)
            return None if key is None or key_id in self._destroyed else key.secret

    def secrets(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        return {key_id: self.secret(UUID(key_id)) for key_id in key_ids}

    def add(self, key: SubjectKey) -> SubjectKey:
        found = self.active_key(key.ticket_id)
        if found is not None:
            return found
        with self._lock:
            self._keys[key.key_id] = key
        return key

    def destroy(
        self,
        tenant_id: str,
        *,
        subject_id: str | None = None,
        ticket_id: UUID | None = None,
    ) -> list[DestroyedKey]:
        with self._lock:
            hit = [
                k
                for k in self._keys.values()
                if k.tenant_id == tenant_id
                and k.key_id not in self._destroyed
                and (k.subject_id == subject_id or k.ticket_id == ticket_id)
            ]
            self._destroyed.update(k.key_id for k in hit)
        return [DestroyedKey(k.key_id, k.ticket_id) for k in hit]

    def tickets_of(self, tenant_id: str, subject_id: str) -> list[UUID]:
        with self._lock:
            return sorted(
                {
                    k.ticket_id
                    for k in self._keys.values()
                    if k.tenant_id == tenant_id and k.subject_id == subject_id
                }
            )


@dataclass(frozen=True)
class Opened:
    """A live key's secret and its cipher, made once."""

    secret: bytes
    aead: AESGCM


class CachedKeys:
    """A key store with this process's recently used keys in front of it.

    A destroyed key is remembered for good (it never comes back); a live
    one for ``ttl`` seconds, so that another process's erasure takes effect
    here within that time.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl: float = 10.0,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._ttl, self._size, self._clock = ttl, size, clock
        # By the key id's text, as sealed events name it (no UUID to parse
        # per event), with the cipher made once per key.
        self._secrets: OrderedDict[str, tuple[float, Opened | None]] = OrderedDict()
        self._active: OrderedDict[UUID, tuple[float, SubjectKey]] = OrderedDict()
        self._lock = threading.Lock()

    def active_key(self, ticket_id: UUID) -> SubjectKey | None:
        cached = self._cached(self._active, ticket_id)
        if cached is not None:
            return cached
        key = self.store.active_key(ticket_id)
        if key is not None:
            self.remember([key])
        return key

    def secret(self, key_id: UUID) -> bytes | None:
        opened = self.opened(str(key_id))
        return None if opened is None else opened.secret

    def opened(self, key_id: str) -> Opened | None:
        """The key named by its id's text, ready to open boxes; None once it
        is destroyed."""
        with self._lock:
            entry = self._secrets.get(key_id)
            if entry is not None and (entry[1] is None or entry[0] > self._clock()):
                self._secrets.move_to_end(key_id)
                return entry[1]
        secret = self.store.secret(UUID(key_id))
        return self._put_secret(key_id, secret)

    def prefetch(self, key_ids: Collection[str]) -> None:
        """Fetch the keys not at hand (named by their ids' text) in one round
        trip: a batch reader's first step, before it opens each event."""
        with self._lock:
            now = self._clock()
            missing = [
                k
                for k in key_ids
                if (entry := self._secrets.get(k)) is None
                or (entry[1] is not None and entry[0] <= now)
            ]
        if missing:
            for key_id, secret in self.store.secrets(missing).items():
                self._put_secret(key_id, secret)

    def secrets(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        self.prefetch(key_ids)
        return {key_id: self.secret(UUID(key_id)) for key_id in key_ids}

    def add(self, key: SubjectKey) -> SubjectKey:
        kept = self.store.add(key)
        self.remember([kept])
        return kept

    def remember(self, keys: Sequence[SubjectKey]) -> None:
        """Keys just stored (with a save's events) by this process."""
        for key in keys:
            self._put(self._active, key.ticket_id, key)
            self._put_secret(str(key.key_id), key.secret)

    def destroy(
        self,
        tenant_id: str,
        *,
        subject_id: str | None = None,
        ticket_id: UUID | None = None,
    ) -> list[DestroyedKey]:
        destroyed = self.store.destroy(
            tenant_id, subject_id=subject_id, ticket_id=ticket_id
        )
        with self._lock:
            for key in destroyed:
                self._active.pop(key.ticket_id, None)
                self._secrets[str(key.key_id)] = (0.0, None)
        return destroyed

    def tickets_of(self, tenant_id: str, subject_id: str) -> list[UUID]:
        return self.store.tickets_of(tenant_id, subject_id)

    def _cached(
        self, table: OrderedDict[UUID, tuple[float, SubjectKey]], key: UUID
    ) -> SubjectKey | None:
        with self._lock:
            entry = table.get(key)
            if entry is None or entry[0] <= self._clock():
                return None
            table.move_to_end(key)
            found: SubjectKey = entry[1]
            return found

    def _put_secret(self, key_id: str, secret: bytes | None) -> Opened | None:
        opened = None if secret is None else Opened(secret, AESGCM(secret))
        self._put(self._secrets, key_id, opened)
        return opened

    def _put(
        self, table: OrderedDict[Any, tuple[float, Any]], key: Any, value: Any
    ) -> None:
        expires = self._clock() + self._ttl
        with self._lock:
            table[key] = (expires, value)
            table.move_to_end(key)
            while len(table) > self._size:
                table.popitem(last=False)


def _key(row: Any) -> SubjectKey:
    return SubjectKey(
        row["key_id"],
        row["tenant_id"],
        row["subject_id"],
        row["ticket_id"],
        bytes(row["secret"]),
    )


def _owner(key: SubjectKey) -> dict[str, Any]:
    return {
        "tenant_id": key.tenant_id,
        "subject_id": key.subject_id,
        "ticket_id": key.ticket_id,
    }
