"""The router mounted into a host application with the host's own auth."""

import asyncio

import pytest
from fastapi import FastAPI, Header, Query
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dotmac.ticketing import TicketCreate, TicketRead, TicketService
from dotmac.ticketing.schemas import TicketCategory, TicketPriority
from dotmac.ticketing.service import (
    Ticketing,
    create_ticket_router,
    initialize_ticketing,
    install_problem_handlers,
)
from dotmac.ticketing.service.errors import PermissionDenied, TicketNotFound


def test_router_mounts_behind_host_auth(ticketing: Ticketing, tenant: str) -> None:
    def current_tenant(x_tenant: str = Header()) -> str:
        return x_tenant

    def current_user(x_user: str = Header()) -> dict[str, object]:
        return {"sub": x_user, "roles": ["agent"]}

    host = FastAPI()
    host.include_router(
        create_ticket_router(
            ticketing.tickets,
            get_current_tenant=current_tenant,
            get_current_user=current_user,
        ),
        prefix="/support",
    )
    install_problem_handlers(host)
    headers = {"X-Tenant": tenant, "X-User": "agent-1"}

    with TestClient(host) as client:
        created = client.post(
            "/support/tickets/",
            json={"title": "From the host", "customer_id": "c-1"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        refused = client.post(f"/support/tickets/{tid}/close", headers=headers)
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        hidden = client.get(
            f"/support/tickets/{tid}", headers={**headers, "X-Tenant": "other"}
        )
        assert hidden.status_code == 404
        assert client.get("/nowhere").json()["type"].endswith("/not-found")


def test_the_hosts_dependencies_are_part_of_the_routes(
    ticketing: Ticketing, tenant: str
) -> None:
    """As if written in the routes: in the host's document, and their query
    parameters taken (the routes refuse the ones nothing declares)."""

    def current_tenant(x_tenant: str = Header()) -> str:
        return x_tenant

    def current_user(as_user: str = Query()) -> dict[str, object]:
        return {"sub": as_user, "roles": ["agent"]}

    host = FastAPI()
    host.include_router(
        create_ticket_router(
            ticketing.tickets,
            get_current_tenant=current_tenant,
            get_current_user=current_user,
        )
    )
    operation = host.openapi()["paths"]["/tickets/{ticket_id}/close"]["post"]
    assert [(p["in"], p["name"]) for p in operation["parameters"]] == [
        ("path", "ticket_id"),
        ("query", "as_user"),
        ("header", "if-match"),
        ("header", "x-tenant"),
    ]
    with TestClient(host) as client:
        created = client.post(
            "/tickets/",
            params={"as_user": "agent-1"},
            json={"title": "Query auth", "customer_id": "c-1"},
            headers={"X-Tenant": tenant},
        )
        assert created.status_code == 201, created.text
        unknown = client.get(
            f"/tickets/{created.json()['id']}",
            params={"as_user": "agent-1", "nope": "1"},
            headers={"X-Tenant": tenant},
        )
        assert unknown.status_code == 422
        assert [e["loc"] for e in unknown.json()["errors"]] == [["query", "nope"]]


def test_use_cases_without_http(ticketing: Ticketing, tenant: str) -> None:
    result = ticketing.tickets.create_customer_ticket(
        tenant_id=tenant,
        customer_id="cust-42",
        title="Printer on fire",
        category=TicketCategory.TECHNICAL_SUPPORT,
        priority=TicketPriority.URGENT,
    )
    assert result.ticket.number == 1
    assert result.ticket.customer_id == "cust-42"
    assert result.ticket.created_by == {
        "id": "cust-42",
        "role": "customer",
        "kind": "user",
    }
    assert result.position is not None


def test_the_async_service_works_a_ticket_through(
    ticketing: Ticketing, tenant: str
) -> None:
    service = TicketService(ticketing)
    agent = {"sub": "agent-1", "roles": ["agent"]}

    async def work() -> list[TicketRead]:
        opened = await service.create_customer_ticket(
            db=None,
            tenant_id=tenant,
            customer_id="cust-9",
            **TicketCreate(title="Slow line", customer_email="c9@example.com").dict(),
        )
        ids = {"tenant_id": tenant, "user": agent, "ticket_id": opened.id}
        return [
            opened,
            await service.assign_ticket(**ids, assignee_id="agent-1"),
            await service.add_comment(**ids, body="Rebooted the line"),
            await service.resolve_ticket(
                **ids, resolution="Line reset", resolution_code="fixed"
            ),
            await service.close_ticket(**ids),
            await service.get_ticket(**ids),
        ]

    opened, assigned, replied, resolved, closed, read = asyncio.run(work())
    assert opened.customer_id == "cust-9" and opened.position is not None
    assert opened.pending_escalation is None  # the customer's own view
    assert assigned.status == "open" and assigned.assignee_id == "agent-1"
    assert replied.first_response_at is not None
    assert resolved.status == "resolved"
    assert closed.status == "closed" and read.version == closed.version


def test_a_refused_command_raises_the_services_error(
    ticketing: Ticketing, tenant: str
) -> None:
    service = TicketService(ticketing)
    customer = {"sub": "cust-9", "roles": ["customer"]}
    opened = asyncio.run(
        service.create_customer_ticket(
            tenant_id=tenant, customer_id="cust-9", title="x"
        )
    )
    with pytest.raises(PermissionDenied):
        asyncio.run(
            service.assign_ticket(
                tenant_id=tenant, user=customer, ticket_id=opened.id, team="x"
            )
        )
    with pytest.raises(TicketNotFound):
        asyncio.run(
            service.get_ticket(tenant_id="other", user=customer, ticket_id=opened.id)
        )


def test_a_config_key_nothing_reads_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="unknown configuration keys: sla_confg"):
        initialize_ticketing({"database_url": database_url, "sla_confg": {}})
    with pytest.raises(ValidationError, match="sla_config"):
        initialize_ticketing(
            {"database_url": database_url, "sla_config": {"normal": {"response": -5}}}
        )
