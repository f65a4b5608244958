"""The versioned schema: migrating empty and pre-migration databases, and the
processes that refuse a database whose schema is behind.

``tests/schema/before_migrations.sql`` is the DDL the code ran at every
process start before migrations existed (frozen: the modules no longer have
it); a database built from it stands for one a deployment of that code
created.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from dotmac.ticketing.consumers.kafka.broker import DevBroker, free_port
from dotmac.ticketing.entry.cli import app as cli
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.schema_migrations import (
    SchemaBehind,
    known_migrations,
    migrate,
    schema_status,
)
from tests.conftest import fresh_database
from tests.notifications.servers import wait_until
from tests.schema.catalog import catalog_differences, schema_catalog

BEFORE_MIGRATIONS = Path(__file__).parents[1] / "schema" / "before_migrations.sql"
INITIAL = "0001.initial-schema"

# Rows a deployment of the older code had written, in tables of each part.
OLD_ROWS = """
INSERT INTO ticketing_events (originator_id, originator_version, topic, state)
VALUES ('5f0c3c1e-6d1c-4f59-9a55-0d9d2b6b2a01', 1, 'some.topic:Event.v1', '\\x7b7d');
INSERT INTO ticket_numbers (tenant_id, last_number) VALUES ('old-tenant', 41);
INSERT INTO relay_tracking (application_name, notification_id) VALUES ('ticketing', 1);
INSERT INTO webhooks (id, tenant_id, url, event_types, secret, created_by,
                      consecutive_failures)
VALUES ('8a1e2c3d-0000-4000-8000-000000000001', 'old-tenant',
        'https://example.com/hook', '{}', 's3cret', 'admin', 2);
INSERT INTO timer_tickets (ticket_id, version, tenant_id, settings_version)
VALUES ('5f0c3c1e-6d1c-4f59-9a55-0d9d2b6b2a01', 1, 'old-tenant', 3);
"""
OLD_TABLES = (
    "ticketing_events",
    "ticket_numbers",
    "relay_tracking",
    "webhooks",
    "timer_tickets",
)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database nobody has migrated or used."""
    with fresh_database(postgres_server_url, migrated=False) as url:
        yield url


@pytest.fixture
def migrated_database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


def _rows(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {
            table: [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
            for table in OLD_TABLES
        }


def _user_tables(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return sorted(r[0] for r in rows)


# -- an empty database -------------------------------------------------------


def test_an_empty_database_has_every_migration_pending(
    empty_database_url: str,
) -> None:
    status = schema_status(empty_database_url)
    assert status.pending == known_migrations()
    assert status.pending[0] == INITIAL
    assert status.applied == ()
    # Reading the status created nothing.
    assert _user_tables(empty_database_url) == []


def test_migrating_an_empty_database_applies_all_once_and_the_service_runs(
    empty_database_url: str,
) -> None:
    assert migrate(empty_database_url) == known_migrations()
    assert migrate(empty_database_url) == ()  # idempotent
    assert schema_status(empty_database_url).current

    core = initialize_ticketing({"database_url": empty_database_url})
    try:
        ctx = RequestContext(tenant_id="t", user_id="a", roles=frozenset({"agent"}))
        created = core.tickets.create_ticket(ctx, title="Works", customer_id="c")
        assert created.ticket.number == 1
    finally:
        core.close()


def test_two_processes_migrating_at_once_take_turns(empty_database_url: str) -> None:
    results: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(empty_database_url))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results) == sorted([(), (), known_migrations()])
    assert schema_status(empty_database_url).current


# -- a database of the code before migrations --------------------------------


def test_a_database_of_the_code_before_migrations_is_adopted_unchanged(
    empty_database_url: str, migrated_database_url: str
) -> None:
    with psycopg.connect(empty_database_url) as conn:
        conn.execute(BEFORE_MIGRATIONS.read_text())
        conn.execute(OLD_ROWS)
    before = _rows(empty_database_url)
    assert schema_status(empty_database_url).pending == known_migrations()

    assert migrate(empty_database_url) == known_migrations()

    assert schema_status(empty_database_url).current
    assert _rows(empty_database_url) == before
    assert (
        catalog_differences(
            schema_catalog(empty_database_url), schema_catalog(migrated_database_url)
        )
        == {}
    )
    # The service carries on where the old deployment stopped.
    core = initialize_ticketing({"database_url": empty_database_url})
    try:
        ctx = RequestContext(
            tenant_id="old-tenant", user_id="a", roles=frozenset({"agent"})
        )
        created = core.tickets.create_ticket(ctx, title="After", customer_id="c")
        assert created.ticket.number == 42
    finally:
        core.close()


def _code(statement: str) -> str:
    return "\n".join(
        line for line in statement.splitlines() if not line.lstrip().startswith("--")
    ).strip()


def test_a_database_from_before_the_added_columns_gets_them(
    empty_database_url: str, migrated_database_url: str
) -> None:
    """Tables as the oldest code created them, before it added columns at start."""
    added = ("template_fallback", "lane", "timer_tickets_active")
    statements = [_code(s) for s in BEFORE_MIGRATIONS.read_text().split(";\n")]
    oldest = [
        s
        for s in statements
        if s
        and not s.startswith("ALTER TABLE")
        # Indexes over the added columns came with the columns.
        and not any(name in s for name in added)
    ]
    with psycopg.connect(empty_database_url) as conn:
        for statement in oldest:
            conn.execute(statement)
    assert "tenant_id" not in _columns(empty_database_url, "timer_tickets")

    migrate(empty_database_url)

    assert (
        catalog_differences(
            schema_catalog(empty_database_url), schema_catalog(migrated_database_url)
        )
        == {}
    )


def _columns(database_url: str, table: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


# -- processes refuse a schema that is behind --------------------------------


def test_the_core_and_the_api_factory_refuse_an_unmigrated_database(
    empty_database_url: str, jwt_secret: str
) -> None:
    with pytest.raises(SchemaBehind, match="ticketing db migrate"):
        initialize_ticketing({"database_url": empty_database_url})
    settings = Settings(database_url=empty_database_url, jwt_secret=jwt_secret)
    with pytest.raises(SchemaBehind, match=INITIAL):
        create_app(settings)
    assert _user_tables(empty_database_url) == []


@pytest.mark.parametrize(
    "command",
    [
        ["api"],
        ["worker", "projections"],
        ["worker", "relay"],
        ["worker", "notifier"],
        ["worker", "timers"],
        ["worker", "workflows"],
        ["projections", "status"],
    ],
)
def test_a_process_exits_naming_the_command_on_an_unmigrated_database(
    command: list[str], empty_database_url: str, jwt_secret: str, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": empty_database_url,
        "TICKETING_JWT_SECRET": jwt_secret,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "TICKETING_DATA_DIR": str(tmp_path),
        "PORT": str(free_port()),
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ticketing")), *command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ticketing db migrate" in done.stderr
    assert INITIAL in done.stderr
    assert _user_tables(empty_database_url) == []


# -- the commands ------------------------------------------------------------


def test_db_status_and_db_migrate(empty_database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    environment = {
        "DATABASE_URL": empty_database_url,
        "TICKETING_DATA_DIR": str(tmp_path),
    }
    pending = runner.invoke(cli, ["db", "status"], env=environment)
    assert pending.exit_code == 1, pending.output
    assert INITIAL in pending.output and "pending" in pending.output

    applied = runner.invoke(cli, ["db", "migrate"], env=environment)
    assert applied.exit_code == 0, applied.output
    assert f"applied {INITIAL}" in applied.output

    again = runner.invoke(cli, ["db", "migrate"], env=environment)
    assert again.exit_code == 0, again.output
    assert "nothing to apply" in again.output

    current = runner.invoke(cli, ["db", "status"], env=environment)
    assert current.exit_code == 0, current.output
    assert "applied" in current.output and "pending" not in current.output


def test_ticketing_dev_migrates_its_database(
    empty_database_url: str, kafka: DevBroker, jwt_secret: str, tmp_path: Path
) -> None:
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": empty_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "TICKETING_JWT_SECRET": jwt_secret,
        "TICKETING_DATA_DIR": str(tmp_path),
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    log = tmp_path / "dev.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ticketing")), "dev"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"ticketing dev exited:\n{log.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=60, what="ticketing dev to answer")
        assert schema_status(empty_database_url).current
    finally:
        process.terminate()
        process.wait(15)
