"""A tenant's configuration, parsed once into the typed objects the domain reads.

The tenant's configuration is stored as one JSON-like document
(``domain.tenant_config_aggregate``: the events carry it whole). Its shape is
validated by ``schemas.tenant_config`` on every write; here it is only
read, so :func:`parse` is tolerant in the same way the readers it replaces
were: a missing section or field means its default, nothing is refused.
The service parses a tenant's document once per version
(``service.tickets.TicketService.tenant_config``).

Rule conditions stay the mappings the rule language reads
(``domain.rules.matches``); a workflow type's options stay a mapping too
(each workflow type reads its own keys).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from dotmac.ticketing.domain.calendar import ALWAYS_OPEN, BusinessCalendar
from dotmac.ticketing.domain.defaults import (
    DEFAULT_COALESCE_SECONDS,
    DEFAULT_LOCALE,
    DEFAULT_SLA_MINUTES,
    DEFAULT_WARNING_PERCENT,
    DEFAULT_WORKFLOW,
)
from dotmac.ticketing.domain.retention import RetentionPolicy
from dotmac.ticketing.domain.tenant_config_aggregate import settings_section

__all__ = [
    "DEFAULT_CAPACITY",
    "AgentConfig",
    "AssignmentRule",
    "BusinessHours",
    "CategorizationRule",
    "CustomerReplies",
    "EscalationRule",
    "Merges",
    "Notifications",
    "RetentionPolicy",
    "SLAAlerts",
    "SLAConfig",
    "SLAPolicyRule",
    "SLATarget",
    "TeamConfig",
    "TenantConfig",
    "WorkflowsConfig",
    "parse",
    "parse_retention",
    "parse_workflows",
]

#: Open tickets an agent may hold when its ``capacity`` is not configured.
DEFAULT_CAPACITY = 20

#: A rule's confidence when it does not give one (as the schema's default).
DEFAULT_CONFIDENCE = 0.8

Conditions = Mapping[str, Any]


@dataclass(frozen=True)
class BusinessHours:
    """A business calendar as configured: ``"24x7"`` or the mapping form.

    ``config`` is kept as written, for the SLA policy snapshot stored on
    tickets; :meth:`calendar` is its parsed form (one per process per shape).
    """

    config: Mapping[str, Any] | str = ALWAYS_OPEN

    def calendar(self) -> BusinessCalendar:
        return calendar_of(self.config)


@dataclass(frozen=True)
class SLATarget:
    """Minutes of one priority's targets (``next_reply`` as first response
    unless given)."""

    response: float
    resolution: float
    next_reply: float


@dataclass(frozen=True)
class SLAPolicyRule:
    """A policy of ``sla_config.policies``: what it changes of the default.

    ``targets`` holds only the priorities it configures; ``warning_percent``
    and ``pause_on`` are None (or partial) where it keeps the default's.
    """

    name: str
    conditions: Conditions | None = None
    targets: Mapping[str, SLATarget] = field(default_factory=dict)
    warning_percent: float | None = None
    pause_on: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class SLAConfig:
    """``sla_config``: the default policy (every priority) and the narrower ones."""

    targets: Mapping[str, SLATarget]
    warning_percent: float = DEFAULT_WARNING_PERCENT
    pause_on: Mapping[str, tuple[str, ...]] | None = None
    policies: tuple[SLAPolicyRule, ...] = ()


@dataclass(frozen=True)
class AgentConfig:
    """One person of a team (``teams[].agents[]``)."""

    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    role: str = "agent"
    skills: tuple[str, ...] = ()
    capacity: int = DEFAULT_CAPACITY
    #: None: agents take assignments, supervisors do not.
    takes_assignments: bool | None = None
    away: bool = False


@dataclass(frozen=True)
class TeamConfig:
    name: str
    agents: tuple[AgentConfig, ...] = ()
    #: None: the tenant's business hours.
    business_hours: BusinessHours | None = None


@dataclass(frozen=True)
class AssignmentRule:
    name: str
    assigned_team: str
    conditions: Conditions | None = None
    priority: int = 0
    strategy: str = "round_robin"


@dataclass(frozen=True)
class EscalationRule:
    name: str
    escalate_to_team: str
    escalation_time_hours: float
    conditions: Conditions | None = None
    level: int = 1
    measured_from: str = "created"
    business_hours: bool = False
    requires_approval: bool = False


@dataclass(frozen=True)
class CategorizationRule:
    name: str
    category: str
    keywords: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    confidence: float = DEFAULT_CONFIDENCE


@dataclass(frozen=True)
class WorkflowsConfig:
    """Which workflow type runs each category, and each type's options."""

    by_category: Mapping[str, str] = field(default_factory=dict)
    default: str = DEFAULT_WORKFLOW
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def type_for(self, category: str) -> str:
        return str(self.by_category.get(category, self.default))

    def options_for(self, workflow_type: str) -> Mapping[str, Any]:
        return self.options.get(workflow_type) or {}

    def unknown_types(self, installed: Collection[str]) -> list[tuple[str, str]]:
        """``(field, workflow type)`` of each type named that is not
        installed, in document order.

        The fields are ``workflows.by_category.<category>``, ``workflows.default``
        and ``workflows.options.<type>``: a type a ticket would run, or options
        for a type nothing would ever read (most likely a typo).
        """
        named = [
            *(
                (f"workflows.by_category.{category}", kind)
                for category, kind in self.by_category.items()
            ),
            ("workflows.default", self.default),
            *((f"workflows.options.{kind}", kind) for kind in self.options),
        ]
        return [(field, kind) for field, kind in named if kind not in installed]


@dataclass(frozen=True)
class CustomerReplies:
    """Which waiting states a customer's answer ends."""

    reopen_pending: bool = True
    reopen_on_hold: bool = False
    reopen_resolved: bool = True
    reopen_resolved_within_days: int = 7


@dataclass(frozen=True)
class SLAAlerts:
    supervisors_on_breach: bool = True
    admins: tuple[AgentConfig, ...] = ()
    #: Whether the document has a non-empty ``sla_alerts`` section (a tenant
    #: without one nor teams is told by the deployment's directory).
    given: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Merges:
    #: ``confirm`` (the request must confirm) or ``refuse``.
    cross_customer: str = "confirm"


@dataclass(frozen=True)
class Notifications:
    locale: str = DEFAULT_LOCALE
    reply_to: str | None = None
    email_coalesce_seconds: int = DEFAULT_COALESCE_SECONDS


@dataclass(frozen=True)
class TenantConfig:
    """Everything the domain reads of a tenant's configuration document."""

    sla: SLAConfig
    business_hours: BusinessHours
    teams: tuple[TeamConfig, ...]
    assignment_rules: tuple[AssignmentRule, ...]
    escalation_rules: tuple[EscalationRule, ...]
    categorization_rules: tuple[CategorizationRule, ...]
    workflows: WorkflowsConfig
    integrations: Mapping[str, Any]
    customer_replies: CustomerReplies
    sla_alerts: SLAAlerts
    merges: Merges
    notifications: Notifications
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def team(self, name: str) -> TeamConfig | None:
        """The team called ``name`` (exactly), None if there is none."""
        return next((t for t in self.teams if t.name == name), None)

    def escalation_rule(self, name: str) -> EscalationRule | None:
        return next((r for r in self.escalation_rules if r.name == name), None)


# -- parsing ----------------------------------------------------------------------


def parse(document: Mapping[str, Any]) -> TenantConfig:
    """The typed form of a configuration document (defaults where it is silent)."""
    hours = document.get("business_hours", ALWAYS_OPEN)
    return TenantConfig(
        sla=_sla(document.get("sla_config") or {}),
        business_hours=BusinessHours(_frozen(hours)),
        teams=tuple(_team(t) for t in document.get("teams") or ()),
        assignment_rules=tuple(
            _assignment_rule(r) for r in document.get("assignment_rules") or ()
        ),
        escalation_rules=tuple(
            _escalation_rule(r) for r in document.get("escalation_rules") or ()
        ),
        categorization_rules=tuple(
            _categorization_rule(r)
            for r in settings_section(document, "categorization_rules") or ()
        ),
        workflows=parse_workflows(document),
        integrations=_frozen(settings_section(document, "integrations") or {}),
        customer_replies=_customer_replies(
            settings_section(document, "customer_replies")
        ),
        sla_alerts=_sla_alerts(document.get("sla_alerts") or {}),
        merges=Merges(
            cross_customer=str(
                settings_section(document, "merges").get("cross_customer", "confirm")
            )
        ),
        notifications=_notifications(document.get("notifications") or {}),
        # Optional, absent from the defaults: kept forever.
        retention=parse_retention(document),
    )


def _frozen(value: Any) -> Any:
    """A read-only view of a mapping (the parsed config is shared)."""
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


def _conditions(rule: Mapping[str, Any]) -> Conditions | None:
    given = rule.get("conditions")
    return None if given is None else _frozen(given)


def _target(given: Mapping[str, Any]) -> SLATarget:
    first = float(given["response"])
    return SLATarget(
        response=first,
        resolution=float(given["resolution"]),
        # Without its own target, a follow-up is due like a first reply.
        next_reply=float(given.get("next_reply", first)),
    )


def _partial_targets(config: Mapping[str, Any]) -> dict[str, SLATarget]:
    return {
        priority: _target(config[priority])
        for priority in DEFAULT_SLA_MINUTES
        if config.get(priority) is not None
    }


def _pause_on(given: Mapping[str, Any] | None) -> Mapping[str, tuple[str, ...]] | None:
    if given is None:
        return None
    return MappingProxyType({str(t): tuple(s) for t, s in given.items()})


def _sla(config: Mapping[str, Any]) -> SLAConfig:
    given = _partial_targets(config)
    targets = {
        priority: given.get(priority)
        or SLATarget(float(response), float(resolution), float(response))
        for priority, (response, resolution) in DEFAULT_SLA_MINUTES.items()
    }
    return SLAConfig(
        targets=MappingProxyType(targets),
        warning_percent=float(config.get("warning_percent", DEFAULT_WARNING_PERCENT)),
        pause_on=_pause_on(config.get("pause_on")),
        policies=tuple(
            SLAPolicyRule(
                name=str(policy["name"]),
                conditions=_conditions(policy),
                targets=MappingProxyType(_partial_targets(policy.get("targets") or {})),
                warning_percent=(
                    None
                    if policy.get("warning_percent") is None
                    else float(policy["warning_percent"])
                ),
                pause_on=_pause_on(policy.get("pause_on")),
            )
            for policy in config.get("policies") or ()
        ),
    )


def _agent(raw: Mapping[str, Any]) -> AgentConfig:
    given = raw.get("takes_assignments")
    return AgentConfig(
        id=str(raw["id"]),
        name=raw.get("name") or None,
        email=raw.get("email") or None,
        phone=raw.get("phone") or None,
        role=str(raw.get("role") or "agent"),
        skills=tuple(str(s) for s in raw.get("skills") or ()),
        capacity=int(raw.get("capacity", DEFAULT_CAPACITY)),
        takes_assignments=None if given is None else bool(given),
        away=bool(raw.get("away")),
    )


def _team(raw: Mapping[str, Any]) -> TeamConfig:
    hours = raw.get("business_hours")
    return TeamConfig(
        name=str(raw.get("name")),
        agents=tuple(_agent(a) for a in raw.get("agents") or ()),
        business_hours=BusinessHours(_frozen(hours)) if hours else None,
    )


def _assignment_rule(raw: Mapping[str, Any]) -> AssignmentRule:
    return AssignmentRule(
        name=str(raw["name"]),
        assigned_team=str(raw["assigned_team"]),
        conditions=_conditions(raw),
        priority=int(raw.get("priority", 0)),
        strategy=str(raw.get("strategy", "round_robin")),
    )


def _escalation_rule(raw: Mapping[str, Any]) -> EscalationRule:
    return EscalationRule(
        name=str(raw["name"]),
        escalate_to_team=str(raw["escalate_to_team"]),
        escalation_time_hours=float(raw["escalation_time_hours"]),
        conditions=_conditions(raw),
        level=int(raw.get("level", 1)),
        measured_from=str(raw.get("measured_from", "created")),
        business_hours=bool(raw.get("business_hours")),
        requires_approval=bool(raw.get("requires_approval", False)),
    )


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _categorization_rule(raw: Mapping[str, Any]) -> CategorizationRule:
    return CategorizationRule(
        name=str(raw.get("name", "")),
        category=str(raw["category"]),
        keywords=_texts(raw.get("keywords")),
        regex=_texts(raw.get("regex")),
        confidence=float(raw.get("confidence", DEFAULT_CONFIDENCE)),
    )


def parse_workflows(document: Mapping[str, Any]) -> WorkflowsConfig:
    """The document's ``workflows`` section alone, typed (what the write
    path checks against the installed types, before the rest is valid)."""
    section = settings_section(document, "workflows")
    options = section.get("options") or {}
    return WorkflowsConfig(
        by_category=MappingProxyType(
            {str(c): str(k) for c, k in (section.get("by_category") or {}).items()}
        ),
        default=str(section.get("default", DEFAULT_WORKFLOW)),
        options=MappingProxyType(
            {str(kind): _frozen(given or {}) for kind, given in options.items()}
        ),
    )


def _customer_replies(section: Mapping[str, Any]) -> CustomerReplies:
    defaults = CustomerReplies()
    return CustomerReplies(
        reopen_pending=bool(section.get("reopen_pending", defaults.reopen_pending)),
        reopen_on_hold=bool(section.get("reopen_on_hold", defaults.reopen_on_hold)),
        reopen_resolved=bool(section.get("reopen_resolved", defaults.reopen_resolved)),
        reopen_resolved_within_days=int(
            section.get(
                "reopen_resolved_within_days", defaults.reopen_resolved_within_days
            )
        ),
    )


def _sla_alerts(section: Mapping[str, Any]) -> SLAAlerts:
    return SLAAlerts(
        supervisors_on_breach=bool(section.get("supervisors_on_breach", True)),
        admins=tuple(_agent(raw) for raw in section.get("admins") or ()),
        given=bool(section),
    )


def _notifications(section: Mapping[str, Any]) -> Notifications:
    return Notifications(
        locale=str(section.get("locale") or DEFAULT_LOCALE),
        reply_to=section.get("reply_to") or None,
        email_coalesce_seconds=int(
            section.get("email_coalesce_seconds", DEFAULT_COALESCE_SECONDS)
        ),
    )


def parse_retention(document: Mapping[str, Any]) -> RetentionPolicy:
    """The document's ``retention`` section alone, typed (what a settings
    replace records for the timers' sweep)."""
    section = document.get("retention") or {}
    days = section.get("closed_days")
    return RetentionPolicy(
        closed_days=None if days is None else int(days),
        categories=MappingProxyType(
            {str(c): int(d) for c, d in (section.get("categories") or {}).items()}
        ),
    )


@lru_cache(maxsize=256)
def _cached_calendar(key: str) -> BusinessCalendar:
    return BusinessCalendar.from_config(json.loads(key))


#: The calendar of each configuration recently asked about, by the identity
#: of its parts: a ticket asks for its policy's calendar at every SLA
#: decision, on a (shallow) copy of the tenant's, and keying by the shape
#: (JSON) each time cost more than the arithmetic. The parts are kept with
#: it, so their ids are not reused meanwhile.
_BY_IDENTITY: dict[tuple[Any, ...], tuple[tuple[Any, ...], BusinessCalendar]] = {}
_BY_IDENTITY_MAX = 1024


def calendar_of(config: Mapping[str, Any] | str) -> BusinessCalendar:
    """The calendar of a configured shape; tenants share few: one per process."""
    if isinstance(config, str):
        return _cached_calendar(json.dumps(config))
    parts = tuple(config.items())
    key = tuple((name, id(value)) for name, value in parts)
    known = _BY_IDENTITY.get(key)
    if known is not None and all(
        a is b for (_, a), (_, b) in zip(known[0], parts, strict=True)
    ):
        return known[1]
    calendar = _cached_calendar(json.dumps(_plain(config), sort_keys=True))
    if len(_BY_IDENTITY) >= _BY_IDENTITY_MAX:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[key] = (parts, calendar)
    return calendar


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value
