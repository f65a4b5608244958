"""The configuration document named by ``TICKETING_CONFIG`` (YAML or JSON).

Its shape is ``initialize_ticketing``'s config: the tenant settings
sections at the top level (``sla_config``, ``assignment_rules``,
``escalation_rules``, …), which are the defaults of every tenant that stored
no settings of its own, and ``tenants`` (per tenant: a settings document,
teams with their agents' contact details, notification templates, …). Read
once at start-up by the process that needs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument

# The keys of a config document that are not tenant settings sections.
TENANTS_KEY = "tenants"


class ConfigFileError(ValueError):
    """The file is missing, unreadable or not a mapping."""


def load_config_file(path: Path | None) -> dict[str, Any]:
    """The document at ``path`` as a dict (empty when ``path`` is None)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigFileError(f"cannot read {path}: {error}") from error
    try:
        document = (
            json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        )
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigFileError(f"{path} is not valid YAML or JSON: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigFileError(f"{path} must hold a mapping at the top level")
    return document


def tenant_defaults(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings document of the config's top-level sections, validated.

    None when the config names no section, so tenants keep the built-in
    defaults. Raises ``pydantic.ValidationError`` naming a bad field.
    """
    sections = set(TenantSettingsDocument.model_fields)
    chosen = {key: value for key, value in config.items() if key in sections}
    if not chosen:
        return None
    return TenantSettingsDocument.model_validate(chosen).document()
