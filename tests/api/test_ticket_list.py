"""GET /tickets/: filters, sorts, search, pagination, visibility."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.projections.ticket_queries import TicketFilter, list_tickets
from dotmac.ticketing.service.bootstrap import Ticketing
from tests.api.conftest import AuthFor

API = "/api/v1/tickets"

pytestmark = pytest.mark.usefixtures("projections")


class Desk:
    """A tenant's help desk, driven over HTTP, with read-your-writes."""

    def __init__(self, client: TestClient, auth_for: AuthFor, tenant: str) -> None:
        self.client = client
        self.agent = auth_for(tenant, "agent-1", "agent")
        self.auth_for = auth_for
        self.tenant = tenant
        self.position = 0

    def open(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "A ticket", "customer_id": "cust-1", **fields}
        response = self.client.post(f"{API}/", json=body, headers=self.agent)
        assert response.status_code == 201, response.text
        self.position = max(self.position, response.json()["position"])
        return response.json()

    def do(self, tid: str, action: str, body: dict[str, Any] | None = None) -> None:
        response = self.client.post(
            f"{API}/{tid}/{action}", json=body, headers=self.agent
        )
        assert response.is_success, response.text
        # Ticket responses carry the position; comments carry it in a header.
        position = response.json().get("position") or int(
            response.headers.get("x-event-position", 0)
        )
        self.position = max(self.position, position)

    def page(self, headers: dict[str, str] | None = None, **params: Any) -> dict:
        response = self.client.get(
            f"{API}/",
            params={"min_position": self.position, **params},
            headers=headers or self.agent,
        )
        assert response.status_code == 200, response.text
        assert "x-projection-stale" not in response.headers
        return response.json()

    def numbers(self, **params: Any) -> list[int]:
        return [t["number"] for t in self.page(**params)["items"]]


@pytest.fixture
def desk(client: TestClient, auth_for: AuthFor, tenant: str) -> Desk:
    return Desk(client, auth_for, tenant)


@pytest.fixture
def sample(desk: Desk) -> Iterator[Desk]:
    """Five tickets with distinct fields (numbers 1..5)."""
    one = desk.open(title="Printer jams", priority="low", tags=["hardware"])
    two = desk.open(
        title="Invoice wrong",
        category="billing",
        priority="high",
        tags=["billing", "vip"],
        customer_id="cust-2",
    )
    three = desk.open(
        title="VPN drops", category="technical_support", priority="urgent"
    )
    four = desk.open(title="Password reset", category="account", tags=["vip"])
    desk.open(title="Feature idea", priority="low", description="Dark mode please")
    desk.do(one["id"], "assign", {"assignee_id": "agent-7", "team": "Hardware"})
    desk.do(three["id"], "assign", {"team": "Network"})
    desk.do(three["id"], "status", {"status": "in_progress"})
    desk.do(four["id"], "resolve", {"resolution": "done", "resolution_code": "fixed"})
    desk.do(two["id"], "comments", {"body": "The refund was credited twice"})
    desk.do(two["id"], "comments", {"body": "kangaroo", "internal": True})
    yield desk


def test_filters(sample: Desk) -> None:
    assert sample.numbers(status="new") == [5, 2]
    assert sample.numbers(status=["open", "in_progress"]) == [3, 1]
    assert sample.numbers(priority="low") == [5, 1]
    assert sample.numbers(category=["billing", "account"]) == [4, 2]
    assert sample.numbers(assigned_team="Network") == [3]
    assert sample.numbers(assignee_id="agent-7") == [1]
    assert sample.numbers(customer_id="cust-2") == [2]
    assert sample.numbers(tags="vip") == [4, 2]
    assert sample.numbers(tags=["vip", "billing"]) == [4, 2]
    assert sample.numbers(tags=["vip", "billing"], tags_match="all") == [2]
    # #2 was answered (its first response is met), #4 resolved unanswered.
    assert sample.numbers(sla_state="running") == [5, 3, 2, 1]
    assert sample.numbers(sla_state="met") == [4]
    assert sample.numbers(sla_state=["met", "warning"]) == [4]
    assert sample.numbers(sla_state="ok") == [5, 4, 3, 2, 1]
    assert sample.numbers(sla_state="breached") == []
    assert sample.numbers(sla_breached="false") == [5, 4, 3, 2, 1]
    assert sample.numbers(sla_breached="true") == []
    assert sample.numbers(escalation_pending="true") == []
    assert sample.numbers(status="resolved", priority="normal") == [4]


def test_time_ranges(sample: Desk) -> None:
    items = sample.page(sort="created")["items"]
    third = items[2]["created_at"]
    assert sample.numbers(created_from=third, sort="created") == [3, 4, 5]
    assert sample.numbers(created_to=third, sort="created") == [1, 2]
    updated = {t["number"]: t["updated_at"] for t in items}
    assert sample.numbers(updated_from=updated[2], sort="updated")[-1] == 2


def test_full_text_search_over_title_description_and_public_comments(
    sample: Desk,
) -> None:
    assert sample.numbers(q="printer") == [1]
    assert sample.numbers(q="dark mode") == [5]
    assert sample.numbers(q="credited") == [2]  # a public reply
    # Internal notes: found by staff, never by the customer.
    assert sample.numbers(q="kangaroo") == [2]
    customer = sample.auth_for(sample.tenant, "cust-2", "customer")
    assert sample.page(headers=customer, q="kangaroo")["items"] == []
    assert [
        t["number"] for t in sample.page(headers=customer, q="credited")["items"]
    ] == [2]
    assert sample.numbers(q="jamming") == [1]  # stemmed: jams ~ jamming
    assert sample.numbers(q="invoice OR vpn") == [3, 2]


def test_sort_orders(sample: Desk) -> None:
    assert sample.numbers(sort="created") == [1, 2, 3, 4, 5]
    assert sample.numbers(sort="-created") == [5, 4, 3, 2, 1]
    # Ties (#1 and #5 are both low) are broken by id, a stable but arbitrary
    # order: compare the sequence of priorities, then the members of a tie.
    by_priority = sample.page(sort="-priority")["items"]
    assert [t["priority"] for t in by_priority] == [
        "urgent",
        "high",
        "normal",
        "low",
        "low",
    ]
    assert [t["number"] for t in by_priority[:3]] == [3, 2, 4]
    assert {t["number"] for t in by_priority[3:]} == {1, 5}
    assert sample.numbers(sort="priority") == sample.numbers(sort="-priority")[::-1]
    # The last change was the comments on #2, before that #4's resolution.
    assert sample.numbers(sort="-updated")[:2] == [2, 4]
    assert sorted(sample.numbers(sort="due")) == [1, 2, 3, 4, 5]


def test_list_shows_the_projected_fields(sample: Desk) -> None:
    (two,) = sample.page(customer_id="cust-2")["items"]
    assert two["title"] == "Invoice wrong"
    assert two["tags"] == ["billing", "vip"]
    assert two["comment_count"] == 2
    # The default targets of a high ticket, around the clock: first
    # response in 240 minutes (met by the reply), resolution in 1440.
    created = datetime.fromisoformat(two["created_at"])
    resolution_due = created + timedelta(minutes=1440)
    sla = two["sla"]
    assert (sla["state"], sla["breached"]) == ("running", False)
    assert (sla["policy"], sla["settings_version"]) == ("default", 0)
    assert datetime.fromisoformat(sla["response_due_at"]) == created + timedelta(
        minutes=240
    )
    assert datetime.fromisoformat(sla["resolution_due_at"]) == resolution_due
    assert datetime.fromisoformat(sla["next_due_at"]) == resolution_due
    assert sla["next_reply_due_at"] is None
    assert set(sla["targets"]) == {"first_response", "resolution"}
    response = sla["targets"]["first_response"]
    assert (response["state"], response["stopped_at"] is not None) == ("met", True)
    assert sla["targets"]["resolution"]["state"] == "running"
    assert two["pending_escalation"] is None


def test_sla_states_pause_and_the_due_sort(desk: Desk) -> None:
    waiting = desk.open(title="Waiting on the customer")
    running = desk.open(title="Running", priority="urgent")
    desk.do(waiting["id"], "comments", {"body": "Can you send a log?"})
    desk.do(waiting["id"], "status", {"status": "pending"})

    # Answered, and the resolution clock paused: nothing runs.
    assert desk.numbers(sla_state="paused") == [waiting["number"]]
    assert desk.numbers(sla_state="running") == [running["number"]]
    (item,) = desk.page(sla_state="paused")["items"]
    resolution = item["sla"]["targets"]["resolution"]
    assert (resolution["state"], resolution["due_at"]) == ("paused", None)
    assert resolution["paused_since"] is not None
    assert item["sla"]["next_due_at"] is None
    # A ticket with a running clock first, a paused one last (either way).
    assert desk.numbers(sort="due") == [running["number"], waiting["number"]]
    assert desk.numbers(sort="-due") == [running["number"], waiting["number"]]


def test_customers_see_only_their_own_tickets_and_public_counts(
    sample: Desk,
) -> None:
    customer = sample.auth_for(sample.tenant, "cust-2", "customer")
    page = sample.page(headers=customer)
    assert [t["number"] for t in page["items"]] == [2]
    assert page["items"][0]["comment_count"] == 1
    # SLA states and times, but not the policy behind them.
    sla = page["items"][0]["sla"]
    assert (sla["state"], sla["policy"], sla["settings_version"]) == (
        "running",
        None,
        None,
    )
    assert sla["targets"]["first_response"]["business_minutes"] is None
    # Asking for someone else's tickets changes nothing.
    page = sample.page(headers=customer, customer_id="cust-1")
    assert [t["number"] for t in page["items"]] == [2]


def test_other_tenants_tickets_never_appear(sample: Desk) -> None:
    stranger = sample.auth_for(f"{sample.tenant}-other", "agent-1", "agent")
    assert sample.page(headers=stranger)["items"] == []


@pytest.mark.parametrize("sort", ["-created", "created", "priority", "-updated"])
def test_cursor_pages_have_no_duplicates_or_gaps_while_tickets_arrive(
    desk: Desk, sort: str
) -> None:
    for n in range(25):
        desk.open(title=f"Existing {n}", priority=["low", "normal", "high"][n % 3])
    expected = {t["id"] for t in desk.page(limit=200)["items"]}
    assert len(expected) == 25

    seen: list[str] = []
    cursor = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        while True:
            # Tickets keep arriving between pages.
            pool.submit(desk.open, title="Arriving", priority="urgent").result()
            params = {"sort": sort, "limit": 4}
            if cursor:
                params["cursor"] = cursor
            page = desk.page(**params)
            seen += [t["id"] for t in page["items"] if t["title"] != "Arriving"]
            cursor = page["next"]
            if cursor is None:
                break
    if sort in ("-created", "-updated"):
        # Newer tickets land before the first page, never inside the walk.
        assert len(seen) == len(set(seen)) == 25
        assert set(seen) == expected
    else:
        assert len(seen) == len(set(seen))
        assert set(seen) == expected


def test_bad_cursor_and_limits_are_refused(desk: Desk) -> None:
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJjcmVhdGVkIiwiMjAyNiIsIngiXQ"},
        {"limit": 0},
        {"limit": 201},
        {"sort": "sideways"},
        {"status": "lost"},
        {"sla_state": "late"},
        {"sla_breached": "perhaps"},
        {"created_from": "yesterday"},
    ):
        response = desk.client.get(f"{API}/", params=params, headers=desk.agent)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


def test_read_your_writes(desk: Desk) -> None:
    created = desk.open(title="Fresh")
    response = desk.client.get(
        f"{API}/",
        params={"min_position": created["position"]},
        headers=desk.agent,
    )
    assert [t["id"] for t in response.json()["items"]] == [created["id"]]
    assert int(response.headers["x-projection-position"]) >= created["position"]


def test_dashboard_over_http(sample: Desk) -> None:
    response = sample.client.get(
        f"{API}/analytics/dashboard",
        params={"min_position": sample.position},
        headers=sample.agent,
    )
    assert response.status_code == 200, response.text
    figures = response.json()
    assert figures["created"] == 5
    assert figures["by_status"]["resolved"] == 1
    assert figures["open_backlog"] == 4
    by_team = {row["team"]: row["count"] for row in figures["by_team"]}
    assert by_team == {"Hardware": 1, "Network": 1, None: 3}
    # #2's reply met its first response; #4, resolved unanswered, met its
    # resolution and stopped its first response without one.
    assert figures["sla_response"] == {
        "met": 1,
        "breached": 0,
        "stopped": 1,
        "pct": 100.0,
    }
    assert figures["sla_resolution"]["met"] == 1
    assert figures["first_response_business_minutes"]["count"] == 1
    assert (figures["open_breached"], figures["open_at_risk"]) == (0, 0)
    assert figures["escalation_requests"]["pending"] == 0

    customer = sample.auth_for(sample.tenant, "cust-1", "customer")
    refused = sample.client.get(f"{API}/analytics/dashboard", headers=customer)
    assert refused.status_code == 403
    backwards = sample.client.get(
        f"{API}/analytics/dashboard",
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=sample.agent,
    )
    assert backwards.status_code == 422
    too_long = sample.client.get(
        f"{API}/analytics/dashboard",
        params={"from": "2020-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
        headers=sample.agent,
    )
    assert too_long.status_code == 422


def test_unassigned_mine_and_no_team(sample: Desk) -> None:
    # Only #1 has an assignee (agent-7, team Hardware); #3 has a team only.
    assert sample.numbers(assignee_id="none") == [5, 4, 3, 2]
    assert sample.numbers(unassigned="true") == [5, 4, 3, 2]
    assert sample.numbers(unassigned="false") == [1]
    assert sample.numbers(assignee_id=["agent-7", "none"]) == [5, 4, 3, 2, 1]
    assert sample.numbers(assigned_team="none") == [5, 4, 2]
    assert sample.numbers(assigned_team=["none", "Network"]) == [5, 4, 3, 2]
    assert sample.numbers(assignee_id="none", status="new") == [5, 2]
    seven = sample.auth_for(sample.tenant, "agent-7", "agent")
    mine = sample.page(headers=seven, assignee_id="me")["items"]
    assert [t["number"] for t in mine] == [1]
    assert sample.numbers(assignee_id="me") == []  # agent-1 has none


def test_due_before_finds_what_breaches_soon(sample: Desk) -> None:
    created = {t["number"]: t["created_at"] for t in sample.page()["items"]}
    third = datetime.fromisoformat(created[3])
    # #3 (urgent): first response due within the hour.
    within_hour = (third + timedelta(minutes=61)).isoformat()
    assert sample.numbers(due_before=within_hour, sort="due") == [3]
    # A day: #2's resolution (high, 1440); two: the first responses of the
    # low-priority #1 and #5 (2880).
    within_day = (third + timedelta(minutes=1441)).isoformat()
    assert sample.numbers(due_before=within_day, sort="due") == [3, 2]
    within_two_days = (third + timedelta(minutes=2881)).isoformat()
    assert sample.numbers(due_before=within_two_days, sort="due") == [3, 2, 1, 5]
    assert sample.numbers(due_before=created[1]) == []


def test_unknown_query_parameters_are_refused_by_name(desk: Desk) -> None:
    for params, named in (
        ({"assignee": "agent-7"}, ["assignee"]),
        ({"unassigned": "true", "foo": "1", "bar": "2"}, ["bar", "foo"]),
        ({"sort": "due", "limt": "5"}, ["limt"]),
    ):
        response = desk.client.get(f"{API}/", params=params, headers=desk.agent)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert [e["loc"][-1] for e in problem["errors"]] == named, problem
    dashboard = desk.client.get(
        f"{API}/analytics/dashboard", params={"tem": "x"}, headers=desk.agent
    )
    assert dashboard.status_code == 422
    assert "tem" in dashboard.text
    # Declared ones, including those of shared dependencies, still pass.
    assert desk.page(min_position=0, unassigned="true")["items"] == []


def test_staff_find_an_internal_notes_reference(desk: Desk) -> None:
    ticket = desk.open(title="Checkout fails")
    desk.do(ticket["id"], "comments", {"body": "Known bug APP-991", "internal": True})
    assert desk.numbers(q="APP-991") == [ticket["number"]]
    assert desk.numbers(q="APP-992") == []


def test_a_search_pages_alike_through_its_window_and_the_text_index(
    desk: Desk, ticketing: Ticketing
) -> None:
    # Every third ticket mentions kiwis; the others do not.
    for n in range(14):
        desk.open(title=f"Fruit {n}", description="kiwi" if n % 3 == 0 else "plum")
    desk.page()  # the projection has them all
    where = TicketFilter(tenant_id=desk.tenant, text="kiwi")

    def walk(window: int, sort: str) -> list[str]:
        seen, cursor = [], None
        while True:
            page = list_tickets(
                ticketing.read_model,
                where,
                sort=sort,
                limit=2,
                cursor=cursor,
                search_window=window,
            )
            seen += [str(row["ticket_id"]) for row in page.items]
            if page.next is None:
                return seen
            cursor = page.next

    for sort in ("-created", "created", "-priority"):
        expected = walk(0, sort)  # the text index alone
        assert len(expected) == 5
        # A window holding whole pages, one too small for any, and one
        # holding every ticket: the same pages.
        for window in (9, 2, 1000):
            assert walk(window, sort) == expected, (sort, window)
