"""domain.tenant_config.parse: a configuration document as typed objects."""

from datetime import UTC, datetime

import pytest

from dotmac.ticketing.domain.tenant_config import (
    AgentConfig,
    AssignmentRule,
    BusinessHours,
    CategorizationRule,
    CustomerReplies,
    EscalationRule,
    Merges,
    Notifications,
    RetentionPolicy,
    SLAAlerts,
    SLAPolicyRule,
    SLATarget,
    TeamConfig,
    parse,
)
from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument

OFFICE = {"timezone": "Europe/Berlin", "week": {"mon": ["09:00", "17:00"]}}

DEFAULT_TARGETS = {
    "critical": SLATarget(15, 240, 15),
    "urgent": SLATarget(60, 480, 60),
    "high": SLATarget(240, 1440, 240),
    "normal": SLATarget(1440, 4320, 1440),
    "low": SLATarget(2880, 10080, 2880),
}


@pytest.mark.parametrize(
    "document",
    [{}, default_settings_document(), TenantSettingsDocument().document()],
    ids=["empty", "built-in defaults", "schema defaults"],
)
def test_a_silent_document_means_the_defaults(document: dict[str, object]) -> None:
    config = parse(document)
    assert dict(config.sla.targets) == DEFAULT_TARGETS
    assert config.sla.warning_percent == 80
    assert config.sla.pause_on is None
    assert config.sla.policies == ()
    assert config.business_hours == BusinessHours("24x7")
    assert config.teams == ()
    assert config.assignment_rules == ()
    assert config.escalation_rules == ()
    assert config.categorization_rules == ()
    assert config.workflows.type_for("technical_support") == "technical_support"
    assert config.workflows.type_for("billing") == "billing"
    assert config.workflows.type_for("complaint") == "customer_support"
    assert config.workflows.options_for("technical_support") == {}
    assert dict(config.integrations) == {}
    assert config.customer_replies == CustomerReplies(True, False, True, 7)
    assert config.sla_alerts == SLAAlerts(supervisors_on_breach=True, admins=())
    assert config.merges == Merges("confirm")
    assert config.notifications == Notifications("en", None, 30)


def test_sla_targets_policies_and_pauses() -> None:
    config = parse(
        {
            "sla_config": {
                "high": {"response": 30, "resolution": 600, "next_reply": 45},
                "low": {"response": 100, "resolution": 1000},
                "warning_percent": 75,
                "pause_on": {"resolution": ["pending", "on_hold"]},
                "policies": [
                    {
                        "name": "gold",
                        "conditions": {"customer_tier": ["gold"]},
                        "targets": {"critical": {"response": 5, "resolution": 60}},
                        "warning_percent": 50,
                        "pause_on": {"first_response": ["on_hold"]},
                    },
                    {"name": "plain"},
                ],
            }
        }
    )
    assert config.sla.targets["high"] == SLATarget(30, 600, 45)
    # Without next_reply, a follow-up is due like a first reply.
    assert config.sla.targets["low"] == SLATarget(100, 1000, 100)
    assert config.sla.targets["critical"] == DEFAULT_TARGETS["critical"]
    assert config.sla.warning_percent == 75
    assert dict(config.sla.pause_on or {}) == {"resolution": ("pending", "on_hold")}
    gold, plain = config.sla.policies
    assert gold.name == "gold"
    assert dict(gold.conditions or {}) == {"customer_tier": ["gold"]}
    # A policy holds only what it changes.
    assert dict(gold.targets) == {"critical": SLATarget(5, 60, 5)}
    assert gold.warning_percent == 50
    assert dict(gold.pause_on or {}) == {"first_response": ("on_hold",)}
    assert plain == SLAPolicyRule(name="plain")


def test_business_hours_keep_their_configured_shape_and_parse_to_a_calendar() -> None:
    config = parse({"business_hours": OFFICE})
    assert dict(config.business_hours.config) == OFFICE  # type: ignore[arg-type]
    monday_8 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert config.business_hours.calendar().add_business_minutes(
        monday_8, 30
    ) == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    # The same shape is one calendar per process.
    assert (
        config.business_hours.calendar()
        is parse({"business_hours": dict(OFFICE)}).business_hours.calendar()
    )


def test_teams_and_agents() -> None:
    config = parse(
        {
            "teams": [
                {
                    "name": "Support",
                    "business_hours": OFFICE,
                    "agents": [
                        {
                            "id": "ana",
                            "name": "Ana",
                            "email": "ana@acme.test",
                            "phone": "+15550001",
                            "skills": ["vpn", "dns"],
                            "capacity": 3,
                            "away": True,
                        },
                        {"id": "sam", "role": "supervisor", "takes_assignments": True},
                    ],
                },
                {"name": "Billing"},
            ]
        }
    )
    support, billing = config.teams
    assert support.agents == (
        AgentConfig(
            id="ana",
            name="Ana",
            email="ana@acme.test",
            phone="+15550001",
            skills=("vpn", "dns"),
            capacity=3,
            away=True,
        ),
        AgentConfig(id="sam", role="supervisor", takes_assignments=True),
    )
    assert support.business_hours is not None
    assert dict(support.business_hours.config) == OFFICE  # type: ignore[arg-type]
    assert billing == TeamConfig(name="Billing")
    assert billing.agents[:1] == () and billing.business_hours is None
    assert AgentConfig(id="x").capacity == 20
    assert config.team("Billing") is billing
    assert config.team("billing") is None


def test_assignment_escalation_and_categorization_rules() -> None:
    config = parse(
        {
            "assignment_rules": [
                {
                    "name": "vip",
                    "conditions": {"priority": ["critical"]},
                    "assigned_team": "Support",
                    "priority": 5,
                    "strategy": "skills",
                },
                {"name": "rest", "assigned_team": "Billing"},
            ],
            "escalation_rules": [
                {
                    "name": "late",
                    "conditions": {"priority": ["urgent"]},
                    "level": 2,
                    "measured_from": "resolution_due",
                    "escalation_time_hours": -2,
                    "escalate_to_team": "Engineering",
                    "requires_approval": True,
                },
                {
                    "name": "slow",
                    "business_hours": True,
                    "escalation_time_hours": 1,
                    "escalate_to_team": "Support",
                },
            ],
            "categorization_rules": [
                {
                    "name": "money",
                    "category": "billing",
                    "keywords": ["invoice", "refund"],
                    "regex": "charged \\d+ times",
                    "confidence": 0.9,
                },
                {"name": "net", "category": "technical_support", "keywords": "vpn"},
            ],
        }
    )
    vip, rest = config.assignment_rules
    assert (vip.name, vip.assigned_team, vip.priority, vip.strategy) == (
        "vip",
        "Support",
        5,
        "skills",
    )
    assert dict(vip.conditions or {}) == {"priority": ["critical"]}
    assert rest == AssignmentRule(name="rest", assigned_team="Billing")
    late, slow = config.escalation_rules
    assert (late.level, late.measured_from, late.escalation_time_hours) == (
        2,
        "resolution_due",
        -2.0,
    )
    assert late.requires_approval and not late.business_hours
    assert slow == EscalationRule(
        name="slow",
        escalate_to_team="Support",
        escalation_time_hours=1.0,
        business_hours=True,
    )
    assert config.escalation_rule("slow") is slow
    assert config.escalation_rule("gone") is None
    assert config.categorization_rules == (
        CategorizationRule(
            name="money",
            category="billing",
            keywords=("invoice", "refund"),
            regex=("charged \\d+ times",),
            confidence=0.9,
        ),
        CategorizationRule(name="net", category="technical_support", keywords=("vpn",)),
    )


def test_workflows_replies_alerts_merges_and_notifications() -> None:
    config = parse(
        {
            "workflows": {
                "by_category": {"complaint": "vip_care"},
                "default": "triage",
                "options": {"vip_care": {"wait_hours": 4}},
            },
            "integrations": {"crm": {"url": "https://crm.test"}},
            "customer_replies": {"reopen_on_hold": True, "reopen_resolved": False},
            "sla_alerts": {
                "supervisors_on_breach": False,
                "admins": [{"id": "boss", "email": "boss@acme.test"}],
            },
            "merges": {"cross_customer": "refuse"},
            "notifications": {
                "locale": "de",
                "reply_to": "desk@acme.test",
                "email_coalesce_seconds": 0,
            },
        }
    )
    assert config.workflows.type_for("complaint") == "vip_care"
    # A document's own by_category replaces the built-in one.
    assert config.workflows.type_for("billing") == "triage"
    assert dict(config.workflows.options_for("vip_care")) == {"wait_hours": 4}
    assert config.workflows.options_for("triage") == {}
    assert dict(config.integrations) == {"crm": {"url": "https://crm.test"}}
    assert config.customer_replies == CustomerReplies(
        reopen_pending=True,
        reopen_on_hold=True,
        reopen_resolved=False,
        reopen_resolved_within_days=7,
    )
    assert config.sla_alerts == SLAAlerts(
        supervisors_on_breach=False,
        admins=(AgentConfig(id="boss", email="boss@acme.test"),),
    )
    assert config.merges == Merges("refuse")
    assert config.notifications == Notifications("de", "desk@acme.test", 0)


def test_the_parsed_form_is_read_only() -> None:
    document = {"teams": [{"name": "Ops"}], "integrations": {"crm": {}}}
    config = parse(document)
    with pytest.raises(AttributeError):
        config.teams = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.integrations["new"] = {}  # type: ignore[index]
    # Later changes to the document do not reach the parsed form.
    document["integrations"]["erp"] = {}  # type: ignore[index]
    assert "erp" not in config.integrations


def test_sla_alerts_say_whether_the_document_gives_them() -> None:
    # The notifier's directory falls back to the deployment's for a tenant
    # with neither teams nor an sla_alerts section (consumers/notify/directory).
    assert parse({}).sla_alerts.given is False
    assert parse({"sla_alerts": {}}).sla_alerts.given is False
    given = parse({"sla_alerts": {"supervisors_on_breach": True}}).sla_alerts
    assert given.given is True
    assert given == parse({}).sla_alerts  # the same choices


def test_retention_keeps_forever_unless_a_period_is_given() -> None:
    assert parse({}).retention == RetentionPolicy()
    assert parse({}).retention.erases is False
    assert parse({"retention": {"categories": {}}}).retention.erases is False
    config = parse(
        {"retention": {"closed_days": 30, "categories": {"billing": 1}}}
    ).retention
    assert (config.closed_days, dict(config.categories)) == (30, {"billing": 1})
    assert config.erases is True
    only_billing = parse({"retention": {"categories": {"billing": 7}}}).retention
    assert only_billing.erases is True
    assert only_billing.closed_days is None


def test_a_validated_retention_section_parses_to_the_same_policy() -> None:
    document = TenantSettingsDocument.model_validate(
        {"retention": {"closed_days": 400, "categories": {"complaint": 3650}}}
    ).document()
    assert document["retention"] == {
        "closed_days": 400,
        "categories": {"complaint": 3650},
    }
    assert parse(document).retention == RetentionPolicy(400, {"complaint": 3650})
