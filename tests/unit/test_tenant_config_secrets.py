"""schemas.tenant_config_secrets: the settings document without its secrets."""

from __future__ import annotations

import copy
import typing
from typing import Any

import pytest
from pydantic import ValidationError

from dotmac.ticketing.schemas.tenant_config import (
    IntegrationAuth,
    TenantSettingsDocument,
)
from dotmac.ticketing.schemas.tenant_config_secrets import (
    REDACTED,
    SECRET_FIELDS,
    without_secrets,
)

DOCUMENT: dict[str, Any] = TenantSettingsDocument.model_validate(
    {
        "integrations": {
            "account_lookup": {
                "url": "https://crm.example.com/hooks/account",
                "auth": {"type": "bearer", "token": "s3cret-token"},
            },
            "billing_history": {
                "url": "https://billing.example.com/history",
                "auth": {"type": "basic", "username": "ticketing", "password": "pw"},
            },
            "apply_adjustment": {
                "url": "https://billing.example.com/adjustments",
                "auth": {"type": "header", "name": "X-Api-Key", "value": "k-1"},
            },
            "diagnostics": {"url": "https://diagnostics.example.com/run"},
        }
    }
).document()


def test_every_kind_of_auth_has_its_secret_named() -> None:
    """A new kind of auth must say which of its fields is the secret."""
    (union, *_) = typing.get_args(IntegrationAuth)
    models = typing.get_args(union)
    kinds = {
        model.model_fields["type"].annotation.__args__[0]: model for model in models
    }
    assert set(kinds) == set(SECRET_FIELDS)
    for kind, field in SECRET_FIELDS.items():
        assert field in kinds[kind].model_fields, (kind, field)


def test_secrets_are_redacted_and_nothing_else_changes() -> None:
    original = copy.deepcopy(DOCUMENT)
    redacted = without_secrets(DOCUMENT)
    assert original == DOCUMENT, "the document given is left as it was"
    integrations = redacted["integrations"]
    assert integrations["account_lookup"]["auth"] == {
        "type": "bearer",
        "token": REDACTED,
    }
    assert integrations["billing_history"]["auth"] == {
        "type": "basic",
        "username": "ticketing",
        "password": REDACTED,
    }
    assert integrations["apply_adjustment"]["auth"] == {
        "type": "header",
        "name": "X-Api-Key",
        "value": REDACTED,
    }
    assert integrations["diagnostics"] == original["integrations"]["diagnostics"]
    assert {k: v for k, v in redacted.items() if k != "integrations"} == {
        k: v for k, v in original.items() if k != "integrations"
    }
    for secret in ("s3cret-token", "pw", "k-1"):
        assert secret not in repr(redacted)


def test_a_document_without_integrations_is_copied_as_it_is() -> None:
    document = {"teams": [{"name": "Ops"}]}
    redacted = without_secrets(document)
    assert redacted == document
    assert redacted["teams"] is not document["teams"]


@pytest.mark.parametrize(
    "name", ["account_lookup", "billing_history", "apply_adjustment"]
)
def test_a_redacted_document_sent_back_is_refused(name: str) -> None:
    """The mask is never stored as a credential: the schema refuses it."""
    redacted = without_secrets(DOCUMENT)
    document = copy.deepcopy(DOCUMENT)
    document["integrations"][name] = redacted["integrations"][name]
    with pytest.raises(ValidationError) as refused:
        TenantSettingsDocument.model_validate(document)
    (error,) = refused.value.errors()
    assert error["loc"][:3] == ("integrations", name, "auth")
