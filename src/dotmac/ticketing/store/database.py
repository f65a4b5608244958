"""Turning a ``DATABASE_URL`` into the eventsourcing library's settings."""

import select
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

# Serialises schema changes: `ticketing db migrate` run by several processes
# at once, and the tables of projection builds. PostgreSQL answers "tuple
# concurrently updated" to simultaneous CREATE ... IF NOT EXISTS of the same
# object.
DDL_LOCK = "ticketing-ddl"


def eventsourcing_env(
    database_url: str,
    *,
    pool_size: int,
    schema: str = "",
    wait_seconds: int = 10,
    max_waiting: int = 0,
) -> dict[str, str]:
    """Settings for ``eventsourcing.postgres`` from a libpq URL.

    The URL may name a unix socket directory (``?host=/path``), which is how
    the embedded server is reached.
    """
    params = conninfo_to_dict(database_url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        # Keep two connections open and grow on demand up to ``pool_size``:
        # every process (API, each worker, each test) has its own pool, and
        # PostgreSQL's connection limit is shared by all of them.
        "POSTGRES_POOL_SIZE": str(min(2, pool_size)),
        "POSTGRES_MAX_OVERFLOW": str(max(pool_size - 2, 0)),
        # Writers queue on the table lock; wait for it rather than fail fast.
        "POSTGRES_LOCK_TIMEOUT": "10000",
        # How long a checkout waits for a connection (the library's name for
        # the pool's timeout), and how many may wait (0: any number): beyond,
        # the caller fails at once instead of queueing (an API answers 503).
        "POSTGRES_CONNECT_TIMEOUT": str(wait_seconds),
        "POSTGRES_MAX_WAITING": str(max_waiting),
        # No round trip to test each connection handed out (one per request
        # adds up): check_when_suspect tests only those the server closed,
        # and connections are replaced after ten minutes.
        "POSTGRES_PRE_PING": "n",
        "POSTGRES_CONN_MAX_AGE": "600",
        # The library's tables are those of migration 0001: a process finds
        # them there (service.schema_migrations) and creates nothing.
        "CREATE_TABLE": "n",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


@contextmanager
def ddl_lock(env: Mapping[str, str]) -> Iterator[None]:
    """Hold the schema-change lock while the block creates tables.

    ``env`` is the eventsourcing library's settings (:func:`eventsourcing_env`).
    """
    with ddl_lock_at(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
    ):
        yield


@contextmanager
def ddl_lock_at(conninfo: str = "", **params: str) -> Iterator[None]:
    """Hold the schema-change lock of the database at ``conninfo``/``params``.

    A session lock on a connection of its own, so that the block may use
    any other connections (the library creates a projection build's tables
    on its pool's; yoyo commits migrations on its own).
    """
    with psycopg.connect(make_conninfo(conninfo, **params), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (DDL_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (DDL_LOCK,))


def check_when_suspect(pool: ConnectionPool[Any]) -> None:
    """Test a connection on checkout only when the server may have closed it.

    An idle connection has nothing to read, unless the server went away or
    ended it (it sends an error, then closes): then, and only then, the
    pool's usual check runs and a dead connection is replaced before the
    caller gets it. One the network lost silently fails its first use and
    is replaced after (the library retries its own calls).
    """
    pool._check = _check_if_suspect  # psycopg_pool keeps the check here


def _check_if_suspect(conn: psycopg.Connection[Any]) -> None:
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)
