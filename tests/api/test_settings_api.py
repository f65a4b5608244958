"""Tenant settings over HTTP: admin only, whole documents, versions as ETags."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.config_file import tenant_defaults
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.tenant_config import TenantSettingsService
from tests.api.conftest import AuthFor

SETTINGS = "/api/v1/settings"
PROBLEM = "application/problem+json"

DOCUMENT: dict[str, Any] = {
    "sla_config": {
        "critical": {"response": 10, "resolution": 120},
        "high": {"response": 60, "resolution": 480.5},
    },
    "business_hours": {
        "timezone": "Europe/Berlin",
        "week": {"mon": ["08:00", "18:00"], "tue": [["08:00", "12:00"]]},
        "holidays": ["2026-12-25"],
    },
    "teams": [
        {
            "name": "Technical Support",
            "agents": [
                {
                    "id": "agent-1",
                    "email": "ada@example.com",
                    "phone": "+49 30 123",
                    "skills": ["vpn"],
                    "capacity": 5,
                }
            ],
        }
    ],
    "assignment_rules": [
        {
            "name": "technical_issues",
            "conditions": {"category": "technical_support"},
            "assigned_team": "Technical Support",
            "priority": 10,
            "strategy": "round_robin",
        }
    ],
    "escalation_rules": [
        {
            "name": "critical_escalation",
            "conditions": {
                "priority": ["critical", "urgent"],
                "text": {"regex": "(?i)outage"},
                "custom_fields": {"plan": "pro"},
            },
            "escalation_time_hours": 0.25,
            "escalate_to_team": "Engineering",
            "requires_approval": False,
        }
    ],
    "workflows": {
        "by_category": {
            "technical_support": "technical_support",
            "complaint": "customer_support",
        },
        "default": "customer_support",
        "options": {
            "technical_support": {
                "auto_close_after_hours": 72,
                "diagnostics_question": "Which version are you running?",
            },
            "billing": {"approval_above": 100.0, "currency": "EUR"},
        },
    },
    "categorization_rules": [
        {
            "name": "billing_words",
            "category": "billing",
            "keywords": "invoice",
            "regex": [r"order\s+#?\d{6,}"],
            "confidence": 0.9,
        },
        {"name": "vpn", "category": "technical_support", "keywords": ["vpn"]},
    ],
    "integrations": {
        "account_lookup": {
            "url": "https://crm.example.com/hooks/account",
            "auth": {"type": "bearer", "token": "s3cret"},
        },
        "billing_history": {
            "url": "https://billing.example.com/history",
            "timeout_seconds": 10,
            "auth": {"type": "basic", "username": "ticketing", "password": "pw"},
        },
        "apply_adjustment": {
            "url": "https://billing.example.com/adjustments",
            "auth": {"type": "header", "name": "X-Api-Key", "value": "k-1"},
        },
        "diagnostics": {"url": "http://diagnostics.example.com/run"},
    },
    "retention": {"closed_days": 365, "categories": {"billing": 30}},
}


def admin(auth_for: AuthFor, tenant: str) -> dict[str, str]:
    return auth_for(tenant, "admin-1", "admin")


def test_a_tenant_without_settings_gets_the_defaults_at_version_0(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    response = client.get(SETTINGS, headers=admin(auth_for, tenant))
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"0"'
    assert response.json() == {"version": 0, "document": default_settings_document()}


def test_put_stores_a_version_that_get_returns(
    client: TestClient, auth_for: AuthFor, tenant: str, ticketing: Ticketing
) -> None:
    headers = admin(auth_for, tenant)
    put = client.put(SETTINGS, json=DOCUMENT, headers=headers)
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] == '"1"'
    body = put.json()
    assert body["version"] == 1
    document = body["document"]
    # Normalised: left-out priorities keep their defaults, any-of becomes a list.
    assert document["sla_config"]["critical"] == {"response": 10, "resolution": 120}
    assert document["sla_config"]["high"] == {"response": 60, "resolution": 480.5}
    assert document["sla_config"]["low"] == {"response": 2880, "resolution": 10080}
    rule = document["escalation_rules"][0]
    assert rule["conditions"]["custom_fields"] == {"plan": ["pro"]}
    assert rule["conditions"]["text"] == {"regex": ["(?i)outage"]}
    assert rule["escalation_time_hours"] == 0.25
    assert document["assignment_rules"][0]["conditions"] == {
        "category": ["technical_support"]
    }
    assert document["business_hours"] == DOCUMENT["business_hours"]
    assert document["workflows"] == DOCUMENT["workflows"]
    assert document["categorization_rules"] == [
        {
            "name": "billing_words",
            "category": "billing",
            "keywords": ["invoice"],
            "regex": [r"order\s+#?\d{6,}"],
            "confidence": 0.9,
        },
        {
            "name": "vpn",
            "category": "technical_support",
            "keywords": ["vpn"],
            "regex": [],
            "confidence": 0.8,
        },
    ]
    integrations = document["integrations"]
    assert integrations["account_lookup"]["timeout_seconds"] == 5
    assert integrations["billing_history"]["timeout_seconds"] == 10
    assert "auth" not in integrations["diagnostics"]
    assert document["retention"] == DOCUMENT["retention"]

    get = client.get(SETTINGS, headers=headers)
    assert get.status_code == 200
    assert get.headers["ETag"] == '"1"'
    assert get.json() == body
    assert ticketing.settings_service.get(tenant) == (1, document)

    # The same document again changes nothing.
    again = client.put(SETTINGS, json=DOCUMENT, headers=headers)
    assert again.status_code == 200
    assert again.json()["version"] == 1

    changed = copy.deepcopy(DOCUMENT) | {"business_hours": "24x7"}
    second = client.put(SETTINGS, json=changed, headers=headers)
    assert second.json()["version"] == 2
    assert second.json()["document"]["business_hours"] == "24x7"


def test_another_tenant_still_sees_the_defaults(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    put = client.put(SETTINGS, json=DOCUMENT, headers=admin(auth_for, tenant))
    assert put.status_code == 200
    other = client.get(SETTINGS, headers=admin(auth_for, tenant + "-other"))
    assert other.json() == {"version": 0, "document": default_settings_document()}


@pytest.mark.parametrize("role", ["agent", "supervisor", "customer"])
def test_only_admins_read_or_change_settings(
    client: TestClient, auth_for: AuthFor, tenant: str, role: str
) -> None:
    headers = auth_for(tenant, f"{role}-1", role)
    for response in (
        client.get(SETTINGS, headers=headers),
        client.put(SETTINGS, json=DOCUMENT, headers=headers),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM
    assert client.get(SETTINGS).status_code == 401
    version = client.get(SETTINGS, headers=admin(auth_for, tenant)).json()["version"]
    assert version == 0


def _spoiled(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


INVALID: dict[str, tuple[dict[str, Any], list[str]]] = {
    "bad-priority-key": (
        _spoiled(("sla_config", "highest"), {"response": 1, "resolution": 2}),
        ["sla_config", "highest"],
    ),
    "negative-minutes": (
        _spoiled(("sla_config", "critical", "response"), -5),
        ["sla_config", "critical", "response"],
    ),
    "zero-minutes": (
        _spoiled(("sla_config", "critical", "resolution"), 0),
        ["sla_config", "critical", "resolution"],
    ),
    "bad-timezone": (
        _spoiled(("business_hours", "timezone"), "Mars/Olympus_Mons"),
        ["business_hours", "timezone"],
    ),
    "bad-opening-time": (
        _spoiled(("business_hours", "week", "mon"), ["08:00", "25:00"]),
        ["business_hours", "week"],
    ),
    "bad-always-open": (_spoiled(("business_hours",), "always"), ["business_hours"]),
    "bad-regex": (
        _spoiled(("escalation_rules", 0, "conditions", "text", "regex"), "(("),
        ["escalation_rules", "0", "conditions", "text", "regex"],
    ),
    "unknown-strategy": (
        _spoiled(("assignment_rules", 0, "strategy"), "random"),
        ["assignment_rules", "0", "strategy"],
    ),
    "extra-field": (_spoiled(("surprise",), 1), ["surprise"]),
    "extra-nested-field": (
        _spoiled(("teams", 0, "agents", 0, "shoe_size"), 44),
        ["teams", "0", "agents", "0", "shoe_size"],
    ),
    "unknown-category": (
        _spoiled(("assignment_rules", 0, "conditions", "category"), "weather"),
        ["assignment_rules", "0", "conditions", "category"],
    ),
    "non-positive-hours": (
        _spoiled(("escalation_rules", 0, "escalation_time_hours"), 0),
        ["escalation_rules", "0", "escalation_time_hours"],
    ),
    "duplicate-team": (
        _spoiled(("teams",), [DOCUMENT["teams"][0], {"name": "Technical Support"}]),
        ["teams"],
    ),
    "workflow-type-not-an-identifier": (
        _spoiled(("workflows", "by_category", "billing"), "Billing Flow"),
        ["workflows", "by_category", "billing"],
    ),
    "workflow-for-unknown-category": (
        _spoiled(("workflows", "by_category", "weather"), "billing"),
        ["workflows", "by_category", "weather"],
    ),
    "workflow-default-empty": (
        _spoiled(("workflows", "default"), ""),
        ["workflows", "default"],
    ),
    "workflow-options-not-an-object": (
        _spoiled(("workflows", "options", "billing"), 5),
        ["workflows", "options", "billing"],
    ),
    "workflow-option-name": (
        _spoiled(("workflows", "options", "billing"), {"Approval Above": 1}),
        ["workflows", "options", "billing", "Approval Above"],
    ),
    "workflow-options-too-large": (
        _spoiled(("workflows", "options", "billing"), {"text": "x" * 20_000}),
        ["workflows", "options", "billing"],
    ),
    "workflow-option-too-deep": (
        _spoiled(("workflows", "options", "billing", "x"), [[[[["deep"]]]]]),
        ["workflows", "options", "billing", "x"],
    ),
    "categorization-rule-without-keywords-or-regex": (
        _spoiled(("categorization_rules", 1, "keywords"), []),
        ["categorization_rules", "1"],
    ),
    "categorization-unknown-category": (
        _spoiled(("categorization_rules", 0, "category"), "weather"),
        ["categorization_rules", "0", "category"],
    ),
    "categorization-confidence-above-1": (
        _spoiled(("categorization_rules", 0, "confidence"), 1.5),
        ["categorization_rules", "0", "confidence"],
    ),
    "categorization-bad-regex": (
        _spoiled(("categorization_rules", 0, "regex"), ["(("]),
        ["categorization_rules", "0", "regex"],
    ),
    "categorization-empty-keyword": (
        _spoiled(("categorization_rules", 1, "keywords"), ["vpn", "  "]),
        ["categorization_rules", "1", "keywords", "1"],
    ),
    "categorization-duplicate-rule": (
        _spoiled(("categorization_rules", 1, "name"), "billing_words"),
        ["categorization_rules"],
    ),
    "integration-name-not-an-identifier": (
        _spoiled(("integrations", "Account Lookup"), {"url": "https://x.example"}),
        ["integrations", "Account Lookup"],
    ),
    "integration-url-not-http": (
        _spoiled(("integrations", "diagnostics", "url"), "ftp://x.example/run"),
        ["integrations", "diagnostics", "url"],
    ),
    "integration-url-with-credentials": (
        _spoiled(("integrations", "diagnostics", "url"), "https://u:p@x.example/"),
        ["integrations", "diagnostics", "url"],
    ),
    "integration-timeout-zero": (
        _spoiled(("integrations", "diagnostics", "timeout_seconds"), 0),
        ["integrations", "diagnostics", "timeout_seconds"],
    ),
    "integration-timeout-above-60": (
        _spoiled(("integrations", "diagnostics", "timeout_seconds"), 61),
        ["integrations", "diagnostics", "timeout_seconds"],
    ),
    "integration-unknown-auth-type": (
        _spoiled(("integrations", "diagnostics", "auth"), {"type": "oauth"}),
        ["integrations", "diagnostics", "auth"],
    ),
    "integration-bearer-token-with-space": (
        _spoiled(("integrations", "account_lookup", "auth", "token"), "a b"),
        ["integrations", "account_lookup", "auth", "bearer", "token"],
    ),
    "integration-basic-username-with-colon": (
        _spoiled(("integrations", "billing_history", "auth", "username"), "a:b"),
        ["integrations", "billing_history", "auth", "basic", "username"],
    ),
    "integration-reserved-header": (
        _spoiled(("integrations", "apply_adjustment", "auth", "name"), "Host"),
        ["integrations", "apply_adjustment", "auth", "header", "name"],
    ),
    "integration-header-value-with-newline": (
        _spoiled(("integrations", "apply_adjustment", "auth", "value"), "a\r\nB: c"),
        ["integrations", "apply_adjustment", "auth", "header", "value"],
    ),
    "retention-zero-days": (
        _spoiled(("retention", "closed_days"), 0),
        ["retention", "closed_days"],
    ),
    "retention-over-ten-years": (
        _spoiled(("retention", "closed_days"), 3661),
        ["retention", "closed_days"],
    ),
    "retention-days-as-text": (
        _spoiled(("retention", "closed_days"), "30"),
        ["retention", "closed_days"],
    ),
    "retention-unknown-category": (
        _spoiled(("retention", "categories", "weather"), 7),
        ["retention", "categories", "weather"],
    ),
    "retention-negative-category-days": (
        _spoiled(("retention", "categories", "billing"), -1),
        ["retention", "categories", "billing"],
    ),
    "retention-extra-field": (
        _spoiled(("retention", "open_days"), 7),
        ["retention", "open_days"],
    ),
    "integration-extra-field": (
        _spoiled(("integrations", "diagnostics", "retries"), 3),
        ["integrations", "diagnostics", "retries"],
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_document_is_refused_whole_naming_the_field(
    client: TestClient, auth_for: AuthFor, tenant: str, name: str
) -> None:
    document, expected = INVALID[name]
    headers = admin(auth_for, tenant)
    response = client.put(SETTINGS, json=document, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    locs = [error["loc"] for error in response.json()["errors"]]
    assert any(
        loc[0] == "body"
        and [p for p in loc[1:] if p != "calendar"][: len(expected)] == expected
        for loc in locs
    ), locs
    assert client.get(SETTINGS, headers=headers).json()["version"] == 0


@pytest.mark.parametrize(
    ("workflows", "field", "kind"),
    [
        (
            {"by_category": {"complaint": "vip_care"}},
            "workflows.by_category.complaint",
            "vip_care",
        ),
        ({"default": "triage"}, "workflows.default", "triage"),
        (
            {"options": {"bilingual": {"x": 1}}},
            "workflows.options.bilingual",
            "bilingual",
        ),
    ],
)
def test_a_workflow_type_nobody_installed_is_refused_naming_the_field(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    workflows: dict[str, Any],
    field: str,
    kind: str,
) -> None:
    headers = admin(auth_for, tenant)
    response = client.put(SETTINGS, json={"workflows": workflows}, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    refused = response.json()
    assert refused["field"] == field
    assert refused["detail"] == (
        f"{field}: no workflow {kind!r} is installed (installed: billing,"
        " customer_support, technical_support)"
    )
    # Nothing changed.
    assert client.get(SETTINGS, headers=headers).json()["version"] == 0


def test_seeding_a_workflow_type_nobody_installed_fails_naming_it(
    ticketing: Ticketing, tenant: str
) -> None:
    bad = {"tenants": {tenant: {"settings": {"workflows": {"default": "triage"}}}}}
    with pytest.raises(
        ValueError, match=rf"tenants\.{tenant}\.settings\.workflows\.default: no"
    ):
        ticketing.settings_service.seed_from_config(bad)
    assert ticketing.settings_service.get(tenant)[0] == 0


def test_deployment_defaults_naming_a_workflow_type_nobody_installed_fail(
    ticketing: Ticketing,
) -> None:
    """The configuration's top-level sections are every new tenant's settings."""
    defaults = tenant_defaults({"workflows": {"by_category": {"billing": "ledger"}}})
    with pytest.raises(
        ValueError, match=r"^workflows\.by_category\.billing: no workflow 'ledger'"
    ):
        TenantSettingsService(
            ticketing.app,
            defaults=defaults,
            workflow_types=ticketing.workflows.registry.names,
        )


def test_if_match_guards_against_lost_updates(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    headers = admin(auth_for, tenant)
    stale = client.put(SETTINGS, json=DOCUMENT, headers={**headers, "If-Match": '"3"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == PROBLEM
    assert stale.json()["current_version"] == 0

    first = client.put(SETTINGS, json=DOCUMENT, headers={**headers, "If-Match": '"0"'})
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"1"'
    changed = copy.deepcopy(DOCUMENT) | {"teams": []}
    lost = client.put(SETTINGS, json=changed, headers={**headers, "If-Match": '"0"'})
    assert lost.status_code == 412
    assert lost.json()["current_version"] == 1
    won = client.put(SETTINGS, json=changed, headers={**headers, "If-Match": '"1"'})
    assert won.status_code == 200
    assert won.json()["version"] == 2
    bad = client.put(SETTINGS, json=changed, headers={**headers, "If-Match": "soon"})
    assert bad.status_code == 422


def test_settings_streams_are_not_tickets(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    from dotmac.ticketing.domain.tenant_config_aggregate import tenant_settings_id

    headers = admin(auth_for, tenant)
    assert client.put(SETTINGS, json=DOCUMENT, headers=headers).status_code == 200
    response = client.get(
        f"/api/v1/tickets/{tenant_settings_id(tenant)}", headers=headers
    )
    assert response.status_code == 404, response.text


def test_seeding_from_config_is_idempotent(
    client: TestClient, auth_for: AuthFor, tenant: str, ticketing: Ticketing
) -> None:
    service = ticketing.settings_service
    config = {
        "tenants": {
            tenant: {"settings": DOCUMENT, "templates": {}},
            tenant + "-plain": {"teams": []},
        }
    }
    assert service.seed_from_config(config) == {tenant: 1}
    assert service.seed_from_config(config) == {tenant: 1}
    assert service.seed_from_config({}) == {}
    response = client.get(SETTINGS, headers=admin(auth_for, tenant))
    assert response.json()["version"] == 1
    assert response.json()["document"]["teams"][0]["name"] == "Technical Support"
    assert service.get(tenant + "-plain")[0] == 0
    bad = {"tenants": {tenant: {"settings": _spoiled(("surprise",), 1)}}}
    with pytest.raises(ValueError, match="surprise"):
        service.seed_from_config(bad)
    assert service.get(tenant)[0] == 1


def test_initialize_ticketing_seeds_the_config_mapping(
    settings: Settings, tenant: str
) -> None:
    config = {
        "database_url": settings.database_url,
        "tenants": {tenant: {"settings": {"business_hours": "24x7", "teams": []}}},
    }
    core = initialize_ticketing(config)
    try:
        assert core.settings_service.get(tenant) == (0, default_settings_document())
        config["tenants"] = {tenant: {"settings": {"teams": [{"name": "Ops"}]}}}
        core.close()
        core = initialize_ticketing(config)
        version, document = core.settings_service.get(tenant)
        assert version == 1
        assert document["teams"] == [{"name": "Ops", "agents": []}]
    finally:
        core.close()
