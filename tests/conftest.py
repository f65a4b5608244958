"""Session fixtures shared by every test ring: a PostgreSQL database, a secret.

With ``DATABASE_URL`` set (CI, a developer's own server) each session gets a
fresh database on that server and drops it afterwards, so runs never see each
other's events. Without it, an embedded server in a temporary directory is
started, so ``make test`` works on a machine with no PostgreSQL at all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dotmac.ticketing.entry.embedded import start_embedded_postgres
from dotmac.ticketing.store.schema_migrations import migrate


def _with_database(url: str, dbname: str) -> str:
    """The same connection settings as ``url``, pointing at ``dbname``."""
    if "://" not in url:  # a key=value conninfo string
        return make_conninfo(url, dbname=dbname)
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "dbname"]
    return urlunsplit(
        parts._replace(
            path=f"/{dbname}", query=urlencode(query, safe="/", quote_via=quote)
        )
    )


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server to create test databases on: DATABASE_URL's, or an embedded one."""
    server_url = os.environ.get("DATABASE_URL")
    if server_url:
        yield server_url
        return
    embedded = start_embedded_postgres(tmp_path_factory.mktemp("embedded"))
    try:
        yield embedded.url
    finally:
        embedded.stop()


@contextmanager
def fresh_database(server_url: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database on the server, migrated (or empty); dropped afterwards.

    Migrated as an operator would (``ticketing db migrate``): the processes
    the tests start create no tables of their own.
    """
    dbname = f"ticketing_test_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        url = _with_database(server_url, dbname)
        if migrated:
            migrate(url)
        yield url
    finally:
        # FORCE: pools or LISTEN connections a failed test left open must not
        # keep the database (and the next run's name space) alive.
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname)
                )
            )


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """The session's own database, shared by the tests that need no other."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def isolated_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database for one test alone (for tests that run their own workers)."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_urlsafe(48)
