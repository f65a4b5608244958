"""Who hears of an SLA warning or breach, over HTTP, with the real workers.

The tenant's settings go in with ``PUT /api/v1/settings``, tickets are
opened and assigned with the API, the timers fire on a movable clock, the
notifier writes in-app notifications, and each person reads their own with
``GET /api/v1/notifications`` (issue 11, point 2): the assignee, else the
team; a breach also the team's supervisors; with no team, the tenant's
admins from ``sla_alerts``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    MovableClock,
    Stack,
    running_stack,
    stack_settings,
    ticket_events,
    wait_until,
)

SECRET = "sla-alerts-test-secret-with-enough-bytes"
MINUTE = timedelta(minutes=1)
# Critical tickets: first response due in 15 minutes, warned at 80 %.
WARNED = 13 * MINUTE
BREACHED = 16 * MINUTE


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_stack(
            stack_settings(database_url, broker, jwt_secret=SECRET),
            clock=MovableClock(),
            projections=True,
            notifier=True,
        ) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[TestClient]:
    app = create_app(stack.settings, ticketing=stack.ticketing)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def auth(tenant: str, sub: str, *roles: str) -> dict[str, str]:
    token = issue_token(SECRET, tenant_id=tenant, sub=sub, roles=list(roles))
    return {"Authorization": f"Bearer {token}"}


def configure(client: TestClient, **alerts: Any) -> str:
    tenant = f"alerts-{secrets.token_hex(4)}"
    document: dict[str, Any] = {
        "teams": [
            {
                "name": "Support",
                "agents": [
                    {"id": "ana"},
                    {"id": "ben"},
                    {"id": "lead", "role": "supervisor"},
                ],
            }
        ],
        "sla_alerts": {"admins": [{"id": "root"}], **alerts},
    }
    response = client.put(
        "/api/v1/settings", json=document, headers=auth(tenant, "root", "admin")
    )
    assert response.status_code == 200, response.text
    return tenant


def open_critical(client: TestClient, tenant: str) -> str:
    response = client.post(
        "/api/v1/tickets",
        json={"title": "Checkout is down", "priority": "critical"},
        headers=auth(tenant, "cust-1", "customer"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assign(client: TestClient, tenant: str, ticket_id: str, **body: str) -> None:
    response = client.post(
        f"/api/v1/tickets/{ticket_id}/assign",
        json=body,
        headers=auth(tenant, "lead", "supervisor"),
    )
    assert response.status_code == 200, response.text


def alerts_of(client: TestClient, tenant: str, person: str, ticket_id: str) -> set[str]:
    """The SLA alert kinds ``person`` was told of about the ticket."""
    response = client.get(
        "/api/v1/notifications",
        params={"limit": 200},
        headers=auth(tenant, person, "agent"),
    )
    assert response.status_code == 200, response.text
    return {
        # ticketing.ticket.sla_warning.v1 → sla_warning
        item["event_type"].split(".")[2]
        for item in response.json()["items"]
        if item["ticket_id"] == ticket_id and "sla" in item["event_type"].lower()
    }


def breach(stack: Stack, ticket_id: str) -> None:
    """Move past the warning and the breach and wait until both fired."""
    stack.clock.advance(WARNED)
    stack.clock.advance(BREACHED - WARNED)
    wait_until(
        lambda: any(
            isinstance(event, Ticket.SLABreached)
            for event in ticket_events(stack.ticketing, ticket_id)
        ),
        what=f"the breach of {ticket_id}",
    )


def told(
    client: TestClient, tenant: str, ticket_id: str, people: dict[str, set[str]]
) -> dict[str, set[str]]:
    """Wait until everyone in ``people`` heard what they should; the actual."""

    def heard() -> dict[str, set[str]] | None:
        actual = {p: alerts_of(client, tenant, p, ticket_id) for p in people}
        expected_kinds = all(actual[p] >= people[p] for p in people)
        return actual if expected_kinds else None

    return wait_until(heard, what=f"the SLA alerts of {ticket_id}")


def test_an_assigned_tickets_assignee_is_warned_and_the_supervisor_hears_the_breach(
    stack: Stack, client: TestClient
) -> None:
    tenant = configure(client)
    ticket_id = open_critical(client, tenant)
    assign(client, tenant, ticket_id, assignee_id="ana", team="Support")
    breach(stack, ticket_id)

    heard = told(
        client,
        tenant,
        ticket_id,
        {"ana": {"sla_warning", "sla_breached"}, "lead": {"sla_breached"}},
    )
    assert heard["lead"] == {"sla_breached"}, "supervisors hear breaches only"
    # The rest of the team is not told about a ticket someone owns.
    assert alerts_of(client, tenant, "ben", ticket_id) == set()
    assert alerts_of(client, tenant, "root", ticket_id) == set()


def test_an_unassigned_tickets_team_hears_both(
    stack: Stack, client: TestClient
) -> None:
    tenant = configure(client)
    ticket_id = open_critical(client, tenant)
    assign(client, tenant, ticket_id, team="Support")
    breach(stack, ticket_id)

    told(
        client,
        tenant,
        ticket_id,
        {
            "ana": {"sla_warning", "sla_breached"},
            "ben": {"sla_warning", "sla_breached"},
        },
    )
    assert alerts_of(client, tenant, "root", ticket_id) == set()


def test_a_ticket_without_a_team_reaches_the_tenants_admins(
    stack: Stack, client: TestClient
) -> None:
    tenant = configure(client)
    ticket_id = open_critical(client, tenant)
    breach(stack, ticket_id)

    told(client, tenant, ticket_id, {"root": {"sla_warning", "sla_breached"}})
    assert alerts_of(client, tenant, "ana", ticket_id) == set()


def test_supervisors_can_be_left_out_of_breaches(
    stack: Stack, client: TestClient
) -> None:
    tenant = configure(client, supervisors_on_breach=False)
    ticket_id = open_critical(client, tenant)
    assign(client, tenant, ticket_id, assignee_id="ana", team="Support")
    breach(stack, ticket_id)

    told(client, tenant, ticket_id, {"ana": {"sla_warning", "sla_breached"}})
    assert alerts_of(client, tenant, "lead", ticket_id) == set()
