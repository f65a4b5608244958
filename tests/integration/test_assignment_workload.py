"""The workload rows auto-assignment reads: written with each save, repaired
by the tickets projection, seeded by the migration that added them.

A save of this release writes a ticket's row in the transaction of its
events. Tickets saved by an older release while a deploy rolls have no
row, or a stale one: the projection brings those up to its read row, and
never overwrites a newer one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from uuid import UUID

import psycopg
import pytest

from dotmac.ticketing.consumers.supervision import RunningWorker
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workload import WorkloadRow, workload_of
from dotmac.ticketing.entry.processes import start_projection_worker
from dotmac.ticketing.projections.read_model import ProjectionNotReady
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database
from tests.notifications.servers import wait_until

MIGRATION = "0003.assignment-workload.sql"


@pytest.fixture(scope="module")
def database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def core(database_url: str) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing({"database_url": database_url})
    yield ticketing
    ticketing.close()


@pytest.fixture(scope="module")
def tenant(core: Ticketing) -> str:
    tenant = f"t-{secrets.token_hex(3)}"
    core.settings_service.replace(
        RequestContext(tenant_id=tenant, user_id="boss", roles=frozenset({"admin"})),
        {
            "teams": [
                {
                    "name": "Support",
                    "agents": [
                        {"id": "ann", "capacity": 1},
                        {"id": "bob", "capacity": 1},
                    ],
                },
                {"name": "Billing", "agents": [{"id": "bea"}]},
            ],
            "assignment_rules": [
                {"name": "all", "assigned_team": "Support", "strategy": "round_robin"}
            ],
        },
    )
    return tenant


@pytest.fixture(scope="module")
def tickets(core: Ticketing, tenant: str) -> list[UUID]:
    """Four tickets: assigned, queued, resolved, moved to another agent."""
    customer = RequestContext(
        tenant_id=tenant, user_id="cust-1", roles=frozenset({"customer"})
    )
    agent = RequestContext(tenant_id=tenant, user_id="ann", roles=frozenset({"agent"}))
    ids = [
        core.tickets.create_ticket(customer, title=f"Help {n}").ticket.id
        for n in range(4)
    ]
    core.tickets.resolve(
        agent, ids[0], resolution="Done", resolution_code="solved"
    )  # ann's only ticket: she has room again
    core.tickets.assign(agent, ids[2], assignee_id="bea", team="Billing")
    return ids


def expected(core: Ticketing, ids: list[UUID]) -> dict[UUID, WorkloadRow]:
    return {i: workload_of(core.app.repository.get(i)) for i in ids}


def stored(database_url: str, ids: list[UUID]) -> dict[UUID, WorkloadRow]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT tenant_id, ticket_id, version, assignee_id, team, active,"
            " number, created_at FROM ticket_workload WHERE ticket_id = ANY(%s)",
            (ids,),
        ).fetchall()
    return {row[1]: WorkloadRow(*row) for row in rows}


def run_sql(database_url: str, statement: str, *args: object) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(statement, args)  # type: ignore[arg-type]


@pytest.fixture
def projector(core: Ticketing) -> Iterator[RunningWorker]:
    worker = start_projection_worker(core.settings)
    wait_until(_has_read_model(core), timeout=30, what="the first build")
    yield worker
    worker.stop()


def _has_read_model(core: Ticketing) -> object:
    def swapped() -> bool:
        try:
            core.read_model.active(refresh=True)
        except ProjectionNotReady:
            return False
        return True

    return swapped


def test_every_save_writes_its_tickets_row(
    core: Ticketing, database_url: str, tickets: list[UUID]
) -> None:
    rows = stored(database_url, tickets)

    assert rows == expected(core, tickets)
    by_ticket = [(rows[t].assignee_id, rows[t].team, rows[t].active) for t in tickets]
    assert by_ticket == [
        ("ann", "Support", False),  # resolved: no longer ann's load
        ("bob", "Support", True),
        ("bea", "Billing", True),  # handed to another team's agent
        (None, "Support", True),  # both were full when it came: queued
    ]


def test_the_projection_repairs_rows_an_older_release_left_behind(
    core: Ticketing, database_url: str, tickets: list[UUID], tenant: str
) -> None:
    missing, stale, newer = tickets[0], tickets[1], tickets[3]
    run_sql(database_url, "DELETE FROM ticket_workload WHERE ticket_id = %s", missing)
    run_sql(
        database_url,
        "UPDATE ticket_workload SET version = 1, assignee_id = 'zed'"
        " WHERE ticket_id = %s",
        stale,
    )
    # A row ahead of the read row (a save the projection has not seen yet)
    # is never overwritten by it.
    run_sql(
        database_url,
        "UPDATE ticket_workload SET version = 999 WHERE ticket_id = %s",
        newer,
    )
    # And a save the way the previous release made it: events, no row.
    moved = tickets[2]
    save_as_older_release(core, database_url, moved, lambda t, why: t.unassign(**why))
    want = expected(core, tickets)
    want[newer] = WorkloadRow(**{**vars(want[newer]), "version": 999})

    projector = start_projection_worker(core.settings)
    try:
        # Its first build replays the log in batches.
        wait_until(
            lambda: stored(database_url, tickets) == want,
            timeout=30,
            what="the catch-up to repair the rows",
        )
        assert stored(database_url, [moved])[moved].assignee_id is None

        # Running: each event applied on its own.
        save_as_older_release(
            core,
            database_url,
            moved,
            lambda t, why: t.assign(assignee_id="bea", team="Billing", **why),
        )
        want[moved] = workload_of(core.app.repository.get(moved))
        wait_until(
            lambda: stored(database_url, tickets) == want,
            timeout=30,
            what="the running projection to repair the row",
        )
        assert want[moved].assignee_id == "bea"
    finally:
        projector.stop()


def save_as_older_release(
    core: Ticketing,
    database_url: str,
    ticket_id: UUID,
    command: Callable[[Ticket, dict[str, Any]], object],
) -> None:
    """Save a change with the library's own save (events only, no row)."""
    ticket = core.app.repository.get(ticket_id)
    staff = RequestContext(
        tenant_id=ticket.tenant_id, user_id="boss", roles=frozenset({"admin"})
    )
    command(ticket, {"provenance": staff.provenance(), "at": datetime.now(UTC)})
    run_sql(database_url, "DELETE FROM ticket_workload WHERE ticket_id = %s", ticket_id)
    core.app.save(ticket)


def test_the_migration_seeds_rows_from_the_active_read_model(
    core: Ticketing,
    database_url: str,
    tickets: list[UUID],
    projector: RunningWorker,
) -> None:
    assert core.read_model.wait_for(core.app.head_position(), 30)
    run_sql(database_url, "DELETE FROM ticket_workload")
    migration = resources.files("dotmac.ticketing.store") / "migrations" / MIGRATION

    with psycopg.connect(database_url) as conn:
        conn.execute(migration.read_text())

    assert stored(database_url, tickets) == expected(core, tickets)
