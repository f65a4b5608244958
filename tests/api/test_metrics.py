"""/metrics after a workload: the counters grew by what the workload did."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import AuthFor
from tests.metrics import sample

CREATE_ROUTE = "/api/v1/tickets/"


def scrape(client: TestClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_creates_show_as_requests_of_their_route_and_as_saves(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    customer = auth_for(tenant, "cust-1", "customer")
    before = scrape(client)

    for n in range(5):
        response = client.post(
            CREATE_ROUTE, json={"title": f"Printer {n}"}, headers=customer
        )
        assert response.status_code == 201
    unknown = client.get(f"/api/v1/tickets/{'0' * 8}-no-such-id", headers=customer)
    after = scrape(client)

    created = {"method": "POST", "route": CREATE_ROUTE, "status": "201"}
    grew = sample(after, "ticketing_http_requests_total", **created) - sample(
        before, "ticketing_http_requests_total", **created
    )
    assert grew == 5
    timed = {"method": "POST", "route": CREATE_ROUTE}
    assert (
        sample(after, "ticketing_http_request_duration_seconds_count", **timed)
        - sample(before, "ticketing_http_request_duration_seconds_count", **timed)
        == 5
    )
    # At least one save per create (a rule's assignment or SLA may add events).
    assert (
        sample(after, "ticketing_event_store_saves_total")
        - sample(before, "ticketing_event_store_saves_total")
        >= 5
    )
    # The route's template is the label, never the path with its id.
    assert unknown.status_code == 422
    assert "no-such-id" not in after


def test_metrics_need_no_token_and_are_not_in_the_request_paths(
    client: TestClient,
) -> None:
    text = scrape(client)

    assert "ticketing_http_requests_total" in text
    assert 'route="/metrics"' in scrape(client)
