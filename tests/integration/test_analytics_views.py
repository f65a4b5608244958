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

from dotmac.ticketing.domain.enums import TicketPriority, TimeEntryType
from dotmac.ticketing.projections.analytics import grant_analyst, point_analytics_views
from dotmac.ticketing.projections.analytics_views import VIEWS
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.store.inbound_mail import clear_bounce
from tests.conftest import fresh_database
from tests.integration.projecting import SetClock, project
from tests.mail_samples import bounce_report

VIEW_NAMES = sorted(view.name for view in VIEWS)
# The short names the views declare, as format_type() spells them.
SQL_TYPE_NAMES = {"timestamptz": "timestamp with time zone"}


def at(hour: int, minute: int = 0, day: int = 6) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


# A rule asking a supervisor before escalating normal tickets a second time.
SETTINGS = {
    "escalation_rules": [
        {
            "name": "stale_normal",
            "conditions": {"priority": "normal"},
            "level": 2,
            "escalation_time_hours": 1,
            "escalate_to_team": "managers",
            "requires_approval": True,
        }
    ]
}


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
    """Two tickets, projected into a fresh build swapped in with the views.

    The default SLA targets (24x7): high 240 / 1440 minutes, normal
    1440 / 4320; warnings at 80 %.
    """
    clock = SetClock(at(8))
    tenant = f"views-{secrets.token_hex(4)}"
    ticketing = initialize_ticketing(
        {"database_url": own_database_url, "tenants": {tenant: {"settings": SETTINGS}}},
        clock=clock,
    )
    agent = RequestContext(tenant, "carol", frozenset({"agent"}))
    service = ticketing.tickets

    first = service.create_ticket(
        agent, title="VPN down", customer_id="c1", priority=TicketPriority.HIGH
    ).ticket.id
    clock.now = at(8, 5)
    service.assign(agent, first, assignee_id="carol", team="network")
    clock.now = at(8, 20)
    service.add_comment(agent, first, body="Looking")
    # Time logged with the comment (so no later activity): carol's, and a
    # supervisor's entry for dan, and one taken back.
    service.log_time(
        agent, first, minutes=30, billable=True, work_type=TimeEntryType.SUPPORT
    )
    supervisor = RequestContext(tenant, "sue", frozenset({"supervisor"}))
    service.log_time(
        supervisor,
        first,
        minutes=15,
        billable=False,
        work_type=TimeEntryType.INVESTIGATION,
        note="Traced the VPN logs",
        agent_id="dan",
    )
    _, wrong = service.log_time(
        agent, first, minutes=600, billable=True, work_type=TimeEntryType.TRAVEL
    )
    service.remove_time_entry(agent, first, wrong)
    clock.now = at(9, 30)
    service.resolve(agent, first, resolution="Reset", resolution_code="fixed")
    clock.now = at(10)
    service.reopen(agent, first, reason="Down again")
    clock.now = at(11)
    service.resolve(agent, first, resolution="Replaced", resolution_code="fixed")
    clock.now = at(11, 30)
    customer = RequestContext(tenant, "c1", frozenset({"customer"}))
    service.rate_satisfaction(customer, first, rating=4, comment="Quick")

    clock.now = at(9)
    second = service.create_ticket(agent, title="Invoice", customer_id="c2").ticket.id
    clock.now = at(9, 10)
    service.assign(agent, second, assignee_id="carol", team="billing")
    service.log_time(
        agent, second, minutes=20, billable=True, work_type=TimeEntryType.SUPPORT
    )
    clock.now = at(9, 15)
    service.escalate(agent, second, reason="Refund", team="finance")
    clock.now = at(10, 30)
    service.apply_escalation_rule(tenant, second, "stale_normal")
    # The next morning the timers find the first response overdue (due
    # 09:00, warning point 04:12).
    clock.now = at(10, day=7)
    service.check_sla(tenant, second)
    # Mail about the second ticket to its customer bounced, twice.
    for hour in (11, 12):
        clock.now = at(hour, day=7)
        ticketing.inbound.receive(
            tenant, bounce_report("c2@example.com", str(second)), source="test"
        )

    # An agent applies a macro twice to the second ticket (the second time
    # it changes nothing); it touches nothing the other views show.
    clock.now = at(13, day=7)
    macro = ticketing.macros.create(
        RequestContext(tenant, "admin-1", frozenset({"admin"})),
        name="Refund",
        description="",
        actions=[{"type": "set_custom_fields", "values": {"refund": True}}],
    )
    for _ in range(2):
        ticketing.macros.apply(agent, second, macro["id"])

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
    # Every column is documented, in the documented order, of the declared
    # type (the reference analysts read states it).
    for view in VIEWS:
        columns = rows(
            setup.database_url,
            "SELECT a.attname AS name,"
            " format_type(a.atttypid, a.atttypmod) AS type,"
            " col_description(a.attrelid, a.attnum) AS doc"
            " FROM pg_attribute a WHERE a.attrelid = %s::regclass"
            " AND a.attnum > 0 ORDER BY a.attnum",
            (f"analytics.{view.name}",),
        )
        declared = [
            (name, SQL_TYPE_NAMES.get(type_, type_), doc)
            for name, type_, doc in view.columns
        ]
        assert [(c["name"], c["type"], c["doc"]) for c in columns] == declared
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
        "sla_response_due_at": at(12),
        # The second resolution clock, from the reopen at 10:00.
        "sla_resolution_due_at": at(10, day=7),
        "sla_state": "met",
        "sla_policy": "default",
        "sla_settings_version": 1,
        "sla_next_due_at": None,
        "sla_breached": False,
        "sla_response_state": "met",
        "first_response_business_minutes": Decimal("20.00"),
        "sla_resolution_state": "met",
        "resolution_business_minutes": Decimal("60.00"),
        "sla_next_reply_state": None,
        "escalation_pending_level": None,
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
        "sla_response_due_at": at(9, day=7),
        "sla_resolution_due_at": at(9, day=9),
        "sla_state": "breached",
        "sla_policy": "default",
        "sla_settings_version": 1,
        "sla_next_due_at": at(9, day=7),
        "sla_breached": True,
        "sla_response_state": "breached",
        "first_response_business_minutes": None,
        "sla_resolution_state": "running",
        "resolution_business_minutes": None,
        "sla_next_reply_state": None,
        "escalation_pending_level": 2,
    }
    # Free text and e-mail stay out of the analysts' reach.
    assert not {"title", "description", "customer_email"} & set(first)


DAILY_COLUMNS = next(v for v in VIEWS if v.name == "daily_tenant_metrics").columns

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
    "sla_policy",
    "sla_settings_version",
    "sla_next_due_at",
    "sla_breached",
    "sla_response_state",
    "first_response_business_minutes",
    "sla_resolution_state",
    "resolution_business_minutes",
    "sla_next_reply_state",
    "escalation_pending_level",
)


def test_daily_metrics_sla_outcomes_and_agent_performance(setup: Setup) -> None:
    url, tenant = setup.database_url, setup.tenant
    daily = rows(
        url,
        "SELECT * FROM analytics.daily_tenant_metrics WHERE tenant_id = %s"
        " ORDER BY day",
        (tenant,),
    )
    zeros = {column: 0 for column, _, _ in DAILY_COLUMNS}
    assert daily == [
        zeros
        | {
            "tenant_id": tenant,
            "day": date(2024, 5, 6),
            "created": 2,
            "resolved": 2,
            "reopened": 1,
            "escalated": 1,
            "response_met": 1,
            "resolution_met": 2,
        },
        zeros
        | {
            "tenant_id": tenant,
            "day": date(2024, 5, 7),
            "breached": 1,
            "warnings": 1,
        },
    ]
    outcomes = rows(
        url,
        "SELECT number, response_outcome, resolution_outcome, next_reply_outcome,"
        " response_business_minutes, resolution_business_minutes,"
        " response_breached_at"
        " FROM analytics.sla_outcomes WHERE tenant_id = %s ORDER BY number",
        (tenant,),
    )
    assert [tuple(r.values())[1:] for r in outcomes] == [
        ("met", "met", None, Decimal("20.00"), Decimal("60.00"), None),
        ("breached", "pending", None, None, None, at(10, day=7)),
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


def test_sla_clocks_alerts_and_escalation_views(setup: Setup) -> None:
    url, tenant = setup.database_url, setup.tenant
    clocks = rows(
        url,
        "SELECT ticket_id, target, started_at, stopped_at, outcome,"
        " business_minutes, state FROM analytics.sla_clocks WHERE tenant_id = %s"
        " ORDER BY ticket_id = %s, started_at, target",
        (tenant, setup.second),
    )
    assert [tuple(r.values())[1:] for r in clocks] == [
        ("first_response", at(8), at(8, 20), "met", Decimal("20.00"), "met"),
        ("resolution", at(8), at(9, 30), "met", Decimal("90.00"), "met"),
        ("resolution", at(10), at(11), "met", Decimal("60.00"), "met"),
        ("first_response", at(9), None, None, None, "breached"),
        ("resolution", at(9), None, None, None, "running"),
    ]
    alerts = rows(
        url,
        "SELECT target, kind, at, due_at, business_minutes FROM analytics.sla_alerts"
        " WHERE tenant_id = %s ORDER BY version",
        (tenant,),
    )
    assert alerts == [
        {
            "target": "first_response",
            "kind": kind,
            "at": at(10, day=7),
            "due_at": at(9, day=7),
            # Left at the warning (none), used at the breach: 25 hours.
            "business_minutes": Decimal(minutes),
        }
        for kind, minutes in (("warning", "0.00"), ("breach", "1500.00"))
    ]
    (escalation,) = rows(
        url,
        "SELECT level, team, rule FROM analytics.escalations WHERE tenant_id = %s",
        (tenant,),
    )
    assert escalation == {"level": 1, "team": "finance", "rule": None}
    (request,) = rows(
        url,
        "SELECT level, team, rule, requested_at, state, decided_at"
        " FROM analytics.escalation_requests WHERE tenant_id = %s",
        (tenant,),
    )
    assert request == {
        "level": 2,
        "team": "managers",
        "rule": "stale_normal",
        "requested_at": at(10, 30),
        "state": "pending",
        "decided_at": None,
    }


def test_time_entries_and_their_sums(setup: Setup) -> None:
    url, tenant = setup.database_url, setup.tenant
    entries = rows(
        url,
        "SELECT ticket_id, agent_id, minutes, billable, work_type, logged_by,"
        " logged_at, logged_day, customer_id, category, assigned_team"
        " FROM analytics.time_entries WHERE tenant_id = %s"
        " ORDER BY logged_at, agent_id",
        (tenant,),
    )
    assert entries == [
        {
            "ticket_id": setup.first,
            "agent_id": "carol",
            "minutes": 30,
            "billable": True,
            "work_type": "support",
            "logged_by": "carol",
            "logged_at": at(8, 20),
            "logged_day": date(2024, 5, 6),
            "customer_id": "c1",
            "category": "general",
            "assigned_team": "network",
        },
        {
            "ticket_id": setup.first,
            "agent_id": "dan",
            "minutes": 15,
            "billable": False,
            "work_type": "investigation",
            "logged_by": "sue",
            "logged_at": at(8, 20),
            "logged_day": date(2024, 5, 6),
            "customer_id": "c1",
            "category": "general",
            "assigned_team": "network",
        },
        {
            "ticket_id": setup.second,
            "agent_id": "carol",
            "minutes": 20,
            "billable": True,
            "work_type": "support",
            "logged_by": "carol",
            "logged_at": at(9, 10),
            "logged_day": date(2024, 5, 6),
            "customer_id": "c2",
            "category": "general",
            # The team now: escalated to finance after the entry.
            "assigned_team": "finance",
        },
    ]
    by_agent = rows(
        url,
        "SELECT agent_id, entries, tickets, minutes, billable_minutes"
        " FROM analytics.time_by_agent WHERE tenant_id = %s ORDER BY agent_id",
        (tenant,),
    )
    assert [tuple(r.values()) for r in by_agent] == [
        ("carol", 2, 2, 50, 50),
        ("dan", 1, 1, 15, 0),
    ]
    by_customer = rows(
        url,
        "SELECT customer_id, entries, tickets, minutes, billable_minutes"
        " FROM analytics.time_by_customer WHERE tenant_id = %s ORDER BY customer_id",
        (tenant,),
    )
    assert [tuple(r.values()) for r in by_customer] == [
        ("c1", 2, 1, 45, 30),
        ("c2", 1, 1, 20, 20),
    ]


def test_mail_bounces(setup: Setup) -> None:
    found = rows(
        setup.database_url,
        "SELECT * FROM analytics.mail_bounces WHERE tenant_id = %s",
        (setup.tenant,),
    )
    assert found == [
        {
            "tenant_id": setup.tenant,
            "address": "c2@example.com",
            "status": "5.1.1",
            "diagnostic": "smtp; 550 5.1.1 no such user",
            "ticket_id": setup.second,
            "bounce_count": 2,
            "first_bounce_at": at(11, day=7),
            "last_bounce_at": at(12, day=7),
        }
    ]
    # Mail to another address bounces, about no ticket; an admin clears
    # it (DELETE /inbound/bounces/{address}): its row is gone.
    inbound = setup.ticketing.inbound
    inbound.receive(setup.tenant, bounce_report("c9@example.com"), source="test")
    assert bounced(setup) == {"c2@example.com": setup.second, "c9@example.com": None}
    with setup.ticketing.app.transaction() as cur:
        assert clear_bounce(cur, setup.tenant, "c9@example.com")
    assert bounced(setup) == {"c2@example.com": setup.second}


def bounced(setup: Setup) -> dict[str, Any]:
    found = rows(
        setup.database_url,
        "SELECT address, ticket_id FROM analytics.mail_bounces WHERE tenant_id = %s",
        (setup.tenant,),
    )
    return {r["address"]: r["ticket_id"] for r in found}


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


def test_macro_usage(setup: Setup) -> None:
    """Each application that changed a ticket is a row; a no-op is not."""
    found = rows(
        setup.database_url,
        "SELECT * FROM analytics.macro_usage WHERE tenant_id = %s",
        (setup.tenant,),
    )
    (macro,) = setup.ticketing.macros.list(
        RequestContext(setup.tenant, "admin-1", frozenset({"admin"}))
    )
    ticket = setup.ticketing.tickets.find(setup.second)
    assert ticket is not None
    assert found == [
        {
            "tenant_id": setup.tenant,
            "macro_id": macro["id"],
            "macro_name": "Refund",
            "ticket_id": setup.second,
            "applied_by": "carol",
            "applied_at": at(13, day=7),
            "applied_day": date(2024, 5, 7),
            "ticket_version": ticket.version,
            "event_count": 1,  # the update of the custom fields
        }
    ]
