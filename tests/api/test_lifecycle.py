"""One ticket through its whole life over HTTP, with history and time travel."""

from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor

API = "/api/v1/tickets"


def test_a_ticket_from_creation_to_closure(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    customer = auth_for(tenant, "cust-1", "customer")

    created = client.post(
        f"{API}/",
        json={
            "title": "VPN drops every hour",
            "description": "Since Monday",
            "category": "technical_support",
            "priority": "high",
            "customer_email": "cust@example.com",
            "tags": ["VPN", "network"],
            "channel": "web",
        },
        headers=customer,
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    tid = ticket["id"]
    assert ticket["status"] == "new"
    assert ticket["number"] == 1
    assert ticket["customer_id"] == "cust-1"
    assert ticket["tags"] == ["vpn", "network"]
    assert ticket["position"] >= 1
    # TicketCreated, then the first-response and resolution clocks start.
    assert created.headers["etag"] == '"3"'

    steps = [
        ("assign", {"assignee_id": "agent-1", "team": "Network"}, "open"),
        ("comments", {"body": "Checking the logs", "internal": True}, "open"),
        ("comments", {"body": "Which client version?", "internal": False}, "open"),
        ("status", {"status": "pending"}, "pending"),
        ("status", {"status": "in_progress"}, "in_progress"),
        ("escalate", {"reason": "Needs engineering", "team": "Engineering"}, None),
        ("resolve", {"resolution": "Patched", "resolution_code": "fixed"}, "resolved"),
        ("reopen", {"reason": "Happened again"}, "open"),
        ("resolve", {"resolution": "Patched v2", "resolution_code": "fixed"}, None),
        ("close", None, "closed"),
    ]
    statuses = {3: "new"}
    for action, body, expected_status in steps:
        response = client.post(f"{API}/{tid}/{action}", json=body, headers=agent)
        assert response.status_code in (200, 201), (action, response.text)
        current = client.get(f"{API}/{tid}", headers=agent).json()
        if expected_status:
            assert current["status"] == expected_status, action
        statuses[current["version"]] = current["status"]

    final = client.get(f"{API}/{tid}", headers=agent).json()
    assert final["version"] == 19
    assert final["reopen_count"] == 1
    assert final["escalation_level"] == 1
    assert final["assigned_team"] == "Engineering"
    assert final["first_response_at"] is not None
    assert final["closed_at"] is not None

    history = client.get(f"{API}/{tid}/history", headers=agent).json()
    assert [entry["event"] for entry in history] == [
        "TicketCreated",
        "SLAStarted",  # first response
        "SLAStarted",  # resolution
        "TicketAssigned",
        "CommentAdded",  # internal: no response
        "CommentAdded",  # the first public reply...
        "SLAStopped",  # ...meets the first-response target
        "StatusChanged",  # pending...
        "SLAPaused",  # ...pauses the resolution clock
        "StatusChanged",
        "SLAResumed",
        "TicketEscalated",
        "TicketResolved",
        "SLAStopped",  # resolution met
        "TicketReopened",
        "SLAStarted",  # a new resolution clock
        "TicketResolved",
        "SLAStopped",
        "TicketClosed",
    ]
    assert [entry["version"] for entry in history] == list(range(1, 20))
    assert history[0]["actor"] == {"id": "cust-1", "role": "customer", "kind": "user"}
    # SLA clocks move by the system's rules, caused by the event before.
    clocks = [e for e in history if e["event"].startswith("SLA")]
    assert {e["actor"]["id"] for e in clocks} == {"sla"}
    assert all(e["actor"]["kind"] == "automation" for e in clocks)
    assert all(e["causation_id"] == f"{tid}:{e['version'] - 1}" for e in clocks)
    people = [e for e in history[3:] if not e["event"].startswith("SLA")]
    assert all(e["actor"]["id"] == "agent-1" for e in people)
    assert all(e["correlation_id"] for e in history)
    assert history[7]["data"]["previous_status"] == "open"
    assert history[7]["data"]["status"] == "pending"
    assert [e["data"]["target"] for e in history if e["event"] == "SLAStopped"] == [
        "first_response",
        "resolution",
        "resolution",
    ]
    assert {e["data"]["outcome"] for e in history if e["event"] == "SLAStopped"} == {
        "met"
    }

    for version, status in statuses.items():
        past = client.get(f"{API}/{tid}", params={"as_of": version}, headers=agent)
        assert past.status_code == 200
        assert past.json()["version"] == version
        assert past.json()["status"] == status

    by_time = client.get(
        f"{API}/{tid}", params={"as_of": history[8]["at"]}, headers=agent
    ).json()
    assert (by_time["version"], by_time["status"]) == (9, "pending")

    refused = client.post(f"{API}/{tid}/reopen", json={}, headers=agent)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "closed" in refused.json()["detail"]
    assert "reopen" in refused.json()["detail"]


def test_customer_sees_public_comments_only(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    customer = auth_for(tenant, "cust-1", "customer")
    tid = client.post(f"{API}/", json={"title": "Help"}, headers=customer).json()["id"]
    client.post(
        f"{API}/{tid}/comments",
        json={"body": "secret", "internal": True},
        headers=agent,
    )
    client.post(f"{API}/{tid}/comments", json={"body": "hello"}, headers=agent)

    seen = client.get(f"{API}/{tid}/comments", headers=customer).json()
    assert [c["body"] for c in seen] == ["hello"]
    history = client.get(f"{API}/{tid}/history", headers=customer).json()
    assert "secret" not in str(history)
    assert client.get(f"{API}/{tid}", headers=customer).json()["comment_count"] == 1
    assert len(client.get(f"{API}/{tid}/comments", headers=agent).json()) == 2


def test_a_customer_marks_their_own_ticket_solved(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    customer = auth_for(tenant, "cust-1", "customer")
    stranger = auth_for(tenant, "cust-2", "customer")
    created = client.post(f"{API}/", json={"title": "Wi-Fi"}, headers=customer)
    tid = created.json()["id"]

    hidden = client.post(f"{API}/{tid}/resolve", json={}, headers=stranger)
    assert hidden.status_code == 404
    solved = client.post(
        f"{API}/{tid}/resolve",
        # A customer cannot choose the code: reports must tell who solved it.
        json={"resolution": "It works after a restart", "resolution_code": "fixed"},
        headers=customer,
    )
    assert solved.status_code == 200, solved.text
    ticket = solved.json()
    assert ticket["status"] == "resolved"
    assert ticket["resolution"] == {
        "note": "It works after a restart",
        "code": "solved_by_customer",
    }
    history = client.get(f"{API}/{tid}/history", headers=customer).json()
    assert history[-1]["event"] == "TicketResolved"
    assert history[-1]["actor"] == {"id": "cust-1", "role": "customer", "kind": "user"}
    # And they can still reopen it, as before.
    reopened = client.post(
        f"{API}/{tid}/reopen", json={"reason": "Down again"}, headers=customer
    )
    assert reopened.json()["status"] == "open"


def test_the_tickets_files_are_listed(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    customer = auth_for(tenant, "cust-1", "customer")
    stranger = auth_for(tenant, "cust-2", "customer")
    tid = client.post(f"{API}/", json={"title": "Scan"}, headers=customer).json()["id"]
    assert client.get(f"{API}/{tid}/attachments", headers=customer).json() == []
    for name in ("one.png", "two.pdf"):
        uploaded = client.post(
            f"{API}/{tid}/attachments",
            files={"file": (name, b"bytes of " + name.encode(), "image/png")},
            headers=customer,
        )
        assert uploaded.status_code == 201, uploaded.text
    listed = client.get(f"{API}/{tid}/attachments", headers=customer)
    assert listed.status_code == 200
    assert [a["filename"] for a in listed.json()] == ["one.png", "two.pdf"]
    first = listed.json()[0]
    download = client.get(f"{API}/{tid}/attachments/{first['id']}", headers=customer)
    assert download.content == b"bytes of one.png"
    assert client.get(f"{API}/{tid}/attachments", headers=stranger).status_code == 404
