"""Tenant settings kept in the process, and a change seen within a second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tenant_config import (
    SETTINGS_FRESHNESS,
    TenantSettingsService,
)
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env

ADMIN = RequestContext(tenant_id="acme", user_id="admin-1", roles=frozenset({"admin"}))


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def apps(isolated_database_url: str) -> Iterator[list[TicketApplication]]:
    apps = [
        TicketApplication(eventsourcing_env(isolated_database_url, pool_size=2))
        for _ in range(2)
    ]
    yield apps
    for app in apps:
        app.close()


def document(team: str) -> dict[str, object]:
    return {"teams": [{"name": team, "agents": [{"id": "agent-1"}]}]}


def test_another_process_sees_a_change_within_the_freshness(
    apps: list[TicketApplication],
) -> None:
    clock = Monotonic()
    here, there = (TenantSettingsService(app, monotonic=clock) for app in apps)
    assert here.get("acme")[0] == there.get("acme")[0] == 0

    version, _ = here.replace(ADMIN, document("billing"))
    # Its own process sees the change at once, the other one its copy...
    assert here.get("acme")[0] == version
    assert there.get("acme")[0] == 0
    # ...until the copy is older than the freshness: then the stored version
    # says it changed.
    clock.now += SETTINGS_FRESHNESS
    seen, doc = there.get("acme")
    assert seen == version
    assert [t["name"] for t in doc["teams"]] == ["billing"]
    assert SETTINGS_FRESHNESS <= 1.0


def test_an_unchanged_document_is_the_same_object_after_the_version_check(
    apps: list[TicketApplication],
) -> None:
    clock = Monotonic()
    service = TenantSettingsService(apps[0], monotonic=clock)
    service.replace(ADMIN, document("support"))
    first = service.get("acme")
    clock.now += 10 * SETTINGS_FRESHNESS
    again = service.get("acme")
    # Checked against the store, not read again.
    assert again[0] == first[0]
    assert again[1] is first[1]
