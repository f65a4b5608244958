"""The settings' past over HTTP: every version, who stored it, what it changed.

``GET /settings/history`` and ``GET /settings?version=N``: admin only, the
caller's tenant only, secrets never shown.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document
from dotmac.ticketing.schemas.tenant_config_secrets import REDACTED
from tests.api.conftest import AuthFor, ManualClock

SETTINGS = "/api/v1/settings"
HISTORY = f"{SETTINGS}/history"
PROBLEM = "application/problem+json"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

OPS_TEAM = {"name": "Ops", "agents": [{"id": "agent-1", "capacity": 5}]}


def admin(auth_for: AuthFor, tenant: str, sub: str = "admin-1") -> dict[str, str]:
    return auth_for(tenant, sub, "admin")


def put(
    client: TestClient, headers: dict[str, str], document: dict[str, Any]
) -> dict[str, Any]:
    response = client.put(SETTINGS, json=document, headers=headers)
    assert response.status_code == 200, response.text
    stored: dict[str, Any] = response.json()
    return stored


def history(
    client: TestClient, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = client.get(HISTORY, params=params, headers=headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def with_capacities(*capacities: int) -> dict[str, Any]:
    """A document whose only team has one agent per capacity (several puts)."""
    agents = [{"id": f"agent-{i}", "capacity": c} for i, c in enumerate(capacities)]
    return {"teams": [{"name": "Ops", "agents": agents}]}


def test_each_version_says_who_stored_it_when_and_what_changed(
    client: TestClient, auth_for: AuthFor, tenant: str, clock: ManualClock
) -> None:
    first, second = admin(auth_for, tenant), admin(auth_for, tenant, "admin-2")
    clock.set(T0)
    v1 = put(client, {**first, "X-Request-ID": "req-1"}, {"teams": [OPS_TEAM]})
    clock.advance(hours=1)
    moved = {
        "teams": [{"name": "Ops", "agents": [{"id": "agent-1", "capacity": 8}]}],
        "business_hours": {
            "timezone": "Europe/Berlin",
            "week": {"mon": ["08:00", "18:00"]},
        },
    }
    v2 = put(client, second, moved)
    clock.advance(hours=1)
    put(
        client,
        first,
        {"business_hours": "24x7", "merges": {"cross_customer": "refuse"}},
    )

    page = history(client, first)

    assert [entry["version"] for entry in page["items"]] == [3, 2, 1]
    assert page["next_before_version"] is None
    newest, middle, oldest = page["items"]
    assert [e["changed_at"] for e in page["items"]] == [
        (T0 + timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in (2, 1, 0)
    ]
    assert newest["changed_by"] == {"id": "admin-1", "role": "admin", "kind": "user"}
    assert middle["changed_by"] == {"id": "admin-2", "role": "admin", "kind": "user"}
    assert oldest["changed_by"] == {"id": "admin-1", "role": "admin", "kind": "user"}
    assert oldest["correlation_id"] == "req-1"

    # Version 1 against the defaults a tenant without settings has.
    assert oldest["changes"] == [
        {
            "op": "add",
            "path": "/teams/0",
            "value": v1["document"]["teams"][0],
        }
    ]
    hours = v2["document"]["business_hours"]
    assert hours == {**moved["business_hours"], "holidays": []}
    assert middle["changes"] == [
        {
            "op": "replace",
            "path": "/business_hours",
            "value": hours,
            "previous": "24x7",
        },
        {
            "op": "replace",
            "path": "/teams/0/agents/0/capacity",
            "value": 8,
            "previous": 5,
        },
    ]
    assert newest["changes"] == [
        {
            "op": "replace",
            "path": "/business_hours",
            "value": "24x7",
            "previous": hours,
        },
        {
            "op": "remove",
            "path": "/teams/0",
            "previous": v2["document"]["teams"][0],
        },
        {
            "op": "replace",
            "path": "/merges/cross_customer",
            "value": "refuse",
            "previous": "confirm",
        },
    ]


def test_the_history_is_paged_newest_first(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    headers = admin(auth_for, tenant)
    stored = [
        put(client, headers, with_capacities(*range(1, count + 1)))["document"]
        for count in range(1, 6)
    ]

    pages = [history(client, headers, limit=2)]
    while pages[-1]["next_before_version"] is not None:
        before = pages[-1]["next_before_version"]
        pages.append(history(client, headers, limit=2, before_version=before))

    assert [[e["version"] for e in p["items"]] for p in pages] == [[5, 4], [3, 2], [1]]
    assert [p["next_before_version"] for p in pages] == [4, 2, None]
    # Each entry is diffed against its previous version, across page ends too.
    entries = [entry for page in pages for entry in page["items"]]
    for entry in entries[:-1]:
        index = entry["version"] - 1
        assert entry["changes"] == [
            {
                "op": "add",
                "path": f"/teams/0/agents/{index}",
                "value": stored[index]["teams"][0]["agents"][index],
            }
        ]
    assert entries[-1]["changes"][0]["path"] == "/teams/0"
    everything = history(client, headers)
    assert [e["version"] for e in everything["items"]] == [5, 4, 3, 2, 1]
    assert everything["items"] == entries
    assert history(client, headers, before_version=1) == {
        "items": [],
        "next_before_version": None,
    }
    beyond = history(client, headers, before_version=99)
    assert beyond == everything


def test_a_tenant_without_settings_has_an_empty_history(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    page = history(client, admin(auth_for, tenant))
    assert page == {"items": [], "next_before_version": None}


ACCOUNT_LOOKUP = {"url": "https://crm.example.com/hooks/account"}


def with_token(token: str, password: str = "pw") -> dict[str, Any]:
    return {
        "integrations": {
            "account_lookup": {
                **ACCOUNT_LOOKUP,
                "auth": {"type": "bearer", "token": token},
            },
            "billing_history": {
                "url": "https://billing.example.com/history",
                "auth": {
                    "type": "basic",
                    "username": "ticketing",
                    "password": password,
                },
            },
        }
    }


def test_secrets_never_show_in_the_history_nor_in_past_versions(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    headers = admin(auth_for, tenant)
    put(client, headers, with_token("s3cret-first"))
    rotated = with_token("s3cret-second")
    rotated["integrations"]["account_lookup"]["timeout_seconds"] = 10
    put(client, headers, rotated)

    response = client.get(HISTORY, headers=headers)
    assert response.status_code == 200
    for secret in ("s3cret-first", "s3cret-second", '"pw"'):
        assert secret not in response.text
    newest, oldest = response.json()["items"]
    # A rotated secret shows where it changed, not what it was.
    assert newest["changes"] == [
        {
            "op": "replace",
            "path": "/integrations/account_lookup/timeout_seconds",
            "value": 10,
            "previous": 5,
        },
        {
            "op": "replace",
            "path": "/integrations/account_lookup/auth/token",
            "value": REDACTED,
            "previous": REDACTED,
        },
    ]
    added = {change["path"]: change["value"] for change in oldest["changes"]}
    assert added["/integrations/account_lookup"]["auth"] == {
        "type": "bearer",
        "token": REDACTED,
    }
    assert added["/integrations/billing_history"]["auth"]["password"] == REDACTED

    for version in (1, 2):
        past = client.get(SETTINGS, params={"version": version}, headers=headers)
        assert past.status_code == 200, past.text
        assert "s3cret" not in past.text
        auth = past.json()["document"]["integrations"]["account_lookup"]["auth"]
        assert auth == {"type": "bearer", "token": REDACTED}
        # Sent back as it reads, it is refused: the mask is never stored.
        again = client.put(SETTINGS, json=past.json()["document"], headers=headers)
        assert again.status_code == 422, again.text

    # The current document keeps its secrets: PUT needs them back whole.
    current = client.get(SETTINGS, headers=headers).json()
    auth = current["document"]["integrations"]["account_lookup"]["auth"]
    assert auth["token"] == "s3cret-second"


def test_a_past_version_is_the_document_as_it_was(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    headers = admin(auth_for, tenant)
    first = put(client, headers, {"teams": [OPS_TEAM]})
    put(client, headers, {"teams": []})

    past = client.get(SETTINGS, params={"version": 1}, headers=headers)
    assert past.status_code == 200, past.text
    assert past.headers["ETag"] == '"1"'
    assert past.json() == {"version": 1, "document": first["document"]}
    latest = client.get(SETTINGS, params={"version": 2}, headers=headers)
    assert latest.headers["ETag"] == '"2"'
    assert latest.json() == client.get(SETTINGS, headers=headers).json()
    assert latest.json()["document"]["teams"] == []


@pytest.mark.parametrize("version", [3, 9_999_999_999])
def test_a_version_the_settings_never_had_is_not_found(
    client: TestClient, auth_for: AuthFor, tenant: str, version: int
) -> None:
    headers = admin(auth_for, tenant)
    put(client, headers, {"teams": [OPS_TEAM]})
    put(client, headers, {"teams": []})
    response = client.get(SETTINGS, params={"version": version}, headers=headers)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/no-such-version")
    assert problem["detail"] == (
        f"the settings have no version {version}: their versions are 1 to 2"
    )


@pytest.mark.parametrize(
    ("route", "params"),
    [
        (SETTINGS, {"version": "0"}),
        (SETTINGS, {"version": "abc"}),
        (SETTINGS, {"version": "-1"}),
        (SETTINGS, {"version": str(2**63)}),
        (HISTORY, {"limit": "0"}),
        (HISTORY, {"limit": "201"}),
        (HISTORY, {"limit": "many"}),
        (HISTORY, {"before_version": "0"}),
        (HISTORY, {"before_version": "abc"}),
    ],
)
def test_a_bad_version_or_page_is_refused(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    route: str,
    params: dict[str, str],
) -> None:
    response = client.get(route, params=params, headers=admin(auth_for, tenant))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    (name,) = params
    assert [error["loc"] for error in response.json()["errors"]] == [["query", name]]


def test_another_tenant_sees_only_its_own_history(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    other = tenant + "-other"
    put(client, admin(auth_for, tenant), {"teams": [OPS_TEAM]})
    put(client, admin(auth_for, tenant), {"teams": []})
    put(
        client,
        admin(auth_for, other, "admin-9"),
        {"merges": {"cross_customer": "refuse"}},
    )

    theirs = history(client, admin(auth_for, other))
    assert [e["version"] for e in theirs["items"]] == [1]
    (entry,) = theirs["items"]
    assert entry["changed_by"]["id"] == "admin-9"
    assert [c["path"] for c in entry["changes"]] == ["/merges/cross_customer"]
    ours = history(client, admin(auth_for, tenant))
    assert [e["version"] for e in ours["items"]] == [2, 1]
    # Version 2 exists in the first tenant only.
    response = client.get(
        SETTINGS, params={"version": 2}, headers=admin(auth_for, other)
    )
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["agent", "supervisor", "customer"])
def test_only_admins_read_the_history_and_past_versions(
    client: TestClient, auth_for: AuthFor, tenant: str, role: str
) -> None:
    put(client, admin(auth_for, tenant), {"teams": [OPS_TEAM]})
    headers = auth_for(tenant, f"{role}-1", role)
    for response in (
        client.get(HISTORY, headers=headers),
        client.get(SETTINGS, params={"version": 1}, headers=headers),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM
        assert "agent-1" not in response.text
    assert client.get(HISTORY).status_code == 401


def test_version_1_is_compared_with_the_defaults_as_get_showed_them(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    headers = admin(auth_for, tenant)
    defaults = client.get(SETTINGS, headers=headers).json()["document"]
    assert defaults == default_settings_document()
    changed = copy.deepcopy(defaults)
    changed["sla_config"]["critical"]["response"] = 5
    put(client, headers, changed)
    (entry,) = history(client, headers)["items"]
    assert entry["changes"] == [
        {
            "op": "replace",
            "path": "/sla_config/critical/response",
            "value": 5,
            "previous": 15,
        }
    ]


def test_a_change_to_null_shows_its_null_value(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    """Only an add's previous and a remove's value are absent; null is a value."""
    headers = admin(auth_for, tenant)
    options = {"billing": {"approval_above": 100, "tiers": ["gold"]}}
    put(client, headers, {"workflows": {"options": options}})
    options["billing"]["tiers"] = [None]
    put(client, headers, {"workflows": {"options": options}})
    newest = history(client, headers, limit=1)["items"][0]
    assert newest["changes"] == [
        {
            "op": "replace",
            "path": "/workflows/options/billing/tiers/0",
            "value": None,
            "previous": "gold",
        }
    ]
