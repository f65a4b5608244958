"""The write side against real PostgreSQL: events, snapshots, conflicts."""

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from dotmac.ticketing.domain.enums import TicketPriority, TicketStatus
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext


class SteppingClock:
    """An injectable clock: every reading is one second after the last."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="module")
def core(database_url: str) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing(
        {"database_url": database_url, "snapshot_interval": 5},
        clock=SteppingClock(),
    )
    yield ticketing
    ticketing.close()


def agent(tenant: str) -> RequestContext:
    return RequestContext(
        tenant_id=tenant, user_id="agent-1", roles=frozenset({"agent"})
    )


def test_every_event_is_a_row_with_tenant_and_provenance(
    core: Ticketing, database_url: str
) -> None:
    tenant = f"t-{secrets.token_hex(3)}"
    ctx = RequestContext(
        tenant_id=tenant,
        user_id="agent-7",
        roles=frozenset({"agent"}),
        correlation_id="req-9",
    )
    result = core.tickets.create_ticket(ctx, title="Row check", customer_id="c")
    core.tickets.assign(ctx, result.ticket.id, assignee_id="agent-7")

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT originator_version, topic, state FROM ticketing_events"
            " WHERE originator_id = %s ORDER BY originator_version",
            (result.ticket.id,),
        ).fetchall()
    assert [(v, t) for v, t, _ in rows] == [
        (1, "ticketing.ticket:TicketCreated.v1"),
        # The default SLA policy starts both clocks with the ticket.
        (2, "ticketing.ticket:SLAStarted.v1"),
        (3, "ticketing.ticket:SLAStarted.v1"),
        (4, "ticketing.ticket:TicketAssigned.v1"),
    ]
    person = {"id": "agent-7", "role": "agent", "kind": "user"}
    system = {"id": "sla", "role": "automation", "kind": "automation"}
    for _, topic, state in rows:
        stored = json.loads(bytes(state))
        assert stored["tenant_id"] == tenant
        # The SLA clocks are the system's, in the same request.
        clock = topic.endswith("SLAStarted.v1")
        assert stored["actor"] == (system if clock else person)
        assert stored["correlation_id"] == "req-9"


def test_long_tickets_load_from_snapshots(core: Ticketing, database_url: str) -> None:
    ctx = agent(f"t-{secrets.token_hex(3)}")
    tid = core.tickets.create_ticket(ctx, title="Chatty", customer_id="c").ticket.id
    for n in range(12):
        core.tickets.add_comment(ctx, tid, body=f"comment {n}")

    with psycopg.connect(database_url) as conn:
        versions = conn.execute(
            "SELECT originator_version FROM ticketing_snapshots"
            " WHERE originator_id = %s ORDER BY 1",
            (tid,),
        ).fetchall()
    # Created and two SLAStarted, then the first comment also stops the
    # first-response clock (SLAStopped): 16 events.
    assert [v for (v,) in versions] == [5, 10, 15]

    ticket = core.tickets.get_ticket(ctx, tid)
    assert ticket.version == 16
    assert [c["body"] for c in ticket.comments] == [f"comment {n}" for n in range(12)]
    past = core.tickets.get_ticket(ctx, tid, as_of=10)
    assert len(past.comments) == 6
    # Loaded from its snapshot, the ticket still takes every command.
    core.tickets.change_status(ctx, tid, TicketStatus.PENDING)
    core.tickets.update_ticket(ctx, tid, priority=TicketPriority.HIGH)
    ticket = core.tickets.get_ticket(ctx, tid)
    assert (ticket.status, ticket.priority) == (
        TicketStatus.PENDING,
        TicketPriority.HIGH,
    )


def test_a_lost_race_is_an_integrity_error_not_a_lost_event(core: Ticketing) -> None:
    ctx = agent(f"t-{secrets.token_hex(3)}")
    tid = core.tickets.create_ticket(ctx, title="Race", customer_id="c").ticket.id
    first: Ticket = core.app.repository.get(tid)
    second: Ticket = core.app.repository.get(tid)
    now = datetime.now(UTC)
    provenance = Provenance(ctx.tenant_id, Actor("agent-1", "agent"))
    first.add_comment("one", internal=False, provenance=provenance, at=now)
    second.add_comment("two", internal=False, provenance=provenance, at=now)
    core.app.save_aggregates(first)
    with pytest.raises(IntegrityError):
        core.app.save_aggregates(second)
    # The service retries on fresh state instead, so both comments land.
    core.tickets.add_comment(ctx, tid, body="two")
    bodies = [c["body"] for c in core.tickets.get_ticket(ctx, tid).comments]
    assert bodies == ["one", "two"]


def test_the_clock_is_injected(core: Ticketing) -> None:
    ctx = agent(f"t-{secrets.token_hex(3)}")
    ticket = core.tickets.create_ticket(ctx, title="Time", customer_id="c").ticket
    assert ticket.created_on.year == 2026
    assert ticket.created_on.month == 1
