"""Command details over HTTP: idempotency, versions, merge, links, files."""

import hashlib

from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor

API = "/api/v1/tickets"


def open_ticket(client: TestClient, headers: dict[str, str], **fields: object) -> dict:
    body = {"title": "Something broke", "customer_id": "cust-1", **fields}
    response = client.post(f"{API}/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_idempotency_key_returns_the_same_ticket(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    keyed = {**agent, "Idempotency-Key": "order-1234"}
    body = {"title": "Refund", "customer_id": "cust-1"}
    first = client.post(f"{API}/", json=body, headers=keyed)
    again = client.post(f"{API}/", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["number"] == first.json()["number"]
    assert again.headers["idempotent-replayed"] == "true"

    other_tenant = {
        **auth_for(f"{tenant}-x", "a", "agent"),
        "Idempotency-Key": "order-1234",
    }
    elsewhere = client.post(f"{API}/", json=body, headers=other_tenant)
    assert elsewhere.status_code == 201
    assert elsewhere.json()["id"] != first.json()["id"]

    different = client.post(f"{API}/", json={**body, "title": "Other"}, headers=keyed)
    assert different.status_code == 422
    assert different.json()["type"].endswith("/idempotency-key-reused")


def test_numbers_count_per_tenant(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    numbers = [open_ticket(client, agent)["number"] for _ in range(3)]
    assert numbers == [1, 2, 3]


def test_if_match_guards_against_lost_updates(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    ticket = open_ticket(client, agent)
    tid = ticket["id"]
    read = client.get(f"{API}/{tid}", headers=agent)
    etag = read.headers["etag"]
    assert etag == f'"{ticket["version"]}"'

    ok = client.put(
        f"{API}/{tid}", json={"priority": "urgent"}, headers={**agent, "If-Match": etag}
    )
    assert ok.status_code == 200
    # PriorityChanged, and both SLA clocks recalculated for the new priority.
    current = ticket["version"] + 3
    assert ok.headers["etag"] == f'"{current}"'
    stale = client.put(
        f"{API}/{tid}", json={"priority": "low"}, headers={**agent, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == current
    assert client.get(f"{API}/{tid}", headers=agent).json()["priority"] == "urgent"


def test_partial_update_records_what_changed(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    tid = open_ticket(client, agent, tags=["a"])["id"]
    response = client.put(
        f"{API}/{tid}",
        json={"title": "New title", "category": "billing", "tags": ["a", "b"]},
        headers=agent,
    )
    assert response.status_code == 200
    ticket = response.json()
    assert (ticket["title"], ticket["category"], ticket["tags"]) == (
        "New title",
        "billing",
        ["a", "b"],
    )
    history = client.get(f"{API}/{tid}/history", headers=agent).json()
    # After the creation and its two SLAStarted events.
    updated, categorized = history[3], history[4]
    assert updated["event"] == "TicketUpdated"
    assert updated["data"]["previous"] == {"title": "Something broke", "tags": ["a"]}
    assert categorized["data"] == {
        "category": "billing",
        "previous_category": "general",
        "confidence": None,
    }
    # Saying the same again changes nothing and writes nothing.
    same = client.put(f"{API}/{tid}", json={"title": "New title"}, headers=agent)
    assert same.json()["version"] == ticket["version"]
    assert same.json()["position"] is None


def test_merge_closes_the_duplicate_and_links_both(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    original = open_ticket(client, agent)["id"]
    duplicate = open_ticket(client, agent)["id"]
    merged = client.post(
        f"{API}/{duplicate}/merge", json={"into": original}, headers=agent
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "closed"
    assert merged.json()["merged_into"] == original
    target = client.get(f"{API}/{original}", headers=agent).json()
    assert {"ticket_id": duplicate, "relation": "merged_from"} in target["links"]


def test_links_are_recorded_on_both_tickets(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    a, b = open_ticket(client, agent)["id"], open_ticket(client, agent)["id"]
    response = client.post(
        f"{API}/{a}/links", json={"ticket_id": b, "relation": "blocks"}, headers=agent
    )
    assert response.status_code == 200
    assert response.json()["links"] == [{"ticket_id": b, "relation": "blocks"}]
    other = client.get(f"{API}/{b}", headers=agent).json()
    assert other["links"] == [{"ticket_id": a, "relation": "blocked_by"}]


def test_attachment_round_trip_and_limit(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    customer = auth_for(tenant, "cust-1", "customer")
    tid = client.post(f"{API}/", json={"title": "Logs"}, headers=customer).json()["id"]
    content = bytes(range(256)) * 40
    uploaded = client.post(
        f"{API}/{tid}/attachments",
        files={"file": ("trace.bin", content, "application/octet-stream")},
        headers=customer,
    )
    assert uploaded.status_code == 201, uploaded.text
    meta = uploaded.json()
    assert meta["size"] == len(content)
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()

    download = client.get(f"{API}/{tid}/attachments/{meta['id']}", headers=customer)
    assert download.status_code == 200
    assert download.content == content
    assert "trace.bin" in download.headers["content-disposition"]

    too_big = client.post(
        f"{API}/{tid}/attachments",
        files={"file": ("big.bin", b"x" * (64 * 1024 + 1), "application/octet-stream")},
        headers=customer,
    )
    assert too_big.status_code == 413
    ticket = client.get(f"{API}/{tid}", headers=customer).json()
    assert [a["id"] for a in ticket["attachments"]] == [meta["id"]]


def test_request_id_is_the_events_correlation_id(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    response = client.post(
        f"{API}/",
        json={"title": "Traced", "customer_id": "c"},
        headers={**agent, "X-Request-ID": "trace-abc-123"},
    )
    assert response.headers["x-request-id"] == "trace-abc-123"
    history = client.get(f"{API}/{response.json()['id']}/history", headers=agent)
    assert history.json()[0]["correlation_id"] == "trace-abc-123"


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_the_customer_rates_a_resolved_ticket(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    customer = auth_for(tenant, "cust-1", "customer")
    tid = client.post(f"{API}/", json={"title": "Rate me"}, headers=customer).json()[
        "id"
    ]
    too_early = client.post(
        f"{API}/{tid}/satisfaction", json={"rating": 5}, headers=customer
    )
    assert too_early.status_code == 409
    client.post(
        f"{API}/{tid}/resolve",
        json={"resolution": "done", "resolution_code": "fixed"},
        headers=agent,
    )
    assert (
        client.post(
            f"{API}/{tid}/satisfaction", json={"rating": 6}, headers=customer
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"{API}/{tid}/satisfaction", json={"rating": 5}, headers=agent
        ).status_code
        == 403
    )
    rated = client.post(
        f"{API}/{tid}/satisfaction",
        json={"rating": 4, "comment": "Quick"},
        headers=customer,
    )
    assert rated.status_code == 200, rated.text
    assert rated.json()["satisfaction"] == {"rating": 4, "comment": "Quick"}
    history = client.get(f"{API}/{tid}/history", headers=customer).json()
    assert history[-1]["event"] == "SatisfactionRated"
