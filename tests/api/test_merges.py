"""Merges over HTTP (issue 11, point 7): links, history, what is carried over,
and merges across customers, which no customer may see into."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from tests.api.conftest import AuthFor, Headers, put_settings

API = "/api/v1/tickets"
PROBLEM = "application/problem+json"


def open_ticket(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"title": "Printer on fire", **fields}
    response = client.post(f"{API}/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def merge(
    client: TestClient, headers: Headers, source: str, into: str, **body: Any
) -> Response:
    return client.post(
        f"{API}/{source}/merge", json={"into": into, **body}, headers=headers
    )


def get(client: TestClient, headers: Headers, path: str) -> Any:
    response = client.get(f"{API}/{path}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def events(history: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry["data"] for entry in history if entry["event"] == name]


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    return problem


# -- the same customer's tickets -------------------------------------------------


def test_both_tickets_link_to_each_other_and_say_so_in_their_history(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    owner = auth_for(tenant, "cust-1", "customer")
    target = open_ticket(client, owner)
    source = open_ticket(client, owner)

    merged = merge(client, agent, source["id"], target["id"])

    assert merged.status_code == 200, merged.text
    assert merged.json()["links"] == [
        {"ticket_id": target["id"], "relation": "merged_into"}
    ]
    kept = get(client, agent, target["id"])
    assert kept["links"] == [{"ticket_id": source["id"], "relation": "merged_from"}]
    for who in (agent, owner):  # the customer's own two tickets: both visible
        history = get(client, who, f"{source['id']}/history")
        (entry,) = events(history, "TicketMerged")
        assert entry["into_ticket_id"] == target["id"]
        assert entry["into_number"] == target["number"]
        assert {"linked_ticket_id": target["id"], "relation": "merged_into"} in events(
            history, "TicketLinked"
        )
        assert events(history, "TicketClosed") == [{"reason": "merged"}]
        other = get(client, who, f"{target['id']}/history")
        assert {"linked_ticket_id": source["id"], "relation": "merged_from"} in events(
            other, "TicketLinked"
        )
        assert get(client, who, source["id"])["merged_into"] == target["id"]


def test_the_target_receives_the_description_and_the_comments(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    owner = auth_for(tenant, "cust-1", "customer")
    target = open_ticket(client, owner, description="Paper jam")
    source = open_ticket(client, owner, description="It smokes.\nSince Monday.")
    sid = source["id"]
    for who, body in (
        (owner, {"body": "Any news?"}),
        (agent, {"body": "Vendor says: fuser", "internal": True}),
    ):
        response = client.post(f"{API}/{sid}/comments", json=body, headers=who)
        assert response.status_code == 201, response.text
    uploaded = client.post(
        f"{API}/{sid}/attachments",
        files={"file": ("smoke.jpg", b"\xff\xd8 smoke", "image/jpeg")},
        headers=owner,
    )
    assert uploaded.status_code == 201, uploaded.text

    assert merge(client, agent, sid, target["id"]).status_code == 200

    staff_view = get(client, agent, f"{target['id']}/comments")
    public, internal = staff_view
    assert (public["author_id"], public["author_role"]) == (
        "ticket-merge",
        "automation",
    )
    assert public["internal"] is False
    assert public["body"].startswith(f"Merged from request #{source['number']}")
    assert "Description by cust-1 (customer) at " in public["body"]
    assert "> It smokes.\n> Since Monday." in public["body"]
    assert "Comment by cust-1 (customer) at " in public["body"]
    assert "> Any news?" in public["body"]
    attachment = uploaded.json()["id"]
    assert f"smoke.jpg (8 bytes, image/jpeg), id {attachment}" in public["body"]
    assert internal["internal"] is True
    assert "Internal note by agent-1 (agent) at " in internal["body"]
    assert "> Vendor says: fuser" in internal["body"]
    # The customer reads the public part only.
    assert get(client, owner, f"{target['id']}/comments") == [public]
    # Carried over, not answered: the target still owes its first response.
    kept = get(client, agent, target["id"])
    assert kept["first_response_at"] is None
    assert kept["sla"]["first_response"]["state"] == "running"


# -- two customers' tickets ------------------------------------------------------


def two_customers(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """cust-1's duplicate and cust-2's ticket about the same outage."""
    first = auth_for(tenant, "cust-1", "customer")
    second = auth_for(tenant, "cust-2", "customer")
    source = open_ticket(
        client, first, title="Outage at Ada's", description="Ada's secret detail"
    )
    target = open_ticket(client, second, title="Outage at Bob's")
    comment = {"body": "Ada's phone is 555-0100"}
    response = client.post(
        f"{API}/{source['id']}/comments", json=comment, headers=first
    )
    assert response.status_code == 201, response.text
    return get(client, first, source["id"]), target


def test_a_merge_across_customers_is_refused_unless_confirmed(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    source, target = two_customers(client, auth_for, tenant)

    refused = merge(client, agent, source["id"], target["id"])

    problem = assert_problem(refused, 409)
    assert problem["type"].endswith("/problems/cross-customer-merge")
    assert "confirm_cross_customer" in problem["detail"]
    assert problem["source_customer_id"] == "cust-1"
    assert problem["target_customer_id"] == "cust-2"
    assert problem["confirmable"] is True
    for ticket in (source, target):  # nothing changed
        now = get(client, agent, ticket["id"])
        assert (now["version"], now["status"], now["links"]) == (
            ticket["version"],
            "new",
            [],
        )
    # A confirmation is JSON true, nothing that merely looks like one.
    not_quite = merge(
        client, agent, source["id"], target["id"], confirm_cross_customer="yes"
    )
    assert_problem(not_quite, 422)


def test_a_confirmed_merge_across_customers_shows_no_customer_the_other_ticket(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    first = auth_for(tenant, "cust-1", "customer")
    second = auth_for(tenant, "cust-2", "customer")
    source, target = two_customers(client, auth_for, tenant)

    merged = merge(
        client, agent, source["id"], target["id"], confirm_cross_customer=True
    )

    assert merged.status_code == 200, merged.text
    # Staff see the whole merge; what was carried is internal.
    assert get(client, agent, target["id"])["links"] == [
        {"ticket_id": source["id"], "relation": "merged_from"}
    ]
    (carried,) = get(client, agent, f"{target['id']}/comments")
    assert carried["internal"] is True
    assert "Ada's secret detail" in carried["body"]
    assert "Ada's phone is 555-0100" in carried["body"]
    (entry,) = events(get(client, agent, f"{source['id']}/history"), "TicketMerged")
    assert entry["cross_customer"] is True

    # cust-1 reads that their request was merged, never into what.
    mine = get(client, first, source["id"])
    assert (mine["status"], mine["merged_into"], mine["links"]) == ("closed", None, [])
    history = get(client, first, f"{source['id']}/history")
    assert events(history, "TicketMerged") == [{}]
    assert events(history, "TicketClosed") == [{"reason": "merged"}]
    # cust-2 sees nothing of cust-1's ticket on their own.
    theirs = get(client, second, target["id"])
    assert theirs["links"] == []
    assert get(client, second, f"{target['id']}/comments") == []
    seen = {
        "cust-1": [mine, history],
        "cust-2": [
            theirs,
            get(client, second, f"{target['id']}/history"),
            get(client, second, f"{target['id']}/comments"),
        ],
    }
    for other_ticket, customer in ((target, "cust-1"), (source, "cust-2")):
        text = json.dumps(seen[customer])
        assert other_ticket["id"] not in text
        assert other_ticket["title"] not in text
        assert f"#{other_ticket['number']}" not in text
    assert "Ada's" not in json.dumps(seen["cust-2"])


def test_a_link_across_customers_is_not_shown_to_either_customer(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    first = auth_for(tenant, "cust-1", "customer")
    second = auth_for(tenant, "cust-2", "customer")
    source, target = two_customers(client, auth_for, tenant)
    linked = client.post(
        f"{API}/{source['id']}/links",
        json={"ticket_id": target["id"], "relation": "relates_to"},
        headers=agent,
    )
    assert linked.status_code == 200, linked.text

    for who, mine, other in ((first, source, target), (second, target, source)):
        assert get(client, who, mine["id"])["links"] == []
        history = get(client, who, f"{mine['id']}/history")
        assert other["id"] not in json.dumps(history)
    # Their own tickets' links they keep seeing.
    own = open_ticket(client, first)
    client.post(
        f"{API}/{own['id']}/links",
        json={"ticket_id": source["id"], "relation": "relates_to"},
        headers=agent,
    )
    assert get(client, first, source["id"])["links"] == [
        {"ticket_id": own["id"], "relation": "relates_to"}
    ]


def test_a_tenant_may_refuse_merges_across_customers(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    put_settings(client, auth_for, tenant, {"merges": {"cross_customer": "refuse"}})
    agent = auth_for(tenant, "agent-1", "agent")
    source, target = two_customers(client, auth_for, tenant)

    refused = merge(
        client, agent, source["id"], target["id"], confirm_cross_customer=True
    )

    problem = assert_problem(refused, 409)
    assert problem["type"].endswith("/problems/cross-customer-merge")
    assert problem["confirmable"] is False
    assert "merges.cross_customer" in problem["detail"]
    assert get(client, agent, source["id"])["status"] == "new"
    # The same customer's tickets still merge.
    owner = auth_for(tenant, "cust-1", "customer")
    duplicate = open_ticket(client, owner)
    assert merge(client, agent, duplicate["id"], source["id"]).status_code == 200
