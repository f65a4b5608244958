"""The notifier's directory follows the tenant settings, cached briefly."""

from __future__ import annotations

import asyncio
from typing import Any

from dotmac.ticketing.consumers.notify.directory import SettingsTenantDirectory
from dotmac.ticketing.consumers.notify.rules import ConfigTenantDirectory


class Settings:
    """A tenant settings store in memory: version and document per tenant."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.reads = 0

    def get(self, tenant_id: str) -> tuple[int, dict[str, Any]]:
        self.reads += 1
        return 1, self.documents.get(tenant_id, {"teams": []})


def team(name: str, *agents: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "agents": list(agents)}


def test_teams_come_from_the_settings_and_are_reread_after_the_ttl() -> None:
    store = Settings()
    store.documents["acme"] = {
        "teams": [team("Engineering", {"id": "eng-1", "email": "e1@acme.test"})]
    }
    now = [0.0]
    directory = SettingsTenantDirectory(store.get, ttl=5.0, clock=lambda: now[0])

    asyncio.run(directory.refresh("acme"))
    assert [a.id for a in directory.team_members("acme", "engineering")] == ["eng-1"]
    assert directory.agent("acme", "eng-1").email == "e1@acme.test"  # type: ignore[union-attr]

    store.documents["acme"] = {"teams": [team("Engineering", {"id": "eng-2"})]}
    asyncio.run(directory.refresh("acme"))
    assert store.reads == 1  # within the ttl: the cached teams
    now[0] = 6.0
    asyncio.run(directory.refresh("acme"))
    assert [a.id for a in directory.team_members("acme", "Engineering")] == ["eng-2"]
    assert directory.agent("acme", "eng-1") is None


def test_tenants_without_teams_in_their_settings_use_the_config_file() -> None:
    store = Settings()
    fallback = ConfigTenantDirectory(
        {
            "tenants": {
                "old": {"teams": [team("Support", {"id": "s-1", "role": "supervisor"})]}
            }
        }
    )
    directory = SettingsTenantDirectory(store.get, fallback=fallback)
    asyncio.run(directory.refresh("old"))
    (member,) = directory.team_members("old", "Support")
    assert (member.id, member.role) == ("s-1", "supervisor")
    assert directory.team_members("other", "Support") == []


def test_the_sla_alert_choices_come_from_the_settings() -> None:
    store = Settings()
    store.documents["acme"] = {
        "teams": [],
        "sla_alerts": {
            "supervisors_on_breach": False,
            "admins": [{"id": "admin-1", "email": "admin@acme.test"}],
        },
    }
    directory = SettingsTenantDirectory(store.get)
    asyncio.run(directory.refresh("acme"))
    alerts = directory.sla_alerts("acme")
    assert alerts.supervisors_on_breach is False
    assert [(a.id, a.email) for a in alerts.admins] == [("admin-1", "admin@acme.test")]
    # A tenant that chose nothing: supervisors hear of breaches, no admins.
    asyncio.run(directory.refresh("other"))
    default = directory.sla_alerts("other")
    assert (default.supervisors_on_breach, default.admins) == (True, ())
