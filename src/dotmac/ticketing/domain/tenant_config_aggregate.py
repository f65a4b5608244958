"""A tenant's configuration: one event stream per tenant, the whole document.

(The tenant's configuration; "settings" are the deployment's. The class and
event names, ``TenantSettings*``, and their topics stay as stored. The typed
form the domain reads is ``domain.tenant_config``.)

SLA targets, the business calendar, teams and agents, assignment rules,
escalation rules, the workflow of each category, categorisation rules,
integration hooks, what a customer's answer does, who hears of SLA alerts,
how the tenant's e-mail reads (``notifications``) and how long closed
tickets keep their personal data (``retention``) live in one JSON-like
document. Every change is an event
carrying the whole new document (so replay never depends on rules that may
change) and the names of the sections that changed. The stream's id is
derived from the tenant id, so a tenant has exactly one. The version of
the aggregate is the version of the settings: 0 means "nothing stored, the
defaults apply".

The document's shape is validated at the edge (``schemas.tenant_config``); here
only its outline is checked, so the domain stays free of pydantic.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from dotmac.ticketing.domain.calendar import ALWAYS_OPEN
from dotmac.ticketing.domain.defaults import (
    DEFAULT_COALESCE_SECONDS,
    DEFAULT_LOCALE,
    DEFAULT_SLA_MINUTES,
    DEFAULT_WARNING_PERCENT,
    DEFAULT_WORKFLOW,
    DEFAULT_WORKFLOW_BY_CATEGORY,
)
from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.provenance import Provenance

_TOPIC = "ticketing.tenant_settings"

#: The namespace of settings stream ids: ``uuid5(namespace, tenant_id)``.
TENANT_SETTINGS_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dotmac-ticketing:tenant-settings")

#: The top-level sections of a settings document, in display order.
SECTIONS: tuple[str, ...] = (
    "sla_config",
    "business_hours",
    "teams",
    "assignment_rules",
    "escalation_rules",
    "workflows",
    "categorization_rules",
    "integrations",
    "customer_replies",
    "sla_alerts",
    "merges",
    "notifications",
    "rate_limits",
    # Optional: absent from the defaults (no mailboxes; data kept forever).
    "inbound_email",
    "retention",
)


def tenant_settings_id(tenant_id: str) -> UUID:
    """The id of a tenant's settings stream."""
    return uuid5(TENANT_SETTINGS_NAMESPACE, tenant_id)


def default_settings_document() -> dict[str, Any]:
    """The settings of a tenant that configured nothing (a fresh copy)."""
    return {
        "sla_config": {
            **{
                priority: {"response": response, "resolution": resolution}
                for priority, (response, resolution) in DEFAULT_SLA_MINUTES.items()
            },
            "warning_percent": DEFAULT_WARNING_PERCENT,
            "policies": [],
        },
        "business_hours": ALWAYS_OPEN,
        "teams": [],
        "assignment_rules": [],
        "escalation_rules": [],
        "workflows": {
            "by_category": dict(DEFAULT_WORKFLOW_BY_CATEGORY),
            "default": DEFAULT_WORKFLOW,
            "options": {},
        },
        "categorization_rules": [],
        "integrations": {},
        # A customer's answer ends a wait on them, not one on a third party
        # (domain.customer_replies).
        "customer_replies": {
            "reopen_pending": True,
            "reopen_on_hold": False,
            "reopen_resolved": True,
            "reopen_resolved_within_days": 7,
        },
        "sla_alerts": {"supervisors_on_breach": True, "admins": []},
        # A merge across customers needs the request's confirmation
        # (domain.merging).
        "merges": {"cross_customer": "confirm"},
        "notifications": {
            "locale": DEFAULT_LOCALE,
            "email_coalesce_seconds": DEFAULT_COALESCE_SECONDS,
        },
        # The deployment's defaults (service.settings) until the tenant sets
        # its own.
        "rate_limits": {},
    }


def settings_section(document: Mapping[str, Any], name: str) -> Any:
    """A section of a stored document, or its default when it has none.

    Documents stored before a section existed do not have it; they mean
    the defaults (a fresh copy, like :func:`default_settings_document`).
    """
    if name not in SECTIONS:
        raise KeyError(f"unknown settings section {name!r}")
    if name in document:
        return document[name]
    return default_settings_document()[name]


def changed_sections(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The top-level sections whose values differ, in document order."""
    names = [*SECTIONS, *sorted((set(before) | set(after)) - set(SECTIONS))]
    return [
        name
        for name in names
        if (name in before or name in after) and before.get(name) != after.get(name)
    ]


def _valid_document(document: object) -> dict[str, Any]:
    if not isinstance(document, Mapping):
        raise InvalidCommand("document", "expected a mapping of sections")
    for key in document:
        if key not in SECTIONS:
            raise InvalidCommand(str(key), "unknown settings section")
    # A private deep copy: the caller's dict may change after the command.
    return copy.deepcopy(dict(document))


class TenantSettings(Aggregate):
    """The configuration of one tenant, versioned by its events."""

    TOPIC = f"{_TOPIC}:TenantSettings"

    tenant_id: str
    document: dict[str, Any]

    def __init__(self) -> None:
        # State is set by TenantSettingsCreated.apply (see Ticket.__init__).
        pass

    class Event(Aggregate.Event):
        """Every settings event says which tenant and who caused it."""

        tenant_id: str
        actor: dict[str, str]
        correlation_id: str | None
        causation_id: str | None

    class TenantSettingsCreated(Event, Aggregate.Created):
        TOPIC = f"{_TOPIC}:TenantSettingsCreated.v1"
        document: dict[str, Any]
        changed_sections: list[str]

        def apply(self, aggregate: TenantSettings) -> None:
            aggregate.tenant_id = self.tenant_id
            aggregate.document = copy.deepcopy(self.document)

    Created = TenantSettingsCreated

    class TenantSettingsChanged(Event):
        TOPIC = f"{_TOPIC}:TenantSettingsChanged.v1"
        document: dict[str, Any]
        changed_sections: list[str]

        def apply(self, aggregate: TenantSettings) -> None:
            aggregate.document = copy.deepcopy(self.document)

    @classmethod
    def create(
        cls,
        *,
        tenant_id: str,
        document: Mapping[str, Any],
        provenance: Provenance,
        at: datetime,
    ) -> TenantSettings:
        """The tenant's first stored settings (replacing the defaults)."""
        if provenance.tenant_id != tenant_id:
            raise InvalidCommand("tenant_id", "provenance is of another tenant")
        new = _valid_document(document)
        return cls._create(
            cls.TenantSettingsCreated,
            id=tenant_settings_id(tenant_id),
            timestamp=at,
            document=new,
            changed_sections=changed_sections(default_settings_document(), new),
            **provenance.event_fields(),
        )

    def replace(
        self, document: Mapping[str, Any], *, provenance: Provenance, at: datetime
    ) -> bool:
        """Replace the whole document; False (and no event) when it is equal."""
        if provenance.tenant_id != self.tenant_id:
            raise InvalidCommand("tenant_id", "provenance is of another tenant")
        new = _valid_document(document)
        if new == self.document:
            return False
        self.trigger_event(
            self.TenantSettingsChanged,
            timestamp=at,
            document=new,
            changed_sections=changed_sections(self.document, new),
            **provenance.event_fields(),
        )
        return True
