"""Retention end to end: closed tickets' personal data erased when their period ends.

A tenant keeps closed tickets' data 30 days, billing ones 1 day. Tickets
are opened and closed on a clock the test moves by hand; the timers (in
this process, on that clock, with the relay and the projection worker)
sweep while it moves. Exactly the tickets past their period read
"[erased]", each erasure is listed like a manual one (reason
``retention``), and a sweep after them erases nothing. A second test runs
two sweeps at once, as two timers replicas would, over a bounded batch.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.kafka.broker import DevBroker
from dotmac.ticketing.consumers.timers.retention import RetentionSweep
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from tests.integration.projecting import project
from tests.integration.timers_running import (
    MovableClock,
    running_stack,
    stack_settings,
    wait_until,
)

API = "/api/v1"
TENANT = "retention-acme"
OTHER = "retention-keeps"
SECRET = "retention-e2e-" + "k" * 40
RETENTION = {"closed_days": 30, "categories": {"billing": 1}}
ERASED = "[erased]"


def auth(sub: str, role: str, tenant: str = TENANT) -> dict[str, str]:
    token = issue_token(SECRET, tenant_id=tenant, sub=sub, roles=[role])
    return {"Authorization": f"Bearer {token}"}


def set_retention(client: TestClient, tenant: str = TENANT) -> None:
    put = client.put(
        f"{API}/settings",
        json={"retention": RETENTION},
        headers=auth("admin-1", "admin", tenant),
    )
    assert put.status_code == 200, put.text


def open_ticket(
    client: TestClient, category: str, title: str, tenant: str = TENANT
) -> str:
    created = client.post(
        f"{API}/tickets/",
        json={"title": title, "description": f"About {title}", "category": category},
        headers=auth("cust-1", "customer", tenant),
    )
    assert created.status_code == 201, created.text
    ticket_id: str = created.json()["id"]
    return ticket_id


def close(client: TestClient, ticket_id: str, tenant: str = TENANT) -> None:
    agent = auth("agent-1", "agent", tenant)
    resolved = client.post(
        f"{API}/tickets/{ticket_id}/resolve",
        json={"resolution": "Done", "resolution_code": "fixed"},
        headers=agent,
    )
    assert resolved.is_success, resolved.text
    closed = client.post(f"{API}/tickets/{ticket_id}/close", headers=agent)
    assert closed.is_success, closed.text


def title(client: TestClient, ticket_id: str, tenant: str = TENANT) -> str:
    read = client.get(
        f"{API}/tickets/{ticket_id}", headers=auth("admin-1", "admin", tenant)
    )
    assert read.status_code == 200, read.text
    value: str = read.json()["title"]
    return value


def retention_requests(
    client: TestClient, tenant: str = TENANT
) -> list[dict[str, Any]]:
    listed = client.get(
        f"{API}/privacy/requests", headers=auth("admin-1", "admin", tenant)
    )
    assert listed.status_code == 200, listed.text
    requests: list[dict[str, Any]] = listed.json()
    return requests


async def _sweeps(
    ticketing: Ticketing, clock: MovableClock, url: str, replicas: int, limit: int
) -> list[int | None]:
    """One sweep by each of ``replicas`` sweepers at once, each its own pool."""
    pools = [
        AsyncConnectionPool(url, min_size=1, max_size=1, open=False)
        for _ in range(replicas)
    ]
    try:
        for pool in pools:
            await pool.open()
        sweepers = [RetentionSweep(p, ticketing, clock, limit=limit) for p in pools]
        return list(await asyncio.gather(*(s.sweep() for s in sweepers)))
    finally:
        for pool in pools:
            await pool.close()


def sweep_until_turn(ticketing: Ticketing, clock: MovableClock, url: str) -> int:
    """A sweep of our own, once the running timers' sweep lets it in."""
    result: list[int] = []

    def swept() -> bool:
        (erased,) = asyncio.run(_sweeps(ticketing, clock, url, 1, 100))
        if erased is not None:
            result.append(erased)
        return erased is not None

    wait_until(swept, what="a turn to sweep")
    return result[0]


def test_the_timers_erase_exactly_the_tickets_past_their_period(
    isolated_database_url: str, fresh_broker: DevBroker
) -> None:
    settings = stack_settings(
        isolated_database_url, fresh_broker, jwt_secret=SECRET, key_cache_seconds=0
    )
    clock = MovableClock()
    start = clock.now
    with (
        running_stack(settings, clock=clock, projections=True) as stack,
        TestClient(create_app(settings, ticketing=stack.ticketing)) as client,
    ):
        set_retention(client)
        billing = open_ticket(client, "billing", "Invoice twice")
        general = open_ticket(client, "general", "Address change")
        still_open = open_ticket(client, "billing", "Refund pending")
        elsewhere = open_ticket(client, "billing", "Kept forever", tenant=OTHER)
        close(client, billing)
        close(client, general)
        close(client, elsewhere, tenant=OTHER)
        clock.advance(timedelta(hours=12))
        later_billing = open_ticket(client, "billing", "Late invoice")
        close(client, later_billing)

        # A day and a minute after the first closings: only the first
        # billing ticket is past its period.
        clock.set(start + timedelta(days=1, minutes=1))
        wait_until(
            lambda: title(client, billing) == ERASED,
            timeout=60,
            what="the billing ticket's erasure",
        )
        assert sweep_until_turn(stack.ticketing, clock, isolated_database_url) == 0
        assert title(client, general) == "Address change"
        assert title(client, later_billing) == "Late invoice"
        assert title(client, still_open) == "Refund pending"

        # Past thirty days: the general ticket and the later billing one too.
        clock.set(start + timedelta(days=30, minutes=1))
        wait_until(
            lambda: ERASED == title(client, general) == title(client, later_billing),
            timeout=60,
            what="the other closed tickets' erasures",
        )
        assert sweep_until_turn(stack.ticketing, clock, isolated_database_url) == 0
        assert title(client, still_open) == "Refund pending"
        assert title(client, elsewhere, tenant=OTHER) == "Kept forever"

        requests = retention_requests(client)
        assert sorted(r["ticket_id"] for r in requests) == sorted(
            [billing, general, later_billing]
        )
        assert {(r["kind"], r["reason"]) for r in requests} == {
            ("erasure", "retention")
        }
        assert {r["requested_by"]["id"] for r in requests} == {"retention"}
        assert retention_requests(client, tenant=OTHER) == []


def test_replicas_sweeping_at_once_erase_each_ticket_once_in_bounded_batches(
    isolated_database_url: str,
) -> None:
    clock = MovableClock()
    settings = Settings(
        database_url=isolated_database_url, jwt_secret=SECRET, key_cache_seconds=0
    )
    ticketing = initialize_ticketing(settings, clock=clock)
    try:
        with TestClient(create_app(settings, ticketing=ticketing)) as client:
            set_retention(client)
            tickets = [open_ticket(client, "billing", f"Bill {n}") for n in range(5)]
            for ticket_id in tickets:
                close(client, ticket_id)
            project(ticketing, isolated_database_url)
            clock.advance(timedelta(days=2))

            # Two replicas at once, three tickets a sweep each: one sweeps
            # while the other skips its turn, or they take turns; either
            # way no ticket is erased twice, and a batch is three at most.
            first = asyncio.run(
                _sweeps(ticketing, clock, isolated_database_url, 2, limit=3)
            )
            assert 3 in first and (None in first or 2 in first), first
            rest = asyncio.run(
                _sweeps(ticketing, clock, isolated_database_url, 1, limit=3)
            )
            assert sum(n or 0 for n in first + rest) == len(tickets)
            again = asyncio.run(
                _sweeps(ticketing, clock, isolated_database_url, 1, limit=3)
            )
            assert again == [0]
            assert {title(client, t) for t in tickets} == {ERASED}
            requests = retention_requests(client)
            assert sorted(r["ticket_id"] for r in requests) == sorted(tickets)
    finally:
        ticketing.close()


def test_deployment_defaults_with_retention_reach_tenants_without_settings(
    isolated_database_url: str,
) -> None:
    clock = MovableClock()
    # The configuration's top-level sections: every tenant's defaults.
    ticketing = initialize_ticketing(
        {
            "database_url": isolated_database_url,
            "key_cache_seconds": 0,
            "retention": {"closed_days": 10},
        },
        clock=clock,
    )
    settings = ticketing.settings
    try:
        with TestClient(
            create_app(
                settings.model_copy(update={"jwt_secret": SECRET}), ticketing=ticketing
            )
        ) as client:
            defaulted = open_ticket(client, "general", "On the defaults")
            # A tenant that stored settings of its own, without retention.
            own = client.put(
                f"{API}/settings",
                json={"merges": {"cross_customer": "refuse"}},
                headers=auth("admin-1", "admin", OTHER),
            )
            assert own.status_code == 200, own.text
            kept = open_ticket(client, "general", "Own settings", tenant=OTHER)
            close(client, defaulted)
            close(client, kept, tenant=OTHER)
            project(ticketing, isolated_database_url)
            clock.advance(timedelta(days=10, seconds=1))
            swept = asyncio.run(
                _sweeps(ticketing, clock, isolated_database_url, 1, limit=100)
            )
            assert swept == [1]
            assert title(client, defaulted) == ERASED
            assert title(client, kept, tenant=OTHER) == "Own settings"
    finally:
        ticketing.close()
