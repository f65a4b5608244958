"""SLA clocks and escalation approvals in the read model, lists and dashboard.

Six tickets of one tenant live through two days of fake time on an office
calendar (Monday to Friday, 09:00 to 17:00 UTC) with small targets, so
every figure below can be worked out on paper. The timers' commands
(``check_sla``, ``apply_escalation_rule``) are called by hand at chosen
times, as the timers consumer would call them; the real projection worker
then projects the events.

Targets (business minutes; warnings at 50 %):

    normal   first response 60, resolution 240, next reply 60
    high     first response 30, resolution 120

Monday is 2024-03-04. The script, and what it does to the clocks:

    A normal  Mon 09:00 created (FR due 10:00, RES due 13:00, RES warn 11:00)
              09:40 reply: FR met, 40 min; 11:30 timers: RES warning;
              12:00 resolved: RES met, 180 min.
    B normal  Mon 16:40 created (FR due Tue 09:40, warn 09:10;
              RES due Tue 12:40, warn Tue 10:40)
              Tue 09:50 timers: FR warning and breach (70 min used);
              10:00 reply: FR breached, 80 min; 10:05 escalated by a person
              to Tier2; 10:30 the customer writes: next reply due 11:30;
              11:00 pending: RES paused (140 min used); 11:10 reply: next
              reply met, 40 min; 13:00 in progress: RES resumed after 120
              paused minutes, due 14:40; 14:00 timers: RES warning
              (40 min left). Open, state warning.
    C high    Mon 10:00 created (FR due 10:30, RES due 12:00); 12:30 timers:
              FR and RES warning and breach; 12:30 the approval rule (2 h
              since creation) asks for level 1, Tier2. Open, breached.
    D high    Mon 11:00 created (FR due 11:30, RES due 13:00); 11:20 reply:
              FR met, 20 min; 13:30 rule asks; 14:00 rejected;
              15:00 resolved late: RES breached, 240 min (no timer ran).
    E high    Mon 09:00 created (FR due 09:30, RES due 11:00); 09:10 reply:
              FR met, 10 min; 11:30 rule asks; 11:45 approved: escalated to
              Tier2 by the rule; Tue 09:30 resolved: RES breached, 510 min.
    F normal  Mon 09:00 created; 09:50 resolved without a reply: RES met,
              50 min, FR stopped (no goal); 11:00 reopened: a new RES clock
              (due 15:00); 14:00 resolved: RES met, 180 min.
    G normal  Tue 09:00 created; 09:20 merged into C: both clocks stopped
              without their goal.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID

import pytest

from dotmac.ticketing.domain.enums import TicketPriority, TicketStatus
from dotmac.ticketing.projections.dashboard import dashboard
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.projections.ticket_queries import TicketFilter, list_tickets
from dotmac.ticketing.schemas import DashboardRead
from dotmac.ticketing.schemas.analytics import (
    DurationStatsRead,
    EscalationRequestsRead,
    EscalationsRead,
    LevelCountRead,
    SlaComplianceRead,
    TeamCountRead,
)
from dotmac.ticketing.service.api.query_routes import summary
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database
from tests.event_samples import tickets_with_every_event
from tests.integration.projecting import SetClock, project

T = TypeVar("T")

RULE = "high_needs_approval"
OFFICE = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
SETTINGS = {
    "sla_config": {
        "normal": {"response": 60, "resolution": 240},
        "high": {"response": 30, "resolution": 120},
        "warning_percent": 50,
    },
    "business_hours": {"timezone": "UTC", "week": OFFICE, "holidays": []},
    "escalation_rules": [
        {
            "name": RULE,
            "conditions": {"priority": "high"},
            "level": 1,
            "escalation_time_hours": 2,
            "escalate_to_team": "Tier2",
            "requires_approval": True,
        }
    ],
}

WHOLE = (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 6, tzinfo=UTC))
MONDAY = (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC))


def mon(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 4, hour, minute, tzinfo=UTC)


def tue(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 5, hour, minute, tzinfo=UTC)


@dataclass
class World:
    ticketing: Ticketing
    read_model: ReadModel
    tenant: str
    ids: dict[str, UUID]
    edge_tenant: str
    edge_ids: dict[str, UUID]

    def name_of(self, ticket_id: UUID) -> str:
        names = {**self.ids, **self.edge_ids}
        return next(name for name, tid in names.items() if tid == ticket_id)


class Desk:
    """Use cases at chosen times: people, and the timers' commands."""

    def __init__(self, ticketing: Ticketing, clock: SetClock, tenant: str) -> None:
        self.tickets = ticketing.tickets
        self.clock = clock
        self.tenant = tenant
        self.ids: dict[str, UUID] = {}

    def person(self, user: str, role: str = "agent") -> RequestContext:
        return RequestContext(self.tenant, user, frozenset({role}))

    def at(self, when: datetime, command: Callable[..., T], *args: Any, **kw: Any) -> T:
        self.clock.now = when
        return command(*args, **kw)

    def create(self, name: str, when: datetime, priority: TicketPriority) -> UUID:
        result = self.at(
            when,
            self.tickets.create_ticket,
            self.person("intake"),
            title=f"Ticket {name}",
            priority=priority,
            customer_id="cust-1",
        )
        self.ids[name] = result.ticket.id
        return result.ticket.id

    def assign(self, when: datetime, name: str, agent: str) -> None:
        self.at(
            when,
            self.tickets.assign,
            self.person("lead"),
            self.ids[name],
            assignee_id=agent,
            team="Tier1",
        )

    def reply(self, when: datetime, name: str, author: str = "agent-1") -> None:
        role = "customer" if author.startswith("cust") else "agent"
        self.at(
            when,
            self.tickets.add_comment,
            self.person(author, role),
            self.ids[name],
            body="Hello",
        )

    def status(self, when: datetime, name: str, status: TicketStatus) -> None:
        self.at(
            when,
            self.tickets.change_status,
            self.person("agent-1"),
            self.ids[name],
            status,
        )

    def resolve(self, when: datetime, name: str) -> None:
        self.at(
            when,
            self.tickets.resolve,
            self.person("agent-1"),
            self.ids[name],
            resolution="Done",
            resolution_code="fixed",
        )

    def timers(self, when: datetime, name: str) -> None:
        self.at(when, self.tickets.check_sla, self.tenant, self.ids[name])

    def rule(self, when: datetime, name: str) -> None:
        self.at(
            when, self.tickets.apply_escalation_rule, self.tenant, self.ids[name], RULE
        )

    def decide(self, when: datetime, name: str, *, approve: bool) -> None:
        command = (
            self.tickets.approve_escalation
            if approve
            else self.tickets.reject_escalation
        )
        self.at(when, command, self.person("sue", "supervisor"), self.ids[name])


def two_days(d: Desk) -> None:
    """The script of the module docstring, in time order per ticket."""
    P, S = TicketPriority, TicketStatus
    d.create("A", mon(9), P.NORMAL)
    d.assign(mon(9, 5), "A", "alice")
    d.reply(mon(9, 40), "A")
    d.timers(mon(11, 30), "A")
    d.resolve(mon(12), "A")

    d.create("B", mon(16, 40), P.NORMAL)
    d.assign(mon(16, 45), "B", "bob")
    d.timers(tue(9, 50), "B")
    d.reply(tue(10), "B")
    d.at(
        tue(10, 5),
        d.tickets.escalate,
        d.person("lead"),
        d.ids["B"],
        reason="Customer is waiting",
        team="Tier2",
    )
    d.reply(tue(10, 30), "B", author="cust-1")
    d.status(tue(11), "B", S.PENDING)
    d.reply(tue(11, 10), "B")
    d.status(tue(13), "B", S.IN_PROGRESS)
    d.timers(tue(14), "B")

    d.create("C", mon(10), P.HIGH)
    d.assign(mon(10, 1), "C", "carol")
    d.timers(mon(12, 30), "C")
    d.rule(mon(12, 30), "C")

    d.create("D", mon(11), P.HIGH)
    d.assign(mon(11, 2), "D", "dave")
    d.reply(mon(11, 20), "D")
    d.rule(mon(13, 30), "D")
    d.decide(mon(14), "D", approve=False)
    d.resolve(mon(15), "D")

    d.create("E", mon(9), P.HIGH)
    d.assign(mon(9, 1), "E", "erin")
    d.reply(mon(9, 10), "E")
    d.rule(mon(11, 30), "E")
    d.decide(mon(11, 45), "E", approve=True)
    d.resolve(tue(9, 30), "E")

    d.create("F", mon(9), P.NORMAL)
    d.resolve(mon(9, 50), "F")
    d.at(
        mon(11),
        d.tickets.reopen,
        d.person("cust-1", "customer"),
        d.ids["F"],
        reason="Not fixed",
    )
    d.resolve(mon(14), "F")

    d.create("G", tue(9), P.NORMAL)
    d.at(tue(9, 20), d.tickets.merge, d.person("agent-1"), d.ids["G"], into=d.ids["C"])


def edge_cases(d: Desk) -> None:
    """Timers that come late, and priorities changed after a warning.

    H normal  Mon 09:00 created; 09:30 reply; 13:30 pending: the resolution
              due time (13:00) and warning point (11:00) had passed, so they
              stay; 13:40 the late timers record the warning and the breach.
    I high    Mon 09:00 created; 09:40 timers: FR warning and breach; 09:45
              priority low: FR due much later, but a breach stays breached.
    J high    Mon 09:00 created; 09:20 timers: FR warning (due 09:30); 09:25
              priority normal: FR due 10:00, warning point 09:30 still ahead,
              so the warning is to be given again: running.
    """
    P, S = TicketPriority, TicketStatus
    d.create("H", mon(9), P.NORMAL)
    d.reply(mon(9, 30), "H")
    d.status(mon(13, 30), "H", S.PENDING)
    d.timers(mon(13, 40), "H")

    for name, timers_at, lower_at, lower_to in (
        ("I", mon(9, 40), mon(9, 45), P.LOW),
        ("J", mon(9, 20), mon(9, 25), P.NORMAL),
    ):
        d.create(name, mon(9), P.HIGH)
        d.timers(timers_at, name)
        d.at(
            lower_at,
            d.tickets.update_ticket,
            d.person("agent-1"),
            d.ids[name],
            priority=lower_to,
        )


@pytest.fixture(scope="module")
def own_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database for this module alone: its worker must not meet another."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def world(own_database_url: str) -> Iterator[World]:
    tenant = f"sla-{secrets.token_hex(4)}"
    edge = f"edge-{tenant}"
    clock = SetClock(mon(0))
    ticketing = initialize_ticketing(
        {
            "database_url": own_database_url,
            "tenants": {t: {"settings": SETTINGS} for t in (tenant, edge)},
        },
        clock=clock,
    )
    desk = Desk(ticketing, clock, tenant)
    two_days(desk)
    edges = Desk(ticketing, clock, edge)
    edge_cases(edges)
    # Every event type the domain has, on the office calendar of Berlin.
    ticketing.app.save_aggregates(*tickets_with_every_event(f"samples-{tenant}"))
    project(ticketing, own_database_url)
    try:
        yield World(
            ticketing,
            ReadModel(ticketing.app.datastore),
            tenant,
            desk.ids,
            edge,
            edges.ids,
        )
    finally:
        ticketing.close()


def ticket_rows(world: World, tenant: str | None = None) -> dict[str, dict[str, Any]]:
    found = world.read_model.run(
        "SELECT * FROM tickets WHERE tenant_id = %s", (tenant or world.tenant,)
    )
    return {world.name_of(row["ticket_id"]): row for row in found}


def clock_of(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A target's columns of a ticket row, without the prefix."""
    return {
        column.removeprefix(f"{prefix}_"): value
        for column, value in row.items()
        if column.startswith(f"{prefix}_")
    }


# -- the tickets table ----------------------------------------------------------


def test_every_ticket_is_measured_against_the_tenants_policy(world: World) -> None:
    rows = ticket_rows(world)
    assert {(r["sla_policy"], r["sla_settings_version"]) for r in rows.values()} == {
        ("default", 1)
    }
    assert {name: r["sla_state"] for name, r in rows.items()} == {
        "A": "met",
        "B": "warning",
        "C": "breached",
        "D": "breached",
        "E": "breached",
        "F": "met",
        "G": "stopped",
    }
    assert {name: r["sla_breached"] for name, r in rows.items()} == {
        "A": False,
        "B": True,
        "C": True,
        "D": True,
        "E": True,
        "F": False,
        "G": False,
    }
    # Only running clocks are due: C's two (breached), B's resolution.
    assert {name: r["sla_next_due_at"] for name, r in rows.items()} == {
        "A": None,
        "B": tue(14, 40),
        "C": mon(10, 30),
        "D": None,
        "E": None,
        "F": None,
        "G": None,
    }


def test_a_clock_met_on_time(world: World) -> None:
    a = ticket_rows(world)["A"]
    assert clock_of(a, "sla_response") == {
        "started_at": mon(9),
        "target_minutes": 60.0,
        "due_at": mon(10),
        "warning_at": mon(9, 30),
        "paused_at": None,
        "paused_minutes": 0.0,
        "warned_at": None,
        "breached_at": None,
        "goal_at": mon(9, 40),
        "stopped_at": mon(9, 40),
        "outcome": "met",
        "business_minutes": 40.0,
        "state": "met",
    }
    resolution = clock_of(a, "sla_resolution")
    assert resolution["warned_at"] == mon(11, 30)
    assert resolution["state"] == "met"
    assert resolution["business_minutes"] == 180.0
    assert a["sla_next_reply_state"] is None


def test_a_paused_warned_clock_and_a_late_first_response(world: World) -> None:
    b = ticket_rows(world)["B"]
    assert clock_of(b, "sla_response") == {
        "started_at": mon(16, 40),
        "target_minutes": 60.0,
        "due_at": tue(9, 40),
        "warning_at": tue(9, 10),
        "paused_at": None,
        "paused_minutes": 0.0,
        "warned_at": tue(9, 50),
        "breached_at": tue(9, 50),
        "goal_at": tue(10),
        "stopped_at": tue(10),
        "outcome": "breached",
        "business_minutes": 80.0,
        "state": "breached",
    }
    assert clock_of(b, "sla_resolution") == {
        "started_at": mon(16, 40),
        "target_minutes": 240.0,
        # 100 minutes were left at the pause: 13:00 + 100.
        "due_at": tue(14, 40),
        "warning_at": tue(10, 40),
        "paused_at": None,
        "paused_minutes": 120.0,
        "warned_at": tue(14),
        "breached_at": None,
        "goal_at": None,
        "stopped_at": None,
        "outcome": None,
        "business_minutes": None,
        "state": "warning",
    }
    next_reply = clock_of(b, "sla_next_reply")
    assert (next_reply["started_at"], next_reply["due_at"]) == (
        tue(10, 30),
        tue(11, 30),
    )
    assert (next_reply["state"], next_reply["business_minutes"]) == ("met", 40.0)
    assert (b["escalation_level"], b["assigned_team"]) == (1, "Tier2")
    # Clock events are activity, not edits: the last edit was the status.
    assert (b["updated_at"], b["last_activity_at"]) == (tue(13), tue(14))


def test_a_late_timer_and_priority_changes_after_a_warning(world: World) -> None:
    rows = ticket_rows(world, world.edge_tenant)
    h = clock_of(rows["H"], "sla_resolution")
    # Paused after its due time: the due time stays, and the breach the
    # timers record while paused wins over the pause.
    assert (h["due_at"], h["warning_at"], h["paused_at"]) == (
        mon(13),
        mon(11),
        mon(13, 30),
    )
    assert (h["warned_at"], h["breached_at"], h["state"]) == (
        mon(13, 40),
        mon(13, 40),
        "breached",
    )
    assert rows["H"]["sla_state"] == "breached"

    i = clock_of(rows["I"], "sla_response")
    assert (i["target_minutes"], i["state"]) == (2880.0, "breached")
    assert (i["warned_at"], i["breached_at"]) == (mon(9, 40), mon(9, 40))

    j = clock_of(rows["J"], "sla_response")
    assert (j["target_minutes"], j["due_at"], j["warning_at"]) == (
        60.0,
        mon(10),
        mon(9, 30),
    )
    assert (j["warned_at"], j["state"]) == (None, "running")
    assert rows["J"]["sla_state"] == "running"
    alerts = world.read_model.run(
        "SELECT ticket_id, kind FROM sla_alerts WHERE tenant_id = %s",
        (world.edge_tenant,),
    )
    # J's first warning stays counted as given.
    assert sorted((world.name_of(r["ticket_id"]), r["kind"]) for r in alerts) == [
        ("H", "breach"),
        ("H", "warning"),
        ("I", "breach"),
        ("I", "warning"),
        ("J", "warning"),
    ]


def test_every_event_type_is_projected(world: World) -> None:
    samples = f"samples-{world.tenant}"
    tickets = world.read_model.run(
        "SELECT number, sla_state, sla_policy, sla_settings_version,"
        " escalation_level, escalation_pending_level FROM tickets"
        " WHERE tenant_id = %s ORDER BY number",
        (samples,),
    )
    # Tickets 1 to 3 (and 5, a cancelled workflow) were opened without a
    # policy; 4 has every SLA event.
    assert [(t["number"], t["sla_state"], t["sla_policy"]) for t in tickets] == [
        (1, "none", None),
        (2, "none", None),
        (3, "none", None),
        (4, "breached", "default"),
        (5, "none", None),
    ]
    assert (tickets[3]["escalation_level"], tickets[3]["sla_settings_version"]) == (
        1,
        3,
    )
    assert tickets[3]["escalation_pending_level"] is None
    requests = world.read_model.run(
        "SELECT level, state FROM escalation_requests WHERE tenant_id = %s"
        " ORDER BY level",
        (samples,),
    )
    assert [(r["level"], r["state"]) for r in requests] == [
        (1, "approved"),
        (2, "rejected"),
    ]
    clocks = world.read_model.run(
        "SELECT target, paused_minutes, outcome, state FROM sla_clocks"
        " WHERE tenant_id = %s ORDER BY target",
        (samples,),
    )
    assert [(c["target"], c["outcome"], c["state"]) for c in clocks] == [
        ("first_response", "breached", "breached"),
        ("resolution", None, "breached"),
    ]
    assert clocks[1]["paused_minutes"] == 1.0


def test_pending_approval_and_decisions(world: World) -> None:
    rows = ticket_rows(world)
    pending = {
        name: (
            r["escalation_pending_level"],
            r["escalation_pending_team"],
            r["escalation_requested_at"],
        )
        for name, r in rows.items()
        if r["escalation_pending_level"] is not None
    }
    assert pending == {"C": (1, "Tier2", mon(12, 30))}
    requests = world.read_model.run(
        "SELECT ticket_id, level, team, rule, state, decided_at, decided_by"
        " FROM escalation_requests WHERE tenant_id = %s ORDER BY requested_at",
        (world.tenant,),
    )
    assert [
        (world.name_of(r["ticket_id"]), r["state"], r["decided_at"], r["decided_by"])
        for r in requests
    ] == [
        ("E", "approved", mon(11, 45), "sue"),
        ("C", "pending", None, None),
        ("D", "rejected", mon(14), "sue"),
    ]
    assert {(r["level"], r["team"], r["rule"]) for r in requests} == {
        (1, "Tier2", RULE)
    }
    escalations = world.read_model.run(
        "SELECT ticket_id, level, team, rule FROM escalations WHERE tenant_id = %s"
        " ORDER BY escalated_at",
        (world.tenant,),
    )
    assert [
        (world.name_of(r["ticket_id"]), r["level"], r["team"], r["rule"])
        for r in escalations
    ] == [("E", 1, "Tier2", RULE), ("B", 1, "Tier2", None)]


def test_every_clock_run_has_its_row(world: World) -> None:
    clocks = world.read_model.run(
        "SELECT ticket_id, target, started_at, stopped_at, outcome, goal_at,"
        " business_minutes, state FROM sla_clocks WHERE tenant_id = %s",
        (world.tenant,),
    )
    f_runs = sorted(
        (r["target"], r["started_at"], r["outcome"], r["business_minutes"])
        for r in clocks
        if r["ticket_id"] == world.ids["F"]
    )
    # The reopen started a second resolution clock; the first response
    # clock stopped unanswered.
    assert f_runs == [
        ("first_response", mon(9), "stopped", 50.0),
        ("resolution", mon(9), "met", 50.0),
        ("resolution", mon(11), "met", 180.0),
    ]
    assert len(clocks) == 16  # 2 per ticket, F's second, B's next reply
    unanswered = {
        (world.name_of(r["ticket_id"]), r["target"], r["goal_at"])
        for r in clocks
        if r["outcome"] == "stopped"
    }
    assert unanswered == {
        ("F", "first_response", None),
        ("G", "first_response", None),
        ("G", "resolution", None),
    }
    assert {r["state"] for r in clocks if r["stopped_at"] is None} == {
        "warning",  # B's resolution
        "breached",  # C's two
    }


def test_alerts_and_daily_counts(world: World) -> None:
    alerts = world.read_model.run(
        "SELECT ticket_id, target, kind, at, business_minutes FROM sla_alerts"
        " WHERE tenant_id = %s ORDER BY at, version",
        (world.tenant,),
    )
    assert [
        (world.name_of(r["ticket_id"]), r["target"], r["kind"], r["at"]) for r in alerts
    ] == [
        ("A", "resolution", "warning", mon(11, 30)),
        ("C", "first_response", "warning", mon(12, 30)),
        ("C", "first_response", "breach", mon(12, 30)),
        ("C", "resolution", "warning", mon(12, 30)),
        ("C", "resolution", "breach", mon(12, 30)),
        ("B", "first_response", "warning", tue(9, 50)),
        ("B", "first_response", "breach", tue(9, 50)),
        ("B", "resolution", "warning", tue(14)),
    ]
    # Minutes left at a warning, used at a breach.
    assert [r["business_minutes"] for r in alerts] == [
        90.0,
        0.0,
        150.0,
        0.0,
        150.0,
        0.0,
        70.0,
        40.0,
    ]
    days = world.read_model.run(
        "SELECT * FROM daily_metrics WHERE tenant_id = %s ORDER BY day",
        (world.tenant,),
    )
    assert [{k: v for k, v in d.items() if k != "tenant_id"} for d in days] == [
        {
            "day": date(2024, 3, 4),
            "created": 6,
            "resolved": 4,
            "closed": 0,
            "reopened": 1,
            "escalated": 1,
            "breached": 2,
            "warnings": 3,
            "response_met": 3,
            "response_breached": 0,
            "resolution_met": 3,
            "resolution_breached": 1,
            "next_reply_met": 0,
            "next_reply_breached": 0,
        },
        {
            "day": date(2024, 3, 5),
            "created": 1,
            "resolved": 1,
            "closed": 1,
            "reopened": 0,
            "escalated": 1,
            "breached": 1,
            "warnings": 2,
            "response_met": 0,
            "response_breached": 1,
            "resolution_met": 0,
            "resolution_breached": 1,
            "next_reply_met": 1,
            "next_reply_breached": 0,
        },
    ]


# -- the list -------------------------------------------------------------------


def names(world: World, **filters: Any) -> list[str]:
    sort = filters.pop("sort", "created")
    page = list_tickets(
        world.read_model, TicketFilter(tenant_id=world.tenant, **filters), sort=sort
    )
    return [world.name_of(row["ticket_id"]) for row in page.items]


def test_list_filters_on_sla_state_breach_and_pending_approval(world: World) -> None:
    # Created order: A, E, F (09:00, by id), C, D, B.
    assert sorted(names(world, sla_states=("breached",))) == ["C", "D", "E"]
    assert names(world, sla_states=("warning",)) == ["B"]
    assert sorted(names(world, sla_states=("met",))) == ["A", "F"]
    assert names(world, sla_states=("running", "paused")) == []
    assert names(world, sla_states=("stopped",)) == ["G"]
    # ``ok``, as before: neither warning nor breached.
    assert sorted(names(world, sla_states=("ok",))) == ["A", "F", "G"]
    assert sorted(names(world, sla_states=("ok", "warning"))) == ["A", "B", "F", "G"]
    assert sorted(names(world, sla_breached=True)) == ["B", "C", "D", "E"]
    assert sorted(names(world, sla_breached=False)) == ["A", "F", "G"]
    assert names(world, escalation_pending=True) == ["C"]
    assert len(names(world, escalation_pending=False)) == 6


def test_customers_filter_on_the_states_they_see(world: World) -> None:
    def seen(*states: str) -> list[str]:
        where = TicketFilter(
            tenant_id=world.tenant, sla_states=states, customer_view=True
        )
        page = list_tickets(world.read_model, where)
        return sorted(world.name_of(row["ticket_id"]) for row in page.items)

    assert seen("warning") == []
    assert seen("running") == ["B"]
    assert seen("ok") == ["A", "B", "F", "G"]
    assert seen("breached") == ["C", "D", "E"]


def test_list_sorts_by_the_next_due_time(world: World) -> None:
    due = names(world, sort="due")
    assert due[:2] == ["C", "B"]
    assert set(due[2:]) == {"A", "D", "E", "F", "G"}  # nothing running: last
    assert names(world, sort="-due")[:2] == ["B", "C"]
    # Cursor pages walk the same order.
    first = list_tickets(
        world.read_model, TicketFilter(tenant_id=world.tenant), sort="due", limit=1
    )
    second = list_tickets(
        world.read_model,
        TicketFilter(tenant_id=world.tenant),
        sort="due",
        limit=1,
        cursor=first.next,
    )
    assert [r["ticket_id"] for r in first.items + second.items] == [
        world.ids["C"],
        world.ids["B"],
    ]


def test_list_item_shows_the_sla_summary(world: World) -> None:
    page = list_tickets(
        world.read_model, TicketFilter(tenant_id=world.tenant, sla_states=("warning",))
    )
    (b,) = page.items
    sla = summary(b, staff=True).model_dump(mode="json")["sla"]
    assert sla == {
        "state": "warning",
        "next_due_at": "2024-03-05T14:40:00Z",
        "breached": True,
        "response_due_at": "2024-03-05T09:40:00Z",
        "resolution_due_at": "2024-03-05T14:40:00Z",
        "next_reply_due_at": "2024-03-05T11:30:00Z",
        "policy": "default",
        "settings_version": 1,
        "targets": {
            "first_response": {
                "state": "breached",
                "due_at": "2024-03-05T09:40:00Z",
                "warning_at": "2024-03-05T09:10:00Z",
                "paused_since": None,
                "stopped_at": "2024-03-05T10:00:00Z",
                "breached_at": "2024-03-05T09:50:00Z",
                "business_minutes": 80.0,
            },
            "resolution": {
                "state": "warning",
                "due_at": "2024-03-05T14:40:00Z",
                "warning_at": "2024-03-05T10:40:00Z",
                "paused_since": None,
                "stopped_at": None,
                "breached_at": None,
                "business_minutes": None,
            },
            "next_reply": {
                "state": "met",
                "due_at": "2024-03-05T11:30:00Z",
                "warning_at": "2024-03-05T11:00:00Z",
                "paused_since": None,
                "stopped_at": "2024-03-05T11:10:00Z",
                "breached_at": None,
                "business_minutes": 40.0,
            },
        },
    }
    # The customer sees states and times: the warning reads as running.
    as_customer = summary(b, staff=False).model_dump(mode="json")["sla"]
    assert (as_customer["state"], as_customer["policy"]) == ("running", None)
    assert as_customer["targets"]["resolution"] == sla["targets"]["resolution"] | {
        "state": "running",
        "warning_at": None,
    }
    assert as_customer["targets"]["first_response"]["business_minutes"] is None
    assert as_customer["targets"]["first_response"]["breached_at"] is None
    assert as_customer["breached"] is True

    (c,) = list_tickets(
        world.read_model,
        TicketFilter(tenant_id=world.tenant, escalation_pending=True),
    ).items
    assert summary(c, staff=False).pending_escalation is None
    assert summary(c, staff=True).model_dump(mode="json")["pending_escalation"] == {
        "level": 1,
        "team": "Tier2",
        "requested_at": "2024-03-04T12:30:00Z",
    }


# -- the dashboard ----------------------------------------------------------------


def test_dashboard_sla_figures_over_both_days(world: World) -> None:
    d = dashboard(
        world.read_model, tenant_id=world.tenant, start=WHOLE[0], end=WHOLE[1]
    )

    # First response: A, D, E met; B late; F and G (merged) unanswered.
    assert d.sla_response == SlaComplianceRead(met=3, breached=1, stopped=2, pct=75.0)
    # Resolution: A, F twice met; D and E late; G merged (B and C still run).
    assert d.sla_resolution == SlaComplianceRead(met=3, breached=2, stopped=1, pct=60.0)
    assert d.sla_next_reply == SlaComplianceRead(
        met=1, breached=0, stopped=0, pct=100.0
    )
    # 10, 20, 40, 80 (F's unanswered clock is left out).
    assert d.first_response_business_minutes == DurationStatsRead(
        count=4, mean=37.5, median=30.0, p90=68.0
    )
    # 50, 180, 180, 240, 510.
    assert d.resolution_business_minutes == DurationStatsRead(
        count=5, mean=232.0, median=180.0, p90=402.0
    )
    assert d.next_reply_business_minutes == DurationStatsRead(
        count=1, mean=40.0, median=40.0, p90=40.0
    )
    assert (d.warnings, d.breaches) == (5, 3)
    # B (warned) and C (breached) are the open ones.
    assert (d.open_backlog, d.open_breached, d.open_at_risk) == (2, 1, 1)
    assert d.escalations == EscalationsRead(
        total=2,
        by_team=[TeamCountRead(team="Tier2", count=2)],
        by_level=[LevelCountRead(level=1, count=2)],
        automatic=1,
    )
    assert d.escalation_requests == EscalationRequestsRead(
        requested=3, approved=1, rejected=1, pending=1
    )


def test_dashboard_sla_figures_count_events_of_the_range(world: World) -> None:
    d = dashboard(
        world.read_model, tenant_id=world.tenant, start=MONDAY[0], end=MONDAY[1]
    )
    # Monday's stops: B's late reply and E's late resolution came on Tuesday.
    assert d.sla_response == SlaComplianceRead(met=3, breached=0, stopped=1, pct=100.0)
    assert d.sla_resolution == SlaComplianceRead(met=3, breached=1, stopped=0, pct=75.0)
    assert d.sla_next_reply == SlaComplianceRead(met=0, breached=0, stopped=0, pct=None)
    # 10, 20, 40.
    assert d.first_response_business_minutes == DurationStatsRead(
        count=3, mean=23.33, median=20.0, p90=36.0
    )
    # 50, 180, 180, 240.
    assert d.resolution_business_minutes == DurationStatsRead(
        count=4, mean=162.5, median=180.0, p90=222.0
    )
    assert d.next_reply_business_minutes == DurationStatsRead(
        count=0, mean=None, median=None, p90=None
    )
    assert (d.warnings, d.breaches) == (3, 2)
    assert d.escalations.total == d.escalations.automatic == 1
    # Pending is "now", whatever the range.
    assert d.escalation_requests == EscalationRequestsRead(
        requested=3, approved=1, rejected=1, pending=1
    )


def test_dashboard_sla_figures_of_one_team(world: World) -> None:
    # Tier2 now: B and E (both escalated there).
    d = dashboard(
        world.read_model,
        tenant_id=world.tenant,
        start=WHOLE[0],
        end=WHOLE[1],
        team="Tier2",
    )
    assert d.sla_response == SlaComplianceRead(met=1, breached=1, stopped=0, pct=50.0)
    assert d.sla_resolution == SlaComplianceRead(met=0, breached=1, stopped=0, pct=0.0)
    assert d.first_response_business_minutes == DurationStatsRead(
        count=2, mean=45.0, median=45.0, p90=73.0
    )
    assert d.resolution_business_minutes == DurationStatsRead(
        count=1, mean=510.0, median=510.0, p90=510.0
    )
    assert (d.warnings, d.breaches) == (2, 1)
    assert (d.open_backlog, d.open_breached, d.open_at_risk) == (1, 0, 1)
    # Requests are filtered on the team they would escalate to: all Tier2.
    assert d.escalation_requests == EscalationRequestsRead(
        requested=3, approved=1, rejected=1, pending=1
    )

    # Tier1 now: A, C, D.
    d = dashboard(
        world.read_model,
        tenant_id=world.tenant,
        start=WHOLE[0],
        end=WHOLE[1],
        team="Tier1",
    )
    assert d.sla_response == SlaComplianceRead(met=2, breached=0, stopped=0, pct=100.0)
    assert d.sla_resolution == SlaComplianceRead(met=1, breached=1, stopped=0, pct=50.0)
    assert (d.warnings, d.breaches) == (3, 2)
    assert (d.open_backlog, d.open_breached, d.open_at_risk) == (1, 1, 0)
    assert d.escalations.total == 0
    assert d.escalation_requests == EscalationRequestsRead(
        requested=0, approved=0, rejected=0, pending=0
    )


def test_dashboard_response_model(world: World) -> None:
    d = dashboard(
        world.read_model, tenant_id=world.tenant, start=WHOLE[0], end=WHOLE[1]
    )
    body = DashboardRead.model_validate(d).model_dump(mode="json")
    assert body["sla_resolution"] == {
        "met": 3,
        "breached": 2,
        "stopped": 1,
        "pct": 60.0,
    }
    assert body["first_response_business_minutes"]["median"] == 30.0
    assert body["escalations"]["by_level"] == [{"level": 1, "count": 2}]
    assert body["escalation_requests"]["pending"] == 1
    assert (body["open_breached"], body["open_at_risk"]) == (1, 1)


def test_a_rebuild_projects_the_same_rows(world: World) -> None:
    """The SLA rows depend on the events alone (no database clock)."""
    tables = (
        "tickets",
        "sla_clocks",
        "sla_alerts",
        "escalations",
        "escalation_requests",
        "daily_metrics",
    )

    def snapshot() -> dict[str, list[dict[str, Any]]]:
        return {
            table: sorted(
                world.read_model.run(
                    f"SELECT * FROM {table} WHERE tenant_id = %s",
                    (world.tenant,),
                ),
                key=repr,
            )
            for table in tables
        }

    before = snapshot()
    schema = world.read_model.active().schema
    rebuilt = project(
        world.ticketing, world.ticketing.settings.database_url, rebuild=True
    )
    world.read_model.active(refresh=True)

    assert rebuilt != schema
    assert snapshot() == before
