"""Time travel: every per-ticket read that can be rebuilt honours ``as_of``."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor

API = "/api/v1/tickets"


def worked_ticket(client: TestClient, agent: dict[str, str]) -> dict[str, Any]:
    created = client.post(
        f"{API}/", json={"title": "Disk full", "customer_id": "cust-1"}, headers=agent
    ).json()
    tid = created["id"]
    for path, body in (
        ("comments", {"body": "Cleaning up"}),
        ("assign", {"assignee_id": "agent-1"}),
        ("comments", {"body": "Done, please check"}),
    ):
        response = client.post(f"{API}/{tid}/{path}", json=body, headers=agent)
        assert response.is_success, response.text
    return client.get(f"{API}/{tid}", headers=agent).json()


def test_the_ticket_its_sla_comments_history_and_files_as_they_were(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    now = worked_ticket(client, agent)
    tid = now["id"]
    history = client.get(f"{API}/{tid}/history", headers=agent).json()
    # The first reply, and the first-response clock it stopped (met).
    met = next(e for e in history if e["event"] == "SLAStopped")
    version = met["version"]

    then = client.get(f"{API}/{tid}", params={"as_of": version}, headers=agent)
    assert then.status_code == 200
    assert then.json()["version"] == version
    assert then.json()["sla"] is not None
    assert then.json()["sla"]["first_response"]["state"] == "met"
    # By time, too: the moment of that event.
    at = client.get(f"{API}/{tid}", params={"as_of": met["at"]}, headers=agent).json()
    assert at["version"] == version

    sla = client.get(f"{API}/{tid}/sla", params={"as_of": version}, headers=agent)
    assert sla.status_code == 200, sla.text
    assert sla.json()["version"] == version
    comments = client.get(
        f"{API}/{tid}/comments", params={"as_of": version}, headers=agent
    ).json()
    assert [c["body"] for c in comments] == ["Cleaning up"]
    past = client.get(
        f"{API}/{tid}/history", params={"as_of": version}, headers=agent
    ).json()
    assert [e["version"] for e in past] == list(range(1, version + 1))
    files = client.get(
        f"{API}/{tid}/attachments", params={"as_of": version}, headers=agent
    )
    assert files.status_code == 200 and files.json() == []


def test_a_version_or_time_the_ticket_never_had_is_named(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    tid = worked_ticket(client, agent)["id"]
    for as_of in ("999", "0", "2001-01-01T00:00:00Z"):
        response = client.get(f"{API}/{tid}", params={"as_of": as_of}, headers=agent)
        assert response.status_code == 404, (as_of, response.text)
        problem = response.json()
        assert problem["type"].endswith("/no-such-version"), problem
        assert "version" in problem["detail"]
    missing = client.get(
        f"{API}/00000000-0000-4000-8000-000000000000",
        params={"as_of": "1"},
        headers=agent,
    )
    assert missing.json()["type"].endswith("/not-found")


def test_reads_that_cannot_be_rebuilt_refuse_as_of(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    tid = worked_ticket(client, agent)["id"]
    response = client.get(f"{API}/{tid}/workflow", params={"as_of": "1"}, headers=agent)
    assert response.status_code == 422
    assert "as_of" in response.text
