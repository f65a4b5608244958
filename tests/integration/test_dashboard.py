"""Every dashboard figure against a hand-computed expectation.

A small fixed data set is written through the ticket use cases with a
clock set by hand, projected by the real worker, and read back. The
expected values below were worked out on paper from the script in
``data_set`` (times are UTC; the range is 4 and 5 March 2024).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID

import pytest

from dotmac.ticketing.domain.enums import TicketCategory, TicketPriority, TicketStatus
from dotmac.ticketing.projections.dashboard import dashboard
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.schemas import DashboardRead
from dotmac.ticketing.schemas.analytics import (
    AgentRowRead,
    DayCountRead,
    DurationStatsRead,
    EscalationRequestsRead,
    EscalationsRead,
    LevelCountRead,
    ReopenRateRead,
    SlaComplianceRead,
    TeamCountRead,
)
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database
from tests.integration.projecting import SetClock, project

T = TypeVar("T")

START = datetime(2024, 3, 4, tzinfo=UTC)
END = datetime(2024, 3, 6, tzinfo=UTC)
NO_CLOCKS = SlaComplianceRead(met=0, breached=0, stopped=0, pct=None)
NO_DURATIONS = DurationStatsRead(count=0, mean=None, median=None, p90=None)
NO_REQUESTS = EscalationRequestsRead(requested=0, approved=0, rejected=0, pending=0)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


@dataclass
class World:
    ticketing: Ticketing
    read_model: ReadModel
    tenant: str


class Script:
    """Runs use cases at chosen times, as chosen people, in one tenant."""

    def __init__(self, ticketing: Ticketing, clock: SetClock, tenant: str) -> None:
        self.tickets = ticketing.tickets
        self.clock = clock
        self.tenant = tenant

    def staff(self, user: str) -> RequestContext:
        return RequestContext(self.tenant, user, frozenset({"agent"}))

    def customer(self, user: str) -> RequestContext:
        return RequestContext(self.tenant, user, frozenset({"customer"}))

    def at(self, when: datetime, command: Callable[..., T], *args: Any, **kw: Any) -> T:
        self.clock.now = when
        return command(*args, **kw)

    def create(
        self,
        when: datetime,
        priority: TicketPriority = TicketPriority.NORMAL,
        category: TicketCategory = TicketCategory.GENERAL,
        customer: str = "cust-1",
    ) -> UUID:
        result = self.at(
            when,
            self.tickets.create_ticket,
            self.staff("intake"),
            title="Help",
            priority=priority,
            category=category,
            customer_id=customer,
        )
        return result.ticket.id

    def assign(
        self, when: datetime, ticket: UUID, agent: str, team: str | None = None
    ) -> None:
        self.at(
            when,
            self.tickets.assign,
            self.staff("lead"),
            ticket,
            assignee_id=agent,
            team=team,
        )

    def reply(
        self, when: datetime, ticket: UUID, agent: str, internal: bool = False
    ) -> None:
        self.at(
            when,
            self.tickets.add_comment,
            self.staff(agent),
            ticket,
            body="On it",
            internal=internal,
        )

    def resolve(self, when: datetime, ticket: UUID, agent: str) -> None:
        self.at(
            when,
            self.tickets.resolve,
            self.staff(agent),
            ticket,
            resolution="Fixed",
            resolution_code="fixed",
        )

    def reopen(self, when: datetime, ticket: UUID) -> None:
        self.at(
            when, self.tickets.reopen, self.customer("cust-1"), ticket, reason="Again"
        )

    def escalate(self, when: datetime, ticket: UUID, team: str | None = None) -> None:
        self.at(
            when,
            self.tickets.escalate,
            self.staff("lead"),
            ticket,
            reason="Needs more hands",
            team=team,
        )


def data_set(script: Script) -> None:
    """Tickets T0..T9 of the main tenant; T1..T8 are created in range."""
    s, P, C = script, TicketPriority, TicketCategory
    # T0: created the day before the range; open; escalated in range.
    t0 = s.create(at(3, 22), P.NORMAL, C.GENERAL)
    s.assign(at(3, 22, 30), t0, "alice", "network")
    s.escalate(at(4, 8), t0, "billing")  # -> billing, assignee dropped

    # T1: first response 30 min, resolved after 120 min, then closed.
    t1 = s.create(at(4, 9), P.HIGH, C.TECHNICAL_SUPPORT)
    s.assign(at(4, 9, 10), t1, "alice", "network")
    s.reply(at(4, 9, 30), t1, "alice")
    s.resolve(at(4, 11), t1, "alice")
    s.at(at(4, 12), s.tickets.close, s.staff("alice"), t1)

    # T2: response 20; resolved, reopened, resolved again next day (1440).
    t2 = s.create(at(4, 10), P.NORMAL, C.BILLING)
    s.assign(at(4, 10, 5), t2, "bob", "billing")
    s.reply(at(4, 10, 20), t2, "bob")
    s.resolve(at(4, 14), t2, "bob")
    s.reopen(at(4, 15), t2)
    s.resolve(at(5, 10), t2, "bob")

    # T3: response 15; escalated from network to billing, then given to bob.
    t3 = s.create(at(4, 11), P.URGENT, C.TECHNICAL_SUPPORT)
    s.assign(at(4, 11, 1), t3, "alice", "network")
    s.reply(at(4, 11, 15), t3, "alice")
    s.escalate(at(4, 12), t3, "billing")
    s.assign(at(4, 13), t3, "bob")

    # T4: never assigned; the customer's own comment is no first response.
    t4 = s.create(at(4, 15), P.LOW, C.ACCOUNT)
    s.at(
        at(4, 15, 30),
        s.tickets.add_comment,
        s.customer("cust-1"),
        t4,
        body="Any news?",
    )

    # T5: an internal note first (no response), public reply at 60, done at 90.
    t5 = s.create(at(5, 8), P.NORMAL, C.BILLING)
    s.assign(at(5, 8, 30), t5, "bob", "billing")
    s.reply(at(5, 8, 40), t5, "bob", internal=True)
    s.reply(at(5, 9), t5, "bob")
    s.resolve(at(5, 9, 30), t5, "bob")

    # T6: response 45; resolved at 240, reopened: no resolution time now.
    t6 = s.create(at(5, 9), P.HIGH, C.TECHNICAL_SUPPORT)
    s.assign(at(5, 9, 5), t6, "alice", "network")
    s.reply(at(5, 9, 45), t6, "alice")
    s.resolve(at(5, 13), t6, "alice")
    s.reopen(at(5, 14), t6)

    # T7: "escalated" twice within network (alice keeps it): that changes
    # nothing, so nothing is recorded or counted; response 70, pending.
    t7 = s.create(at(5, 12), P.CRITICAL, C.COMPLAINT)
    s.assign(at(5, 12, 2), t7, "alice", "network")
    s.escalate(at(5, 12, 30), t7)
    s.escalate(at(5, 13), t7)
    s.reply(at(5, 13, 10), t7, "alice")
    s.at(
        at(5, 13, 20),
        s.tickets.change_status,
        s.staff("alice"),
        t7,
        TicketStatus.PENDING,
    )

    # T8: bob without a team, in progress.
    t8 = s.create(at(5, 16), P.NORMAL, C.GENERAL)
    s.assign(at(5, 16, 10), t8, "bob")
    s.at(
        at(5, 16, 20),
        s.tickets.change_status,
        s.staff("bob"),
        t8,
        TicketStatus.IN_PROGRESS,
    )

    # T9: created just after the range ends.
    s.create(at(6, 1), P.NORMAL, C.GENERAL)


def other_tenant(script: Script) -> None:
    """Activity in range that must not show up for the main tenant."""
    o1 = script.create(at(4, 10, 30), TicketPriority.URGENT, TicketCategory.BILLING)
    script.assign(at(4, 10, 40), o1, "alice", "network")
    script.reply(at(4, 10, 50), o1, "alice")
    script.escalate(at(4, 11), o1, "billing")
    script.resolve(at(5, 11), o1, "alice")
    script.create(at(5, 11), TicketPriority.LOW, TicketCategory.ACCOUNT)


@pytest.fixture(scope="module")
def own_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database for this module alone: its worker must not meet another."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def world(own_database_url: str) -> Iterator[World]:
    clock = SetClock(at(1, 0))
    ticketing = initialize_ticketing({"database_url": own_database_url}, clock=clock)
    suffix = secrets.token_hex(4)
    tenant, other = f"dash-{suffix}", f"other-{suffix}"
    data_set(Script(ticketing, clock, tenant))
    other_tenant(Script(ticketing, clock, other))
    project(ticketing, own_database_url)
    try:
        yield World(ticketing, ReadModel(ticketing.app.datastore), tenant)
    finally:
        ticketing.close()


def test_whole_tenant(world: World) -> None:
    d = dashboard(world.read_model, tenant_id=world.tenant, start=START, end=END)

    assert (d.tenant_id, d.start, d.end, d.team) == (world.tenant, START, END, None)
    assert d.created == 8
    assert d.by_status == {
        "new": 1,
        "open": 2,
        "in_progress": 1,
        "pending": 1,
        "on_hold": 0,
        "resolved": 2,
        "closed": 1,
    }
    assert d.by_priority == {
        "low": 1,
        "normal": 3,
        "high": 2,
        "urgent": 1,
        "critical": 1,
    }
    assert d.by_category == {
        "technical_support": 3,
        "billing": 2,
        "account": 1,
        "service_request": 0,
        "complaint": 1,
        "general": 1,
    }
    assert d.by_team == [
        TeamCountRead(team="billing", count=3),
        TeamCountRead(team="network", count=3),
        TeamCountRead(team=None, count=2),
    ]
    # Events per day: T2's first resolution counts on the 4th, its second on
    # the 5th, and T6's resolution still counts although it was reopened.
    assert d.per_day_source == "daily_metrics"
    assert d.per_day == [
        DayCountRead(day=date(2024, 3, 4), created=4, resolved=2),
        DayCountRead(day=date(2024, 3, 5), created=4, resolved=3),
    ]
    # T0, T3, T4, T6, T7, T8 and T9: active now, whenever created.
    assert d.open_backlog == 7
    # 15, 20, 30, 45, 60, 70 minutes.
    assert d.first_response_minutes == DurationStatsRead(
        count=6, mean=40.0, median=37.5, p90=65.0
    )
    # T5 90, T1 120, T2 1440 (T6 was reopened: unresolved).
    assert d.resolution_minutes == DurationStatsRead(
        count=3, mean=550.0, median=120.0, p90=1176.0
    )
    # SLA clocks on the default 24x7 targets (nobody configured any), by
    # when they stopped. First response: T1, T2, T3, T5, T6 in time; T7
    # (critical, 15 minutes) answered after 70.
    assert d.sla_response == SlaComplianceRead(met=5, breached=1, stopped=0, pct=83.33)
    # Resolution: T1, T2 (twice: the reopen restarts the clock), T5, T6.
    assert d.sla_resolution == SlaComplianceRead(
        met=5, breached=0, stopped=0, pct=100.0
    )
    assert d.sla_next_reply == NO_CLOCKS
    # Around the clock, business minutes are the wall-clock ones.
    assert d.first_response_business_minutes == d.first_response_minutes
    # T5 90, T1 120, T2 240 and 1140 (15:00 to 10:00), T6 240.
    assert d.resolution_business_minutes == DurationStatsRead(
        count=5, mean=366.0, median=240.0, p90=780.0
    )
    assert d.next_reply_business_minutes == NO_DURATIONS
    # No timer ran: nothing warned or breached while running.
    assert (d.breaches, d.warnings, d.open_breached, d.open_at_risk) == (0, 0, 0, 0)
    # T0 (created before the range) and T3 to billing; T7's within network
    # changed nothing and are not escalations.
    assert d.escalations == EscalationsRead(
        total=2,
        by_team=[TeamCountRead(team="billing", count=2)],
        by_level=[LevelCountRead(level=1, count=2)],
        automatic=0,
    )
    assert d.escalation_requests == NO_REQUESTS
    # Reopened T2, T6 of resolved-at-least-once T1, T2, T5, T6.
    assert d.reopen_rate == ReopenRateRead(reopened=2, resolved=4, pct=50.0)
    assert d.agents == [
        AgentRowRead(
            assignee_id="alice", assigned=3, resolved=1, median_resolution_minutes=120.0
        ),
        AgentRowRead(
            assignee_id="bob", assigned=4, resolved=2, median_resolution_minutes=765.0
        ),
    ]


def test_one_team(world: World) -> None:
    d = dashboard(
        world.read_model, tenant_id=world.tenant, start=START, end=END, team="network"
    )

    assert d.team == "network"
    # T1, T6, T7.
    assert d.created == 3
    assert d.by_status == {
        "new": 0,
        "open": 1,
        "in_progress": 0,
        "pending": 1,
        "on_hold": 0,
        "resolved": 0,
        "closed": 1,
    }
    assert d.by_priority == {
        "low": 0,
        "normal": 0,
        "high": 2,
        "urgent": 0,
        "critical": 1,
    }
    assert d.by_category == {
        "technical_support": 2,
        "billing": 0,
        "account": 0,
        "service_request": 0,
        "complaint": 1,
        "general": 0,
    }
    assert d.by_team == [TeamCountRead(team="network", count=3)]
    # From the tickets table: T6's resolution was undone by its reopen.
    assert d.per_day_source == "tickets"
    assert d.per_day == [
        DayCountRead(day=date(2024, 3, 4), created=1, resolved=1),
        DayCountRead(day=date(2024, 3, 5), created=2, resolved=0),
    ]
    # T6 and T7 (T0 went to billing, T1 is closed).
    assert d.open_backlog == 2
    # 30, 45, 70.
    assert d.first_response_minutes == DurationStatsRead(
        count=3, mean=48.33, median=45.0, p90=65.0
    )
    assert d.resolution_minutes == DurationStatsRead(
        count=1, mean=120.0, median=120.0, p90=120.0
    )
    # T1 30, T6 45 in time; T7 late (70).
    assert d.sla_response == SlaComplianceRead(met=2, breached=1, stopped=0, pct=66.67)
    # T1 120, T6 240 (before its reopen).
    assert d.sla_resolution == SlaComplianceRead(
        met=2, breached=0, stopped=0, pct=100.0
    )
    assert d.resolution_business_minutes == DurationStatsRead(
        count=2, mean=180.0, median=180.0, p90=228.0
    )
    assert d.breaches == 0
    # T7's escalations within network changed nothing: none counts.
    assert d.escalations == EscalationsRead(
        total=0, by_team=[], by_level=[], automatic=0
    )
    # T6 of T1, T6.
    assert d.reopen_rate == ReopenRateRead(reopened=1, resolved=2, pct=50.0)
    assert d.agents == [
        AgentRowRead(
            assignee_id="alice", assigned=3, resolved=1, median_resolution_minutes=120.0
        )
    ]


def test_team_path_counts_latest_resolutions(world: World) -> None:
    d = dashboard(
        world.read_model, tenant_id=world.tenant, start=START, end=END, team="billing"
    )
    # T2 (latest resolution on the 5th), T3, T5; T0 was created before.
    assert d.per_day == [
        DayCountRead(day=date(2024, 3, 4), created=2, resolved=0),
        DayCountRead(day=date(2024, 3, 5), created=1, resolved=2),
    ]
    assert d.open_backlog == 2  # T0 and T3
    assert d.escalations == EscalationsRead(
        total=2,
        by_team=[TeamCountRead(team="billing", count=2)],
        by_level=[LevelCountRead(level=1, count=2)],
        automatic=0,
    )


def test_range_bounds_are_start_inclusive_end_exclusive(world: World) -> None:
    d = dashboard(
        world.read_model,
        tenant_id=world.tenant,
        start=at(4, 10),
        end=at(5, 9),
    )
    # T2 (at 10:00, included), T3, T4, T5; T6 at 09:00 on the 5th is not.
    assert d.created == 4
    # The per-day series covers the whole days the range touches.
    assert [day.day for day in d.per_day] == [date(2024, 3, 4), date(2024, 3, 5)]
    # EscalationsRead in range: T3 at 12:00 (T0's at 08:00 is before it).
    assert d.escalations.total == 1


def test_an_empty_range_and_an_unknown_tenant(world: World) -> None:
    d = dashboard(
        world.read_model,
        tenant_id=f"nobody-{secrets.token_hex(4)}",
        start=START,
        end=END,
    )
    assert d.created == 0
    assert set(d.by_status.values()) == {0}
    assert d.by_team == []
    assert d.per_day == [
        DayCountRead(day=date(2024, 3, 4), created=0, resolved=0),
        DayCountRead(day=date(2024, 3, 5), created=0, resolved=0),
    ]
    assert d.open_backlog == 0
    assert d.first_response_minutes == DurationStatsRead(
        count=0, mean=None, median=None, p90=None
    )
    assert d.escalations == EscalationsRead(
        total=0, by_team=[], by_level=[], automatic=0
    )
    assert d.sla_response == d.sla_resolution == d.sla_next_reply == NO_CLOCKS
    assert d.resolution_business_minutes == NO_DURATIONS
    assert d.escalation_requests == NO_REQUESTS
    assert d.reopen_rate == ReopenRateRead(reopened=0, resolved=0, pct=None)
    assert d.agents == []


def test_response_model_reads_the_dashboard(world: World) -> None:
    d = dashboard(world.read_model, tenant_id=world.tenant, start=START, end=END)
    body = DashboardRead.model_validate(d).model_dump(mode="json")
    assert body["by_status"]["closed"] == 1
    assert body["by_team"][2] == {"team": None, "count": 2}
    assert body["per_day"][0] == {"day": "2024-03-04", "created": 4, "resolved": 2}
    assert body["resolution_minutes"]["p90"] == 1176.0
    assert body["sla_response"] == {
        "met": 5,
        "breached": 1,
        "stopped": 0,
        "pct": 83.33,
    }
    assert body["escalations"]["by_level"] == [{"level": 1, "count": 2}]
    assert body["agents"][1]["assignee_id"] == "bob"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2024, 3, 4), END, "time zone"),
        (END, START, "after start"),
        (START, datetime(2026, 1, 1, tzinfo=UTC), "limited"),
    ],
)
def test_unusable_ranges_are_refused(
    world: World, start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dashboard(world.read_model, tenant_id=world.tenant, start=start, end=end)
