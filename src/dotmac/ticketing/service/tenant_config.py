"""The tenant configuration's use cases: read, replace the whole document, seed.

The configuration is stored as a ``TenantSettings`` aggregate
(``domain.tenant_config_aggregate``) through the same
application as tickets. A tenant that stored nothing has the defaults at
version 0: the deployment's defaults (the top-level sections of the
configuration) when it has them, else the built-in ones. Every document
is validated by ``schemas.tenant_config`` (also the ones seeded from the
configuration file), so only valid, normalised documents are ever stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError

from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.tenant_config import parse_retention, parse_workflows
from dotmac.ticketing.domain.tenant_config_aggregate import (
    TenantSettings,
    default_settings_document,
    tenant_settings_id,
)
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument
from dotmac.ticketing.schemas.tenant_config_secrets import with_kept_passwords
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.clock import system_clock as utc_now
from dotmac.ticketing.service.concurrency import retry_on_conflict
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, PreconditionFailed
from dotmac.ticketing.service.tenant_config_history import TenantSettingsHistory
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.inbound_mail import record_tenant_mailboxes
from dotmac.ticketing.store.retention import record_tenant_retention

T = TypeVar("T")

#: The automation recorded on settings seeded from the configuration file.
CONFIG_SEEDER = "config-file"

#: A document read this recently is used without asking the store again; a
#: change made by another process is seen at most this much later.
SETTINGS_FRESHNESS = 0.5


@dataclass
class _Known:
    """A tenant's document as last read, and when its version was checked."""

    version: int
    document: dict[str, Any]
    checked: float


class TenantSettingsService:
    """Read, replace and seed tenant settings.

    ``workflow_types`` gives the installed workflow types (the registry's
    names, asked at each change so that types registered later count): a
    document naming another is refused, and so are ``defaults`` naming one
    (``ValueError``). Without it, types are not checked.

    Every create reads its tenant's settings, so documents are kept in the
    process: for ``freshness`` seconds as read, then until the stored
    version (one index lookup) says the document changed.

    ``history`` reads the past versions, with who stored each and what it
    changed (``service.tenant_config_history``).
    """

    def __init__(
        self,
        app: TicketApplication,
        *,
        clock: Clock = utc_now,
        retries: int = 5,
        defaults: dict[str, Any] | None = None,
        workflow_types: Callable[[], Collection[str]] | None = None,
        freshness: float = SETTINGS_FRESHNESS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._freshness = freshness
        self._monotonic = monotonic
        self._known: dict[str, _Known] = {}
        self._clock = clock
        self._retries = retries
        self._defaults = defaults or default_settings_document()
        self._workflow_types = workflow_types
        self.history = TenantSettingsHistory(app, defaults=self._defaults)
        try:
            # The deployment's defaults (the configuration's top-level
            # sections) run every tenant without settings: checked alike.
            self._check_workflow_types(self._defaults)
        except InvalidCommand as error:
            raise ValueError(str(error)) from error

    @property
    def defaults_erase(self) -> bool:
        """Whether the defaults (what a tenant without settings runs) erase
        closed tickets' data: then such tenants are swept too, though no
        settings replace of theirs listed them in ``retention_tenants``."""
        return parse_retention(self._defaults).erases

    def get(self, tenant_id: str) -> tuple[int, dict[str, Any]]:
        """``(version, document)``; the defaults at version 0 if none stored.

        The document is shared by every caller of this process: read it,
        copy it to change it.
        """
        now = self._monotonic()
        known = self._known.get(tenant_id)
        if known is not None and now - known.checked < self._freshness:
            return known.version, known.document
        if known is not None and self._stored_version(tenant_id) == known.version:
            known.checked = now
            return known.version, known.document
        settings = self._find(tenant_id)
        if settings is None:
            return self._remember(tenant_id, 0, self._defaults, now)
        return self._remember(tenant_id, settings.version, settings.document, now)

    def _remember(
        self, tenant_id: str, version: int, document: dict[str, Any], now: float
    ) -> tuple[int, dict[str, Any]]:
        self._known[tenant_id] = _Known(version, document, now)
        return version, document

    def _stored_version(self, tenant_id: str) -> int:
        return self._app.stored_version(tenant_settings_id(tenant_id))

    def replace(
        self,
        ctx: RequestContext,
        document: Mapping[str, Any] | TenantSettingsDocument,
        *,
        expected_version: int | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Store a whole new document (a no-op when it equals the current one).

        Raises ``pydantic.ValidationError`` for an invalid document,
        ``InvalidCommand`` naming the field of a workflow type nobody
        installed, and ``PreconditionFailed`` when ``expected_version`` is
        not current.
        """
        if not ctx.has_role("admin", "service"):
            raise PermissionDenied("configuration is for admins only")
        valid = (
            document
            if isinstance(document, TenantSettingsDocument)
            else TenantSettingsDocument.model_validate(dict(document))
        ).document()
        self._check_workflow_types(valid)

        def attempt() -> tuple[int, dict[str, Any]]:
            settings = self._find(ctx.tenant_id)
            version = 0 if settings is None else settings.version
            if expected_version is not None and version != expected_version:
                raise PreconditionFailed(expected_version, version)
            p, at = ctx.provenance(), self._clock()
            document = _with_passwords(valid, settings)
            if settings is None:
                if document == self._defaults:
                    return 0, document
                settings = TenantSettings.create(
                    tenant_id=ctx.tenant_id, document=document, provenance=p, at=at
                )
            elif not settings.replace(document, provenance=p, at=at):
                return settings.version, settings.document
            self._app.save_aggregates(settings)
            return settings.version, settings.document

        version, stored = self._with_retries(attempt)
        # Also after a no-op: a replace that stored the settings and then
        # lost this write is repaired by the client's retry.
        with self._app.transaction() as cur:
            record_tenant_mailboxes(
                cur, ctx.tenant_id, version, len(_mailbox_list(stored))
            )
            record_tenant_retention(
                cur, ctx.tenant_id, version, parse_retention(stored).erases
            )
        # This process's next read sees its own change at once.
        self._remember(ctx.tenant_id, version, stored, self._monotonic())
        return version, stored

    def seed_from_config(self, config: Mapping[str, Any]) -> dict[str, int]:
        """Apply ``config["tenants"][<id>]["settings"]`` documents, if any.

        Idempotent: a document equal to the stored one changes nothing, so
        every process may seed at start-up. Returns each seeded tenant's
        settings version. An invalid document raises ``ValueError`` naming
        the tenant (pydantic's ``ValidationError`` is one).
        """
        tenants = config.get("tenants") or {}
        if not isinstance(tenants, Mapping):
            raise ValueError("tenants: expected a mapping of tenant id to settings")
        versions: dict[str, int] = {}
        for tenant_id, tenant in tenants.items():
            if not isinstance(tenant, Mapping) or tenant.get("settings") is None:
                continue
            document = tenant["settings"]
            if not isinstance(document, Mapping):
                raise ValueError(f"tenants.{tenant_id}.settings: expected a mapping")
            ctx = RequestContext.for_automation(str(tenant_id), CONFIG_SEEDER)
            try:
                versions[str(tenant_id)], _ = self.replace(ctx, document)
            except InvalidCommand as error:
                raise ValueError(f"tenants.{tenant_id}.settings.{error}") from error
        return versions

    def _check_workflow_types(self, document: Mapping[str, Any]) -> None:
        """Refuse a workflow type nobody installed, instead of failing later
        (the runtime would log an error for each ticket and run nothing)."""
        if self._workflow_types is None:
            return
        installed = sorted(self._workflow_types())
        unknown = parse_workflows(document).unknown_types(installed)
        if unknown:
            field, kind = unknown[0]
            raise InvalidCommand(
                field,
                f"no workflow {kind!r} is installed (installed:"
                f" {', '.join(installed) or 'none'})",
            )

    def _find(self, tenant_id: str) -> TenantSettings | None:
        try:
            settings: TenantSettings = self._app.repository.get(
                tenant_settings_id(tenant_id)
            )
        except AggregateNotFoundError:
            return None
        return settings

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        return retry_on_conflict(attempt, retries=self._retries, what="settings")


def _with_passwords(
    document: dict[str, Any], stored: TenantSettings | None
) -> dict[str, Any]:
    """The document with the stored passwords of the mailboxes it keeps
    (write-only: a PUT need not send them again)."""
    kept, missing = with_kept_passwords(
        document, None if stored is None else stored.document
    )
    if missing:
        raise InvalidCommand(
            f"inbound_email.mailboxes.{missing[0]}.password",
            "a new mailbox needs its password",
        )
    return kept


def _mailbox_list(document: Mapping[str, Any]) -> list[Any]:
    section = document.get("inbound_email") or {}
    return list(section.get("mailboxes") or [])
