"""The tenant settings' past: every version, who stored it, what it changed.

Every settings event carries the whole document
(``domain.tenant_config_aggregate``), so version N is the document of the
stream's event N, read without rebuilding the aggregate, and its changes
are the diff (``domain.document_diff``) against event N-1's document;
version 1's against version 0, the defaults of a tenant without settings
(the deployment's, as configured now). Nothing here shows a secret:
documents are shown, and changes take their values, through
``without_secrets``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dotmac.ticketing.domain.document_diff import (
    ABSENT,
    DocumentChange,
    diff_documents,
    value_at,
)
from dotmac.ticketing.domain.tenant_config_aggregate import (
    TenantSettings,
    tenant_settings_id,
)
from dotmac.ticketing.schemas.events import Actor
from dotmac.ticketing.schemas.tenant_config_history import (
    SettingsChange,
    SettingsHistoryEntry,
    SettingsHistoryPage,
)
from dotmac.ticketing.schemas.tenant_config_secrets import without_secrets
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, SettingsVersionNotFound
from dotmac.ticketing.store.application import TicketApplication

#: Entries of a history page unless asked for fewer or more, and at most.
HISTORY_LIMIT = 50
HISTORY_LIMIT_MAX = 200
#: The highest version a stream can have (versions are stored as bigint).
VERSION_MAX = 2**63 - 1

SettingsEvent = (
    TenantSettings.TenantSettingsCreated | TenantSettings.TenantSettingsChanged
)


class TenantSettingsHistory:
    """Read the caller's tenant's past settings (admins and services only)."""

    def __init__(self, app: TicketApplication, *, defaults: Mapping[str, Any]) -> None:
        self._app = app
        self._defaults = defaults

    def page(
        self,
        ctx: RequestContext,
        *,
        limit: int = HISTORY_LIMIT,
        before_version: int | None = None,
    ) -> SettingsHistoryPage:
        """Up to ``limit`` versions older than ``before_version`` (all if
        None), newest first, each with its changes."""
        _check_admin(ctx)
        if not 1 <= limit <= HISTORY_LIMIT_MAX:
            raise ValueError(f"limit must be 1 to {HISTORY_LIMIT_MAX}")
        upto = None if before_version is None else before_version - 1
        # One more than the page: the oldest entry's previous document.
        events = self._events(ctx.tenant_id, lte=upto, limit=limit + 1)
        shown = events[:limit]
        previous: list[Mapping[str, Any]] = [event.document for event in events[1:]]
        if len(previous) < len(shown):
            # The page reaches version 1, whose previous is version 0.
            previous.append(self._defaults)
        items = [
            _entry(event, before) for event, before in zip(shown, previous, strict=True)
        ]
        # Versions are numbered from 1 without gaps: older ones exist
        # exactly when the oldest entry is not version 1.
        oldest = items[-1].version if items else 1
        return SettingsHistoryPage(
            items=items, next_before_version=oldest if oldest > 1 else None
        )

    def document_at(self, ctx: RequestContext, version: int) -> dict[str, Any]:
        """The document as version ``version`` stored it, its secrets redacted.

        Raises ``SettingsVersionNotFound`` when the tenant's settings never
        had that version.
        """
        _check_admin(ctx)
        events = self._events(ctx.tenant_id, lte=version, limit=1)
        # The newest version up to the one asked for: that one, if it exists
        # (no gaps), else the current one.
        current = events[0].originator_version if events else 0
        if current != version:
            raise SettingsVersionNotFound(version, current)
        return without_secrets(events[0].document)

    def _events(
        self, tenant_id: str, *, lte: int | None, limit: int
    ) -> list[SettingsEvent]:
        """Up to ``limit`` events up to version ``lte``, newest first."""
        stream = self._app.events.get(
            tenant_settings_id(tenant_id), lte=lte, desc=True, limit=limit
        )
        return [e for e in stream if isinstance(e, SettingsEvent)]


def _check_admin(ctx: RequestContext) -> None:
    # The history names who changed what: as private as the settings.
    if not ctx.has_role("admin", "service"):
        raise PermissionDenied("configuration is for admins only")


def _entry(event: SettingsEvent, previous: Mapping[str, Any]) -> SettingsHistoryEntry:
    document = event.document
    return SettingsHistoryEntry(
        version=event.originator_version,
        changed_at=event.timestamp,
        changed_by=Actor.model_validate(event.actor),
        correlation_id=event.correlation_id,
        changes=_shown(
            diff_documents(previous, document),
            before=without_secrets(previous),
            after=without_secrets(document),
        ),
    )


def _shown(
    changes: Sequence[DocumentChange],
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> list[SettingsChange]:
    """The changes of the real documents, with the values of the redacted
    ones: a changed secret shows where it changed, never what it was.

    Redaction keeps every path, so each change's values are found there.
    """
    shown = []
    for change in changes:
        fields: dict[str, Any] = {"op": change.op, "path": change.path}
        if change.value is not ABSENT:
            fields["value"] = value_at(after, change.parts)
        if change.previous is not ABSENT:
            fields["previous"] = value_at(before, change.parts)
        # Only the sides the change has are set: the answer leaves out
        # the others (the route excludes unset fields).
        shown.append(SettingsChange(**fields))
    return shown
