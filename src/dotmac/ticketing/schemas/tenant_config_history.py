"""The API models of the tenant settings' history (``GET /settings/history``).

One entry per stored version, newest first: who made it, when, and what it
changed against the version before, as JSON-pointer operations
(``domain.document_diff``). Secrets read as ``REDACTED``
(``schemas.tenant_config_secrets``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from dotmac.ticketing.schemas.events import Actor
from dotmac.ticketing.schemas.tenant_config_secrets import REDACTED


class SettingsChange(BaseModel):
    """One difference from the version before (RFC 6902-like)."""

    op: Literal["add", "remove", "replace"] = Field(
        description="add: the path did not exist before; remove: it does not"
        " exist any more; replace: its value changed."
    )
    path: str = Field(
        description="An RFC 6901 JSON pointer into the document, e.g."
        " `/teams/0/agents/1/capacity` (`~1` stands for `/`, `~0` for `~`)."
        " Lists are compared index by index: a longer list adds at its new"
        " indexes, a shorter one removes from its end."
    )
    value: Any = Field(
        default=None,
        description="The value after the change; absent for remove.",
    )
    previous: Any = Field(
        default=None,
        description="The value before the change; absent for add.",
    )


class SettingsHistoryEntry(BaseModel):
    """A version of the settings: who stored it, when, and what changed."""

    version: int = Field(ge=1, description="The settings version it made.")
    changed_at: datetime = Field(description="When it was stored.")
    changed_by: Actor = Field(
        description="Who stored it: a person (token subject and role) or an"
        " automation (`config-file`: the configuration file's seeding)."
    )
    correlation_id: str | None = Field(
        description="The request that stored it (X-Request-ID)."
    )
    changes: list[SettingsChange] = Field(
        description="What changed against the version before (version 1:"
        " against the defaults of a tenant without settings), in document"
        f' order. Secrets read as "{REDACTED}": a changed secret is a replace'
        " whose value and previous both read so."
    )


class SettingsHistoryPage(BaseModel):
    items: list[SettingsHistoryEntry] = Field(description="Newest first.")
    next_before_version: int | None = Field(
        description="Pass as `before_version` for the next, older page; null"
        " at the end."
    )
