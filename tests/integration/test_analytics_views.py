"""The analysts' views: there after a swap, right rows, read-only role, rebuilds.

Roles are cluster-wide: every role made here has a unique name and is
dropped at the end, whatever happens.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from domain.enums import TicketPriority
from projections.analytics import grant_analyst, point_analytics_views
from projections.analytics_views import VIEWS
from service.bootstrap import Ticketing, initialize_ticketing
from service.context import RequestContext
from tests.conftest import fresh_database
from tests.integration.projecting import SetClock, project

VIEW_NAMES = sorted(view.name for view in VIEWS)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, 6, hour, minute, tzinfo=UTC)


@dataclass
class Setup:
    ticketing: Ticketing
    database_url: str
    tenant: str
    first: Any
    second: Any


@pytest.fixture(scope="module")
def own_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database for this module alone: its worker must not meet another."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def setup(own_database_url: str) -> Iterator[Setup]:
    """Two tickets, projected into a fresh build swapped in with the views."""
    clock = SetClock(at(8))
    ticketing = initialize_ticketing({"database_url": own_database_url}, clock=clock)
    tenant = f"views-{secrets.token_hex(4)}"
    agent = RequestContext(tenant, "carol", frozenset({"agent"}))
    service = ticketing.tickets

    first = service.create_ticket(
        agent, title="VPN down", customer_id="c1", priority=TicketPriority.HIGH
    ).ticket.id
    clock.now = at(8, 5)
    service.assign(agent, first, assignee_id="carol", team="network")
    clock.now = at(8, 20)
    service.add_comment(agent, first, body="Looking")
    clock.now = at(9, 30)
    service.resolve(agent, first, resolution="Reset", resolution_code="fixed")
    clock.now = at(10)
    service.reopen(agent, first, reason="Down again")
    clock.now = at(11)
    service.resolve(agent, first, resolution="Replaced", resolution_code="fixed")

    clock.now = at(9)
    second = service.create_ticket(agent, title="Invoice", customer_id="c2").ticket.id
    clock.now = at(9, 10)
    service.assign(agent, second, assignee_id="carol", team="billing")
    clock.now = at(9, 15)
    service.escalate(agent, second, reason="Refund", team="finance")

    project(ticketing, own_database_url, rebuild=True)
    try:
        yield Setup(ticketing, own_database_url, tenant, first, second)
    finally:
        ticketing.close()


@pytest.fixture
def analyst(setup: Setup) -> Iterator[str]:
    role = f"analyst_{secrets.token_hex(4)}"
    try:
        yield role
    finally:
        with psycopg.connect(setup.database_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            if exists:
                # Privileges in this database first, or DROP ROLE refuses.
                ident = sql.Identifier(role)
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
                conn.execute(sql.SQL("DROP ROLE {}").format(ident))
            conn.execute("DELETE FROM analytics_grants WHERE role = %s", (role,))


def rows(url: str, query: str, params: Any = None, role: str | None = None) -> Any:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        return conn.execute(query, params).fetchall()


def active_schema(setup: Setup) -> str:
    (row,) = rows(
        setup.database_url,
        "SELECT schema_name FROM projection_builds"
        " WHERE projection = 'tickets' AND state = 'active'",
    )
    return str(row["schema_name"])


def test_views_exist_after_a_swap_and_document_themselves(setup: Setup) -> None:
    found = rows(
        setup.database_url,
        "SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS comment"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'analytics' AND c.relkind = 'v' ORDER BY 1",
    )
    assert [r["name"] for r in found] == VIEW_NAMES
    assert all(r["comment"] for r in found)
    # Every column is documented, in the documented order.
    for view in VIEWS:
        columns = rows(
            setup.database_url,
            "SELECT a.attname AS name, col_description(a.attrelid, a.attnum) AS doc"
            " FROM pg_attribute a WHERE a.attrelid = %s::regclass"
            " AND a.attnum > 0 ORDER BY a.attnum",
            (f"analytics.{view.name}",),
        )
        assert [(c["name"], c["doc"]) for c in columns] == list(view.columns)
    # ... over the active build's tables.
    (dependency,) = rows(
        setup.database_url,
        "SELECT DISTINCT n.nspname AS schema FROM pg_depend d"
        " JOIN pg_rewrite r ON r.oid = d.objid"
        " JOIN pg_class c ON c.oid = d.refobjid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE r.ev_class = 'analytics.ticket_facts'::regclass"
        " AND c.oid <> 'analytics.ticket_facts'::regclass",
    )
    assert dependency["schema"] == active_schema(setup)


def test_ticket_facts(setup: Setup) -> None:
    facts = rows(
        setup.database_url,
        "SELECT * FROM analytics.ticket_facts WHERE tenant_id = %s ORDER BY number",
        (setup.tenant,),
    )
    first, second = facts
    assert first["ticket_id"] == setup.first
    assert {k: first[k] for k in FACT_KEYS} == {
        "status": "resolved",
        "is_open": False,
        "priority": "high",
        "assigned_team": "network",
        "assignee_id": "carol",
        "created_day": date(2024, 5, 6),
        "first_response_minutes": Decimal("20.00"),
        # Latest resolution, 11:00, three hours after creation.
        "resolution_minutes": Decimal("180.00"),
        "reopen_count": 1,
        "escalation_level": 0,
        "sla_response_due_at": None,
        "sla_resolution_due_at": None,
        "sla_state": "ok",
    }
    assert {k: second[k] for k in FACT_KEYS} == {
        "status": "open",
        "is_open": True,
        "priority": "normal",
        "assigned_team": "finance",
        # Escalated to another team: the agent of the old team lets go.
        "assignee_id": None,
        "created_day": date(2024, 5, 6),
        "first_response_minutes": None,
        "resolution_minutes": None,
        "reopen_count": 0,
        "escalation_level": 1,
        "sla_response_due_at": None,
        "sla_resolution_due_at": None,
        "sla_state": "ok",
    }
    # Free text and e-mail stay out of the analysts' reach.
    assert not {"title", "description", "customer_email"} & set(first)


FACT_KEYS = (
    "status",
    "is_open",
    "priority",
    "assigned_team",
    "assignee_id",
    "created_day",
    "first_response_minutes",
    "resolution_minutes",
    "reopen_count",
    "escalation_level",
    "sla_response_due_at",
    "sla_resolution_due_at",
    "sla_state",
)


def test_daily_metrics_sla_outcomes_and_agent_performance(setup: Setup) -> None:
    url, tenant = setup.database_url, setup.tenant
    daily = rows(
        url,
        "SELECT day, created, resolved, closed, reopened, escalated, breached"
        " FROM analytics.daily_tenant_metrics WHERE tenant_id = %s",
        (tenant,),
    )
    assert daily == [
        {
            "day": date(2024, 5, 6),
            "created": 2,
            "resolved": 2,
            "closed": 0,
            "reopened": 1,
            "escalated": 1,
            "breached": 0,
        }
    ]
    outcomes = rows(
        url,
        "SELECT number, response_outcome, resolution_outcome"
        " FROM analytics.sla_outcomes WHERE tenant_id = %s ORDER BY number",
        (tenant,),
    )
    # No due times yet (they arrive with the SLA policies): no outcome.
    assert [(r["response_outcome"], r["resolution_outcome"]) for r in outcomes] == [
        (None, None),
        (None, None),
    ]
    performance = rows(
        url,
        "SELECT assignee_id, assigned, open, resolved, median_resolution_minutes,"
        " reopen_count FROM analytics.agent_performance WHERE tenant_id = %s",
        (tenant,),
    )
    assert performance == [
        {
            "assignee_id": "carol",
            "assigned": 1,
            "open": 0,
            "resolved": 1,
            "median_resolution_minutes": Decimal("180.00"),
            "reopen_count": 1,
        }
    ]


def test_analyst_reads_views_and_nothing_else(setup: Setup, analyst: str) -> None:
    grant_analyst(setup.ticketing.app.datastore, analyst)
    grant_analyst(setup.ticketing.app.datastore, analyst)  # idempotent

    (role,) = rows(
        setup.database_url,
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb"
        " FROM pg_roles WHERE rolname = %s",
        (analyst,),
    )
    assert not any(role.values())
    assert_analyst_can_read(setup, analyst)
    assert_analyst_cannot_touch_anything_else(setup, analyst)


def test_views_and_grants_survive_a_rebuild(setup: Setup, analyst: str) -> None:
    grant_analyst(setup.ticketing.app.datastore, analyst)
    before = active_schema(setup)

    after = project(setup.ticketing, setup.database_url, rebuild=True)

    assert after != before
    assert active_schema(setup) == after
    # The old build is gone; the views read the new one, the grant holds.
    assert not rows(
        setup.database_url,
        "SELECT 1 FROM pg_namespace WHERE nspname = %s",
        (before,),
    )
    assert_analyst_can_read(setup, analyst)
    assert_analyst_cannot_touch_anything_else(setup, analyst)


def test_a_dropped_analyst_does_not_block_the_next_swap(setup: Setup) -> None:
    role = f"analyst_{secrets.token_hex(4)}"
    grant_analyst(setup.ticketing.app.datastore, role)
    with psycopg.connect(setup.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        try:
            with conn.transaction():
                point_analytics_views(
                    conn.cursor(row_factory=dict_row), active_schema(setup)
                )
        finally:
            conn.execute("DELETE FROM analytics_grants WHERE role = %s", (role,))


@pytest.mark.parametrize("name", ["", "public", "PUBLIC", "pg_monitor", "x" * 64])
def test_reserved_or_invalid_role_names_are_refused(setup: Setup, name: str) -> None:
    with pytest.raises(ValueError):
        grant_analyst(setup.ticketing.app.datastore, name)


def test_a_superuser_is_not_made_an_analyst(setup: Setup) -> None:
    with pytest.raises(ValueError, match="superuser"):
        grant_analyst(setup.ticketing.app.datastore, "postgres")


# -- what an analyst can and cannot do ---------------------------------------


def assert_analyst_can_read(setup: Setup, role: str) -> None:
    for name in VIEW_NAMES:
        found = rows(
            setup.database_url,
            sql.SQL("SELECT count(*) AS n FROM {} WHERE tenant_id = %s").format(
                sql.Identifier("analytics", name)
            ),
            (setup.tenant,),
            role=role,
        )
        assert found[0]["n"] >= 1, name


def assert_analyst_cannot_touch_anything_else(setup: Setup, role: str) -> None:
    build = sql.Identifier(active_schema(setup))
    forbidden = [
        sql.SQL("SELECT * FROM ticketing_events LIMIT 1"),
        sql.SQL("SELECT * FROM analytics_grants"),
        sql.SQL("SELECT * FROM projection_builds"),
        sql.SQL("SELECT * FROM {}.tickets LIMIT 1").format(build),
        sql.SQL("SELECT * FROM {}.daily_metrics LIMIT 1").format(build),
        sql.SQL("INSERT INTO analytics_grants (role) VALUES ('intruder')"),
        sql.SQL(
            "INSERT INTO analytics.daily_tenant_metrics (tenant_id, day, created,"
            " resolved, closed, reopened, escalated, breached)"
            " VALUES ('x', '2024-01-01', 1, 0, 0, 0, 0, 0)"
        ),
        sql.SQL("UPDATE analytics.ticket_facts SET reopen_count = 0"),
        sql.SQL("DELETE FROM analytics.ticket_facts"),
        sql.SQL(
            "INSERT INTO {}.daily_metrics (tenant_id, day) VALUES ('x', '2024-01-01')"
        ).format(build),
        sql.SQL("CREATE TABLE analytics.mine (x int)"),
        sql.SQL("CREATE TABLE public.mine (x int)"),
    ]
    with psycopg.connect(setup.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        for statement in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
