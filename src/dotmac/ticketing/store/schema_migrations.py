"""The versioned schema: numbered SQL migrations, applied by yoyo-migrations.

The migrations are the files of ``store/migrations/`` (``0001.initial-schema.sql``,
``0002.<what>.sql``, …), shipped in the wheel. ``ticketing db migrate``
applies those a database lacks, in order, each in a transaction, and
records them in yoyo's table ``_yoyo_migration``; ``ticketing dev`` and the
tests' fixtures do it for their own databases. Every other process only
checks, at start, that nothing is pending (:func:`require_current_schema`)
and refuses to start otherwise: the code and the schema it expects ship
together, and a schema change is a deliberate step of a deployment.

A database created before migrations existed (the tables were created by
each process at start) is adopted by ``ticketing db migrate``: 0001 is
written to change nothing where its objects exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo import read_migrations
from yoyo.backends import DatabaseBackend
from yoyo.backends.base import get_backend_class
from yoyo.connections import DatabaseURI
from yoyo.migrations import (
    MigrationList,
    default_migration_table,
)

from dotmac.ticketing.store.database import ddl_lock_at

#: Where the migrations are: a folder of this package, so they ship in the wheel.
MIGRATIONS = "package:dotmac.ticketing.store:migrations"

#: What an operator runs to bring a database up to date.
MIGRATE_COMMAND = "ticketing db migrate"

# yoyo's backend for psycopg 3 (psycopg2 is not installed).
_BACKEND = "postgresql+psycopg"


class SchemaBehind(RuntimeError):
    """The database lacks migrations this code needs; the process must not start."""

    def __init__(self, pending: tuple[str, ...]) -> None:
        self.pending = pending
        names = ", ".join(pending)
        super().__init__(
            f"the database schema is behind this release: {len(pending)}"
            f" migration(s) not applied ({names}). Run `{MIGRATE_COMMAND}`"
            " against this DATABASE_URL first (docs/operations.md)."
        )


@dataclass(frozen=True)
class SchemaStatus:
    """Which of this release's migrations a database has."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    # Recorded in the database but not shipped here: a newer release
    # migrated it (this older code may still run against it).
    unknown: tuple[str, ...]

    @property
    def current(self) -> bool:
        return not self.pending


def known_migrations() -> tuple[str, ...]:
    """The ids of this release's migrations, in the order they apply."""
    return tuple(m.id for m in _migrations())


def _migrations() -> MigrationList:
    migrations = read_migrations(MIGRATIONS)
    if not migrations:
        # An install without its package data would otherwise pass every
        # check against an empty database.
        raise RuntimeError(f"no schema migrations found at {MIGRATIONS}")
    return migrations


def schema_status(database_url: str) -> SchemaStatus:
    """What is applied and what is pending; reads only, changes nothing."""
    known = known_migrations()
    recorded = _recorded(database_url)
    return SchemaStatus(
        applied=tuple(m for m in known if m in recorded),
        pending=tuple(m for m in known if m not in recorded),
        unknown=tuple(sorted(recorded - set(known))),
    )


def require_current_schema(database_url: str) -> None:
    """Raise :class:`SchemaBehind` unless every migration here is applied."""
    status = schema_status(database_url)
    if status.pending:
        raise SchemaBehind(status.pending)


def migrate(database_url: str) -> tuple[str, ...]:
    """Apply the pending migrations; return their ids (empty: nothing to do).

    Safe to run from several processes at once: they take turns on the
    schema-change advisory lock, and the ones after the first find nothing
    pending.
    """
    with (
        ddl_lock_at(database_url),
        _backend(database_url) as backend,
        backend.lock(),
    ):
        pending = backend.to_apply(_migrations())
        backend.apply_migrations(pending)
    return tuple(m.id for m in pending)


# -- internals -------------------------------------------------------------


def _recorded(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (default_migration_table,)
        ).fetchone()
        if not row or not row[0]:
            return set()  # never migrated: everything is pending
        rows = conn.execute(
            f'SELECT migration_id FROM "{default_migration_table}"'
        ).fetchall()
    return {str(r[0]) for r in rows}


@contextmanager
def _backend(database_url: str) -> Iterator[DatabaseBackend]:
    backend_class: Any = get_backend_class(_BACKEND)
    backend: DatabaseBackend = backend_class(
        _uri(database_url), default_migration_table
    )
    try:
        backend.init_database()
        yield backend
    finally:
        backend.connection.close()


def _uri(database_url: str) -> DatabaseURI:
    """yoyo's connection parameters from any libpq URL or conninfo string.

    Built from libpq's own parsing rather than yoyo's URL parser, so that
    every form the service accepts works (``?host=/socket/dir`` of the
    embedded server, key=value strings, sslmode and the like): everything
    but the database, user and password goes to ``psycopg.connect`` as is.
    """
    params = {k: str(v) for k, v in conninfo_to_dict(database_url).items()}
    database = params.pop("dbname", None)
    username = params.pop("user", None)
    password = params.pop("password", None)
    return DatabaseURI(
        scheme=_BACKEND,
        username=username,
        password=password,
        hostname=None,
        port=None,
        database=database,
        args=params,
    )
