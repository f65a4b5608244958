"""TenantSettings: one stream per tenant, whole documents, no-op when equal."""

from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.application import project_aggregate

from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.tenant_config import parse, parse_workflows
from dotmac.ticketing.domain.tenant_config_aggregate import (
    TenantSettings,
    changed_sections,
    default_settings_document,
    settings_section,
    tenant_settings_id,
)
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADMIN = Provenance("acme", Actor("admin-1", "admin"), "req-1")


def berlin_hours() -> dict[str, object]:
    return {
        "timezone": "Europe/Berlin",
        "week": {"mon": ["08:00", "18:00"]},
        "holidays": ["2026-12-25"],
    }


def created() -> TenantSettings:
    document = default_settings_document()
    document["business_hours"] = berlin_hours()
    return TenantSettings.create(
        tenant_id="acme", document=document, provenance=ADMIN, at=T0
    )


def test_defaults_are_the_documented_targets() -> None:
    document = default_settings_document()
    assert document["sla_config"] == {
        "critical": {"response": 15, "resolution": 240},
        "urgent": {"response": 60, "resolution": 480},
        "high": {"response": 240, "resolution": 1440},
        "normal": {"response": 1440, "resolution": 4320},
        "low": {"response": 2880, "resolution": 10080},
        "warning_percent": 80,
        "policies": [],
    }
    assert document["business_hours"] == "24x7"
    # A fresh copy each time: callers may change theirs.
    document["sla_config"]["low"]["response"] = 1
    assert default_settings_document()["sla_config"]["low"]["response"] == 2880


def test_create_derives_the_id_from_the_tenant_and_records_the_document() -> None:
    settings = created()
    assert settings.id == tenant_settings_id("acme") != tenant_settings_id("other")
    assert settings.version == 1
    assert settings.tenant_id == "acme"
    assert settings.document["business_hours"] == berlin_hours()
    (event,) = settings.collect_events()
    assert isinstance(event, TenantSettings.TenantSettingsCreated)
    assert event.changed_sections == ["business_hours"]
    assert event.actor == {"id": "admin-1", "role": "admin", "kind": "user"}
    assert event.timestamp == T0


def test_replace_records_the_whole_document_and_changed_sections() -> None:
    settings = created()
    document = settings.document | {
        "escalation_rules": [
            {
                "name": "critical",
                "conditions": {"priority": ["critical"]},
                "escalation_time_hours": 0.25,
                "escalate_to_team": "Engineering",
                "requires_approval": False,
            }
        ]
    }
    assert settings.replace(document, provenance=ADMIN, at=T0 + timedelta(hours=1))
    assert settings.version == 2
    assert settings.document == document
    events = settings.collect_events()
    changed = events[-1]
    assert isinstance(changed, TenantSettings.TenantSettingsChanged)
    assert changed.changed_sections == ["escalation_rules"]
    assert changed.document == document


def test_an_equal_document_is_a_no_op() -> None:
    settings = created()
    settings.collect_events()
    assert not settings.replace(
        dict(settings.document), provenance=ADMIN, at=T0 + timedelta(hours=1)
    )
    assert settings.version == 1
    assert settings.collect_events() == []


def test_the_document_is_copied_not_shared() -> None:
    document = default_settings_document()
    settings = TenantSettings.create(
        tenant_id="acme", document=document, provenance=ADMIN, at=T0
    )
    document["teams"].append({"name": "x"})
    assert settings.document["teams"] == []


def test_history_replays_to_each_version() -> None:
    settings = created()
    first = dict(settings.document)
    second = first | {"teams": [{"name": "Support", "agents": []}]}
    third = second | {"business_hours": "24x7"}
    settings.replace(second, provenance=ADMIN, at=T0 + timedelta(hours=1))
    settings.replace(third, provenance=ADMIN, at=T0 + timedelta(hours=2))
    events = settings.collect_events()
    assert [e.originator_version for e in events] == [1, 2, 3]
    assert [e.changed_sections for e in events[1:]] == [  # type: ignore[attr-defined]
        ["teams"],
        ["business_hours"],
    ]
    for version, expected in ((1, first), (2, second), (3, third)):
        replayed = project_aggregate(None, events[:version])
        assert isinstance(replayed, TenantSettings)
        assert replayed.version == version
        assert replayed.document == expected


def test_unknown_sections_and_other_tenants_are_refused() -> None:
    settings = created()
    with pytest.raises(InvalidCommand) as refused:
        settings.replace({"bogus": 1}, provenance=ADMIN, at=T0)
    assert refused.value.field == "bogus"
    other = Provenance("other", Actor("admin-9", "admin"))
    with pytest.raises(InvalidCommand):
        settings.replace(default_settings_document(), provenance=other, at=T0)
    with pytest.raises(InvalidCommand):
        TenantSettings.create(tenant_id="acme", document={}, provenance=other, at=T0)


def test_changed_sections_in_document_order() -> None:
    before = default_settings_document()
    after = before | {"teams": [{"name": "x"}], "sla_config": {}}
    assert changed_sections(before, after) == ["sla_config", "teams"]
    assert changed_sections(before, before) == []


def test_the_workflow_sections_default_to_the_built_in_choice() -> None:
    document = default_settings_document()
    assert document["workflows"] == {
        "by_category": {
            "technical_support": "technical_support",
            "billing": "billing",
        },
        "default": "customer_support",
        "options": {},
    }
    assert document["categorization_rules"] == []
    assert document["integrations"] == {}
    # The schema's defaults are the domain's: an empty PUT stores nothing new.
    assert TenantSettingsDocument().document() == document


def test_the_workflow_type_follows_the_category_else_the_default() -> None:
    document = default_settings_document()
    assert (
        parse(document).workflows.type_for("technical_support") == "technical_support"
    )
    assert parse(document).workflows.type_for("billing") == "billing"
    for category in ("account", "service_request", "complaint", "general"):
        assert parse(document).workflows.type_for(category) == "customer_support"
    document["workflows"] = {
        "by_category": {"complaint": "vip_care"},
        "default": "triage",
        "options": {},
    }
    assert parse(document).workflows.type_for("complaint") == "vip_care"
    assert parse(document).workflows.type_for("billing") == "triage"


def test_workflow_types_nobody_installed_are_named_by_their_field() -> None:
    installed = {"customer_support", "technical_support", "billing"}
    assert parse_workflows(default_settings_document()).unknown_types(installed) == []
    document = default_settings_document()
    document["workflows"] = {
        "by_category": {"billing": "billing", "complaint": "vip_care"},
        "default": "triage",
        "options": {"billing": {}, "bilingual": {"x": 1}},
    }
    assert parse_workflows(document).unknown_types(installed) == [
        ("workflows.by_category.complaint", "vip_care"),
        ("workflows.default", "triage"),
        ("workflows.options.bilingual", "bilingual"),
    ]


def test_documents_stored_before_a_section_existed_mean_its_defaults() -> None:
    old = {
        name: value
        for name, value in default_settings_document().items()
        if name not in ("workflows", "categorization_rules", "integrations")
    }
    assert settings_section(old, "integrations") == {}
    assert settings_section(old, "categorization_rules") == []
    assert parse(old).workflows.type_for("billing") == "billing"
    assert settings_section({"teams": [{"name": "Ops"}]}, "teams") == [{"name": "Ops"}]
    with pytest.raises(KeyError, match="unknown settings section"):
        settings_section(old, "surprise")
