"""The notifier's directory of agents, read from each tenant's settings.

Teams and agents (with their e-mail, phone and role) are part of the
event-sourced tenant settings, so an admin's ``PUT /api/v1/settings`` is
who the notifier tells from then on. The settings are re-read at most every
``ttl`` seconds per tenant (an event stream load on the synchronous
application, off the event loop); the configuration file's directory
answers for tenants whose settings list no teams. How the tenant's mail
reads (``notifications``, the zone of ``business_hours``) always comes from
the settings, whose defaults are the deployment's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from dotmac.ticketing.consumers.notify.rules import (
    Agent,
    ConfigTenantDirectory,
    MailPreferences,
    SlaAlerts,
    TenantDirectory,
)
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.tenant_config import parse as parse_config

#: ``(version, document)`` of a tenant's settings.
SettingsSource = Callable[[str], tuple[int, dict[str, Any]]]


class SettingsTenantDirectory:
    def __init__(
        self,
        source: SettingsSource,
        *,
        fallback: TenantDirectory | None = None,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._fallback = fallback or ConfigTenantDirectory(None)
        self._ttl = ttl
        self._clock = clock
        self._tenants: dict[str, tuple[float, ConfigTenantDirectory | None]] = {}
        self._preferences: dict[str, MailPreferences] = {}

    async def refresh(self, tenant_id: str) -> None:
        """Re-read the tenant's teams when the cached ones are older than ttl."""
        cached = self._tenants.get(tenant_id)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return
        config = await asyncio.to_thread(self._read, tenant_id)
        directory = (
            ConfigTenantDirectory.of_tenant(tenant_id, config)
            if config.teams or config.sla_alerts.given
            else None
        )
        self._tenants[tenant_id] = (self._clock(), directory)
        self._preferences[tenant_id] = MailPreferences.from_config(config)

    def _read(self, tenant_id: str) -> TenantConfig:
        _, document = self._source(tenant_id)
        return parse_config(document)

    def agent(self, tenant_id: str, agent_id: str) -> Agent | None:
        own = self._own(tenant_id)
        known = own.agent(tenant_id, agent_id) if own else None
        return known or self._fallback.agent(tenant_id, agent_id)

    def team_members(self, tenant_id: str, team: str) -> list[Agent]:
        own = self._own(tenant_id)
        members = own.team_members(tenant_id, team) if own else []
        return members or self._fallback.team_members(tenant_id, team)

    def sla_alerts(self, tenant_id: str) -> SlaAlerts:
        own = self._own(tenant_id)
        return (
            own.sla_alerts(tenant_id) if own else self._fallback.sla_alerts(tenant_id)
        )

    def preferences(self, tenant_id: str) -> MailPreferences:
        known = self._preferences.get(tenant_id)
        return known if known is not None else self._fallback.preferences(tenant_id)

    def _own(self, tenant_id: str) -> ConfigTenantDirectory | None:
        cached = self._tenants.get(tenant_id)
        return None if cached is None else cached[1]
