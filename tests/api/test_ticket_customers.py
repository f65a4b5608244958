"""Whom a new ticket is for: the customer themself, or whom staff name.

Staff name the customer by id, or by e-mail address alone: then the ticket
is for the tenant's customer of the first ticket with that address, else
for a customer whose id is derived from the address.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.domain.customers import derived_customer_id
from tests.api.conftest import AuthFor, Headers

API = "/api/v1/tickets"
PROBLEM = "application/problem+json"

# Lookups by address read the tickets read model.
pytestmark = pytest.mark.usefixtures("projections")


def create(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/", json={"title": "Help", **body}, headers=headers)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


@pytest.mark.parametrize("role", ["agent", "supervisor", "admin", "service"])
def test_staff_naming_no_customer_get_a_validation_error_and_nothing_is_created(
    client: TestClient, auth_for: AuthFor, tenant: str, role: str
) -> None:
    staff = auth_for(tenant, "staff-1", role)
    refused = client.post(f"{API}/", json={"title": "For whom?"}, headers=staff)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["type"].endswith("/invalid-command")
    assert problem["field"] == "customer_id"
    assert "customer_email" in problem["detail"]
    # Nothing was written: not even a ticket number was used up.
    assert create(client, staff, customer_id="cust-1")["number"] == 1


def test_staff_may_name_a_known_customer_by_address(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    create(client, agent, customer_id="cust-42", customer_email="Ada@Example.com")
    # A later ticket with the address, someone else's, must not take over.
    create(client, agent, customer_id="cust-43", customer_email="ada@example.com")

    ticket = create(client, agent, customer_email=" ADA@example.COM ")
    assert ticket["customer_id"] == "cust-42"
    assert ticket["customer_email"] == "ADA@example.COM"
    # The customer sees it among their own tickets.
    customer = auth_for(tenant, "cust-42", "customer")
    mine = client.get(f"{API}/{ticket['id']}", headers=customer)
    assert mine.status_code == 200, mine.text


def test_an_unknown_address_gets_a_stable_customer_of_its_own(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    first = create(client, agent, customer_email="new.person@example.org")
    expected = derived_customer_id(tenant, "new.person@example.org")
    assert first["customer_id"] == expected
    assert "new.person" not in expected
    # The next ticket for that address (any spelling) is the same customer's.
    again = create(client, agent, customer_email="New.Person@EXAMPLE.org")
    assert again["customer_id"] == expected
    listed = client.get(
        f"{API}/",
        params={"customer_id": expected, "min_position": again["position"]},
        headers=agent,
    )
    assert listed.status_code == 200, listed.text
    assert {t["id"] for t in listed.json()["items"]} == {first["id"], again["id"]}
    # The same address at another tenant is another tenant's customer.
    elsewhere = create(
        client,
        auth_for(f"{tenant}-b", "agent-1", "agent"),
        customer_email="new.person@example.org",
    )
    assert elsewhere["customer_id"] != expected


def test_an_explicit_customer_id_wins_over_the_address(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    create(client, agent, customer_id="cust-42", customer_email="ada@example.com")
    ticket = create(
        client, agent, customer_id="cust-7", customer_email="ada@example.com"
    )
    assert ticket["customer_id"] == "cust-7"


def test_an_address_that_is_not_one_is_refused(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    refused = client.post(
        f"{API}/", json={"title": "Help", "customer_email": "ada"}, headers=agent
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert ["body", "customer_email"] in [e["loc"] for e in refused.json()["errors"]]


def test_customers_still_open_tickets_for_themselves_only(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    customer = auth_for(tenant, "cust-1", "customer")
    own = create(client, customer, customer_email="me@example.com")
    assert own["customer_id"] == "cust-1"
    assert create(client, customer, customer_id="cust-1")["customer_id"] == "cust-1"
    # An address does not make a customer someone else.
    agent = auth_for(tenant, "agent-1", "agent")
    create(client, agent, customer_id="cust-9", customer_email="nine@example.com")
    by_address = create(client, customer, customer_email="nine@example.com")
    assert by_address["customer_id"] == "cust-1"

    refused = client.post(
        f"{API}/", json={"title": "Help", "customer_id": "cust-2"}, headers=customer
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == PROBLEM


def test_a_ticket_carries_the_customers_name_for_its_mail(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    customer = auth_for(tenant, "cust-7", "customer")
    ticket = create(client, customer, customer_name="  Ada Lovelace ")
    assert ticket["customer_name"] == "Ada Lovelace"
    read = client.get(f"{API}/{ticket['id']}", headers=customer).json()
    assert read["customer_name"] == "Ada Lovelace"
    assert create(client, customer)["customer_name"] is None
    for bad in ("   ", "x" * 201):
        refused = client.post(
            f"{API}/",
            json={"title": "Help", "customer_name": bad},
            headers=customer,
        )
        assert refused.status_code == 422, refused.text
        assert ["body", "customer_name"] in [e["loc"] for e in refused.json()["errors"]]
