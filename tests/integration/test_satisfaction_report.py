"""Customer satisfaction (CSAT) in the dashboard and in ``analytics.satisfaction``.

Hand-computed from the script below (times UTC; the range is 5 March 2024):
A (network, alice) rated 5, B (network, bob) 3, C (billing, carol) 4 and
then 1 (its latest rating counts), all in range; D (no team, dave) rated 5
the next day, outside it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from dotmac.ticketing.projections.dashboard import dashboard
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.schemas import DashboardRead
from dotmac.ticketing.schemas.analytics import (
    AgentSatisfactionRead,
    SatisfactionRead,
    TeamSatisfactionRead,
)
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database
from tests.integration.projecting import SetClock, project

START = datetime(2024, 3, 5, tzinfo=UTC)
END = datetime(2024, 3, 6, tzinfo=UTC)


def at(day: int, hour: int) -> datetime:
    return datetime(2024, 3, day, hour, tzinfo=UTC)


@dataclass
class World:
    ticketing: Ticketing
    database_url: str
    tenant: str
    tickets: dict[str, UUID]


def rated_ticket(
    ticketing: Ticketing,
    clock: SetClock,
    tenant: str,
    *,
    agent: str,
    team: str | None,
    ratings: list[tuple[datetime, int]],
) -> UUID:
    tickets = ticketing.tickets
    staff = RequestContext(tenant, agent, frozenset({"agent"}))
    customer = RequestContext(tenant, f"cust-{agent}", frozenset({"customer"}))
    clock.now = at(5, 8)
    ticket = tickets.create_customer_ticket(
        tenant_id=tenant, customer_id=customer.user_id, title="Slow line"
    ).ticket.id
    tickets.assign(staff, ticket, assignee_id=agent, team=team)
    tickets.resolve(staff, ticket, resolution="Reset", resolution_code="fixed")
    for when, rating in ratings:
        clock.now = when
        tickets.rate_satisfaction(customer, ticket, rating=rating, comment="thanks")
    return ticket


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[World]:
    with fresh_database(postgres_server_url) as url:
        clock = SetClock(at(5, 8))
        ticketing = initialize_ticketing({"database_url": url}, clock=clock)
        tenant = f"csat-{secrets.token_hex(4)}"

        def rated(agent: str, team: str | None, *ratings: tuple[datetime, int]) -> UUID:
            return rated_ticket(
                ticketing, clock, tenant, agent=agent, team=team, ratings=list(ratings)
            )

        tickets = {
            "A": rated("alice", "network", (at(5, 11), 5)),
            "B": rated("bob", "network", (at(5, 12), 3)),
            "C": rated("carol", "billing", (at(5, 13), 4), (at(5, 14), 1)),
            "D": rated("dave", None, (at(6, 2), 5)),
        }
        # Another tenant's rating in range must not count.
        rated_ticket(
            ticketing,
            clock,
            f"{tenant}-other",
            agent="alice",
            team="network",
            ratings=[(at(5, 11), 1)],
        )
        project(ticketing, url)
        try:
            yield World(ticketing, url, tenant, tickets)
        finally:
            ticketing.close()


def read_model(world: World) -> ReadModel:
    return ReadModel(world.ticketing.app.datastore)


def test_the_dashboard_reports_csat_per_tenant_team_and_agent(world: World) -> None:
    d = dashboard(read_model(world), tenant_id=world.tenant, start=START, end=END)

    # A 5, B 3, C 1 (latest): one of three satisfied.
    assert d.satisfaction == SatisfactionRead(
        responses=3,
        average=3.0,
        csat_pct=33.33,
        by_team=[
            TeamSatisfactionRead(
                responses=1, average=1.0, csat_pct=0.0, team="billing"
            ),
            TeamSatisfactionRead(
                responses=2, average=4.0, csat_pct=50.0, team="network"
            ),
        ],
        by_agent=[
            AgentSatisfactionRead(
                responses=1, average=5.0, csat_pct=100.0, assignee_id="alice"
            ),
            AgentSatisfactionRead(
                responses=1, average=3.0, csat_pct=0.0, assignee_id="bob"
            ),
            AgentSatisfactionRead(
                responses=1, average=1.0, csat_pct=0.0, assignee_id="carol"
            ),
        ],
    )
    assert DashboardRead.model_validate(d).satisfaction.csat_pct == 33.33


def test_a_team_filter_and_another_period(world: World) -> None:
    network = dashboard(
        read_model(world), tenant_id=world.tenant, start=START, end=END, team="network"
    ).satisfaction
    assert (network.responses, network.average, network.csat_pct) == (2, 4.0, 50.0)
    assert [a.assignee_id for a in network.by_agent] == ["alice", "bob"]

    next_day = dashboard(
        read_model(world),
        tenant_id=world.tenant,
        start=END,
        end=datetime(2024, 3, 7, tzinfo=UTC),
    ).satisfaction
    # D: rated by the time of the rating; no team, so in the total only.
    assert (next_day.responses, next_day.csat_pct, next_day.by_team) == (1, 100.0, [])
    assert [a.assignee_id for a in next_day.by_agent] == ["dave"]

    empty = dashboard(
        read_model(world),
        tenant_id=world.tenant,
        start=datetime(2024, 3, 1, tzinfo=UTC),
        end=START,
    ).satisfaction
    assert empty == SatisfactionRead(
        responses=0, average=None, csat_pct=None, by_team=[], by_agent=[]
    )


def test_the_analytics_view_has_each_rated_ticket_once(world: World) -> None:
    with psycopg.connect(world.database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT ticket_id, assigned_team, assignee_id, rating, satisfied,"
            " rated_at, rated_day FROM analytics.satisfaction"
            " WHERE tenant_id = %s ORDER BY rated_at",
            (world.tenant,),
        ).fetchall()
        per_team = conn.execute(
            "SELECT assigned_team, count(*) AS n,"
            " round(100.0 * count(*) FILTER (WHERE satisfied) / count(*), 2) AS csat"
            " FROM analytics.satisfaction WHERE tenant_id = %s"
            " AND rated_at >= %s AND rated_at < %s"
            " GROUP BY assigned_team ORDER BY assigned_team",
            (world.tenant, START, END),
        ).fetchall()

    t = world.tickets
    assert [(r["ticket_id"], r["rating"], r["satisfied"]) for r in rows] == [
        (t["A"], 5, True),
        (t["B"], 3, False),
        (t["C"], 1, False),
        (t["D"], 5, True),
    ]
    assert rows[2]["rated_at"] == at(5, 14)
    assert str(rows[3]["rated_day"]) == "2024-03-06"
    # The same figures as the dashboard's, by plain SQL.
    assert [(r["assigned_team"], r["n"], float(r["csat"])) for r in per_team] == [
        ("billing", 1, 0.0),
        ("network", 2, 50.0),
    ]
