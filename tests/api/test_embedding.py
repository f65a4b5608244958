"""The router mounted into a host application with the host's own auth."""

from fastapi import FastAPI, Header
from fastapi.testclient import TestClient

from dotmac.ticketing.schemas import TicketCategory, TicketPriority
from dotmac.ticketing.service import (
    Ticketing,
    create_ticket_router,
    install_problem_handlers,
)


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
