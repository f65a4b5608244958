"""Saved views over HTTP: CRUD, counts, paging, visibility, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.projections.ticket_queries import SORTS
from dotmac.ticketing.schemas.ticket_filters import SORT_ORDERS
from tests.api.conftest import AuthFor, put_settings

API = "/api/v1"

pytestmark = pytest.mark.usefixtures("projections")

TEAMS = {
    "teams": [
        {"name": "network", "agents": [{"id": "ana"}, {"id": "ben"}]},
        {"name": "billing", "agents": [{"id": "cleo"}]},
    ]
}


class Desk:
    def __init__(self, client: TestClient, auth_for: AuthFor, tenant: str) -> None:
        self.client = client
        self.auth_for = auth_for
        self.tenant = tenant
        self.position = 0
        self.ana = auth_for(tenant, "ana", "agent")
        self.ben = auth_for(tenant, "ben", "agent")
        self.cleo = auth_for(tenant, "cleo", "agent")
        self.boss = auth_for(tenant, "boss", "supervisor")
        self.admin = auth_for(tenant, "root", "admin")
        put_settings(client, auth_for, tenant, TEAMS)

    def open(self, **fields: Any) -> str:
        body = {"title": "A ticket", "customer_id": "cust-1", **fields}
        response = self.client.post(f"{API}/tickets/", json=body, headers=self.ana)
        assert response.status_code == 201, response.text
        self.position = max(self.position, response.json()["position"])
        return str(response.json()["id"])

    def assign(self, ticket_id: str, assignee: str, team: str) -> None:
        response = self.client.post(
            f"{API}/tickets/{ticket_id}/assign",
            json={"assignee_id": assignee, "team": team},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        self.position = max(self.position, response.json()["position"])

    def save(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        response = self.client.post(f"{API}/views", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def views(self, headers: dict[str, str]) -> dict[str, int]:
        response = self.client.get(
            f"{API}/views", params={"min_position": self.position}, headers=headers
        )
        assert response.status_code == 200, response.text
        return {v["name"]: v["count"] for v in response.json()}

    def stored(self) -> int:
        return len(self.views(self.admin))


@pytest.fixture
def desk(client: TestClient, auth_for: AuthFor, tenant: str) -> Desk:
    return Desk(client, auth_for, tenant)


def test_the_views_sort_orders_are_the_lists() -> None:
    assert set(SORT_ORDERS) == set(SORTS)


def test_views_count_and_page_what_the_list_shows(desk: Desk) -> None:
    urgent = [desk.open(priority="urgent") for _ in range(3)]
    low = desk.open(priority="low", tags=["vip"])
    desk.assign(urgent[0], "ana", "network")
    desk.assign(low, "ben", "network")
    mine = desk.save(desk.ana, name="Mine", filters={"assignee_id": ["me"]})
    desk.save(
        desk.ana,
        name="Urgent, oldest first",
        filters={"priority": ["urgent"]},
        sort="created",
    )
    desk.save(desk.ana, name="VIP", filters={"tags": ["vip"]})
    desk.save(desk.ana, name="Everything")
    desk.save(desk.ana, name="Unassigned urgent", filters={"unassigned": True})
    assert desk.views(desk.ana) == {
        "Everything": 4,
        "Mine": 1,
        "Unassigned urgent": 2,
        "Urgent, oldest first": 3,
        "VIP": 1,
    }
    assert mine["filters"] == {
        **mine["filters"],
        "assignee_id": ["me"],
        "status": [],
    }
    assert mine["owner_id"] == "ana" and mine["shared"] == "personal"

    # A view's tickets are GET /tickets/ with its filters and sort, paged
    # by the list's cursors.
    (urgent_view,) = [
        v
        for v in desk.client.get(f"{API}/views", headers=desk.ana).json()
        if v["name"].startswith("Urgent")
    ]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "min_position": desk.position}
        if cursor:
            params["cursor"] = cursor
        response = desk.client.get(
            f"{API}/views/{urgent_view['id']}/tickets", params=params, headers=desk.ana
        )
        assert response.status_code == 200, response.text
        seen += [t["id"] for t in response.json()["items"]]
        cursor = response.json()["next"]
        if cursor is None:
            break
    assert seen == urgent
    listed = desk.client.get(
        f"{API}/tickets/",
        params={"priority": "urgent", "sort": "created"},
        headers=desk.ana,
    ).json()
    assert [t["id"] for t in listed["items"]] == seen


def test_me_in_a_shared_view_is_whoever_opens_it(desk: Desk) -> None:
    ticket = desk.open()
    desk.assign(ticket, "ben", "network")
    desk.save(
        desk.ana,
        name="Mine (team)",
        filters={"assignee_id": ["me"]},
        shared="team",
        team="network",
    )
    assert desk.views(desk.ana) == {"Mine (team)": 0}
    assert desk.views(desk.ben) == {"Mine (team)": 1}


def test_replace_and_delete_are_the_owners_or_an_admins(desk: Desk) -> None:
    desk.open(priority="high")
    view = desk.save(desk.boss, name="All", shared="tenant")
    url = f"{API}/views/{view['id']}"
    body = {"name": "High", "filters": {"priority": ["high"]}, "shared": "tenant"}
    refused = desk.client.put(url, json=body, headers=desk.ana)
    assert refused.status_code == 403, refused.text
    replaced = desk.client.put(url, json=body, headers=desk.boss)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "High"
    assert desk.views(desk.ana) == {"High": 1}
    assert desk.client.delete(url, headers=desk.ana).status_code == 403
    assert desk.client.delete(url, headers=desk.admin).status_code == 204
    assert desk.client.get(url, headers=desk.boss).status_code == 404


def test_a_personal_view_is_its_owners_only(desk: Desk) -> None:
    view = desk.save(desk.ana, name="Private")
    assert desk.views(desk.ben) == {}
    assert desk.views(desk.admin) == {}
    url = f"{API}/views/{view['id']}"
    for other in (desk.ben, desk.admin):
        assert desk.client.get(url, headers=other).status_code == 404
        assert desk.client.get(f"{url}/tickets", headers=other).status_code == 404
        assert desk.client.delete(url, headers=other).status_code == 404
    assert desk.client.get(url, headers=desk.ana).status_code == 200


def test_a_team_view_is_its_members_and_the_admins(desk: Desk) -> None:
    view = desk.save(desk.ben, name="Network", shared="team", team="network")
    assert desk.views(desk.ana) == {"Network": 0}
    assert desk.views(desk.admin) == {"Network": 0}
    assert desk.views(desk.cleo) == {}
    assert desk.views(desk.boss) == {}
    url = f"{API}/views/{view['id']}"
    assert desk.client.get(url, headers=desk.cleo).status_code == 404
    # Leaving the team (the settings change) hides it at once.
    put_settings(
        desk.client,
        desk.auth_for,
        desk.tenant,
        {"teams": [{"name": "network", "agents": [{"id": "ben"}]}]},
    )
    assert desk.views(desk.ana) == {}
    # Only a member or an admin shares with a team; a supervisor with all.
    refused = desk.client.post(
        f"{API}/views",
        json={"name": "Not mine", "shared": "team", "team": "network"},
        headers=desk.cleo,
    )
    assert refused.status_code == 403, refused.text
    refused = desk.client.post(
        f"{API}/views", json={"name": "All", "shared": "tenant"}, headers=desk.ana
    )
    assert refused.status_code == 403, refused.text
    assert set(desk.views(desk.admin)) == {"Network"}


def test_another_tenants_view_is_not_found(
    desk: Desk, client: TestClient, auth_for: AuthFor
) -> None:
    view = desk.save(desk.admin, name="Everyone", shared="tenant")
    stranger = auth_for("another-tenant", "root", "admin")
    url = f"{API}/views/{view['id']}"
    assert client.get(url, headers=stranger).status_code == 404
    assert client.get(f"{url}/tickets", headers=stranger).status_code == 404
    assert client.put(url, json={"name": "x"}, headers=stranger).status_code == 404
    assert client.delete(url, headers=stranger).status_code == 404
    assert client.get(f"{API}/views", headers=stranger).json() == []


def test_customers_have_no_views(desk: Desk, auth_for: AuthFor) -> None:
    view = desk.save(desk.admin, name="Everyone", shared="tenant")
    customer = auth_for(desk.tenant, "cust-1", "customer")
    url = f"{API}/views/{view['id']}"
    for response in (
        desk.client.get(f"{API}/views", headers=customer),
        desk.client.post(f"{API}/views", json={"name": "x"}, headers=customer),
        desk.client.get(url, headers=customer),
        desk.client.get(f"{url}/tickets", headers=customer),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "filters": {"assignee": ["ana"]}}, "assignee"),
        ({"name": "x", "filters": {"status": ["sleeping"]}}, "status"),
        ({"name": "x", "filters": {"created_from": "yesterday"}}, "created_from"),
        ({"name": "x", "sort": "-title"}, "sort"),
        ({"name": "x", "shared": "everyone"}, "shared"),
        ({"name": "   "}, "name"),
        ({"name": "x", "shared": "team", "team": "no-such-team"}, "team"),
        ({"name": "x", "shared": "team"}, "team"),
        ({"name": "x", "team": "network"}, "team"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    desk: Desk, body: dict[str, Any], field: str
) -> None:
    response = desk.client.post(f"{API}/views", json=body, headers=desk.admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.text
    assert desk.stored() == 0
    view = desk.save(desk.admin, name="Kept")
    replaced = desk.client.put(
        f"{API}/views/{view['id']}", json=body, headers=desk.admin
    )
    assert replaced.status_code == 422, replaced.text
    assert desk.views(desk.admin) == {"Kept": 0}


def test_the_list_refuses_what_a_view_refuses(desk: Desk) -> None:
    for params in ({"assignee": "ana"}, {"status": "sleeping"}, {"sort": "-title"}):
        response = desk.client.get(f"{API}/tickets/", params=params, headers=desk.ana)
        assert response.status_code == 422, response.text
        assert next(iter(params)) in response.text
