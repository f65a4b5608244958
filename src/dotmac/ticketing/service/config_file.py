"""The configuration document named by ``TICKETING_CONFIG`` (YAML or JSON).

Its shape is ``initialize_ticketing``'s config: defaults, rules and
``tenants`` (teams with their agents' contact details, notification
templates, …). Read once at start-up by the process that needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


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
