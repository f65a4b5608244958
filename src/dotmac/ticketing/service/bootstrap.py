"""The composition root: builds the object graph from configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from psycopg_pool import ConnectionPool

from dotmac.ticketing.domain.builtin_workflows import BUILTIN_WORKFLOWS
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument
from dotmac.ticketing.service.assignment import AssignmentDesk
from dotmac.ticketing.service.attachments import (
    BlobStore,
    DirectoryBlobStore,
    PostgresBlobStore,
    SealedBlobs,
)
from dotmac.ticketing.service.bulk import BulkJobs, CommandExecutor, MacroExecutor
from dotmac.ticketing.service.clock import Clock, clock_from_settings
from dotmac.ticketing.service.config_file import (
    TENANTS_KEY,
    load_config_file,
    tenant_defaults,
)
from dotmac.ticketing.service.customers import CustomerDirectory
from dotmac.ticketing.service.inbound_mail import InboundMail
from dotmac.ticketing.service.macros import MacroService
from dotmac.ticketing.service.numbers import TicketNumbers
from dotmac.ticketing.service.privacy import PrivacyService
from dotmac.ticketing.service.satisfaction import SatisfactionByLink
from dotmac.ticketing.service.satisfaction_links import link_secret
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.simulations import SimulationService
from dotmac.ticketing.service.tenant_config import TenantSettingsService
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.service.triggers import TriggerService
from dotmac.ticketing.service.views import SavedViews
from dotmac.ticketing.service.workflows import (
    WorkflowRegistry,
    WorkflowService,
    registry_with,
)
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env
from dotmac.ticketing.store.schema_migrations import require_current_schema

# The names a config mapping may use besides the tenant settings sections.
SETTINGS_KEYS = frozenset(
    {
        *Settings.model_fields,
        *(f.validation_alias for f in Settings.model_fields.values()),
    }
    - {None}
)


def check_config_keys(config: Mapping[str, Any]) -> None:
    """Refuse a config mapping key that nothing reads (a typo is not ignored)."""
    known = SETTINGS_KEYS | set(TenantSettingsDocument.model_fields) | {TENANTS_KEY}
    unknown = sorted(str(key) for key in config if key not in known)
    if unknown:
        raise ValueError(f"unknown configuration keys: {', '.join(unknown)}")


#: How long /ready waits for a connection before it says "not ready".
READY_WAIT_SECONDS = 1.0


@dataclass
class Ticketing:
    """The running write side: the application and the use cases over it."""

    settings: Settings
    app: TicketApplication
    tickets: TicketService
    read_model: ReadModel
    settings_service: TenantSettingsService
    desk: AssignmentDesk
    workflows: WorkflowService
    satisfaction: SatisfactionByLink
    inbound: InboundMail
    privacy: PrivacyService
    bulk: BulkJobs
    simulations: SimulationService
    views: SavedViews
    macros: MacroService
    triggers: TriggerService

    def is_ready(self) -> bool:
        """Whether the database answers within a second (for ``/ready``)."""
        try:
            with self.app.datastore.pool.connection(timeout=READY_WAIT_SECONDS) as conn:
                conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    def close(self) -> None:
        self.simulations.close()
        self.desk.close()
        self.app.close()


def initialize_ticketing(
    config: Settings | Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    workflows: WorkflowRegistry | None = None,
) -> Ticketing:
    """Build the ticketing core from settings (or a mapping of them).

    A mapping uses the field names of :class:`Settings`
    (``{"database_url": ..., "snapshot_interval": 20}``), and may carry the
    configuration document's keys too (see ``service.config_file``): tenant
    settings sections at the top level (``sla_config``, ``assignment_rules``,
    ``escalation_rules``, …: the defaults of every tenant without settings of
    its own) and ``tenants``. Without them, the ``TICKETING_CONFIG`` file's.
    A key that is none of these raises ``ValueError`` naming it.

    The database must be migrated (``ticketing db migrate``): otherwise
    ``SchemaBehind`` is raised, naming the command, and nothing is built.
    """
    if isinstance(config, Mapping):
        check_config_keys(config)
    settings = (
        config
        if isinstance(config, Settings)
        else Settings(**{k: v for k, v in (config or {}).items() if k in SETTINGS_KEYS})
    )
    if not settings.database_url:
        raise ValueError("initialize_ticketing needs a database_url")
    require_current_schema(settings.database_url)
    if clock is None:
        clock = clock_from_settings(settings)
    app = TicketApplication(
        eventsourcing_env(
            settings.database_url,
            pool_size=settings.db_pool_size,
            wait_seconds=settings.db_wait_seconds,
        ),
        snapshot_interval=settings.snapshot_interval,
        seal_personal_data=settings.seal_personal_data,
        key_cache_seconds=settings.key_cache_seconds,
    )
    blobs: BlobStore = SealedBlobs(
        DirectoryBlobStore(settings.attachment_dir)
        if settings.attachment_dir
        else PostgresBlobStore(app),
        app.keys,
        sealing=settings.seal_personal_data,
    )
    # Tenant settings documents and defaults of the config mapping, or of
    # the TICKETING_CONFIG file.
    seed = (
        config
        if isinstance(config, Mapping) and set(config) - SETTINGS_KEYS
        else load_config_file(settings.config_path)
    )
    # The built-ins, then those installed under the entry point group.
    registry = workflows or registry_with(BUILTIN_WORKFLOWS)
    settings_service = TenantSettingsService(
        app,
        clock=clock,
        retries=settings.command_retries,
        defaults=tenant_defaults(seed),
        # Settings naming a workflow nobody installed are refused (422).
        workflow_types=registry.names,
    )
    read_model = ReadModel(app.datastore)
    desk = AssignmentDesk(
        # Turn locks on their own few connections (see service.assignment).
        ConnectionPool(
            settings.database_url, min_size=0, max_size=4, open=True, name="turns"
        ),
    )
    tickets = TicketService(
        app,
        numbers=TicketNumbers(app),
        blobs=blobs,
        clock=clock,
        retries=settings.command_retries,
        settings=settings_service.get,
        desk=desk,
        customers=CustomerDirectory(read_model, app.head_position),
    )
    settings_service.seed_from_config(seed)
    simulations = SimulationService(app, read_model, clock)
    # Those whose process died meanwhile (their lease expired) fail now.
    simulations.fail_expired()
    macros = MacroService(tickets, app.datastore)
    return Ticketing(
        settings=settings,
        app=app,
        tickets=tickets,
        read_model=read_model,
        settings_service=settings_service,
        desk=desk,
        workflows=WorkflowService(tickets, registry),
        satisfaction=SatisfactionByLink(
            tickets, secret=link_secret(settings), clock=clock
        ),
        inbound=InboundMail(
            tickets,
            app,
            own_addresses=[parseaddr(settings.smtp_from)[1]],
            attachment_max_bytes=settings.attachment_max_bytes,
            clock=clock,
        ),
        privacy=PrivacyService(
            app, tickets=tickets, read_model=read_model, blobs=blobs, clock=clock
        ),
        bulk=BulkJobs(
            app, read_model, [CommandExecutor(tickets), MacroExecutor(macros)]
        ),
        simulations=simulations,
        views=SavedViews(
            app.datastore,
            read_model,
            lambda tenant_id: tickets.tenant_config(tenant_id)[1],
            clock,
        ),
        macros=macros,
        triggers=TriggerService(tickets, macros, app.datastore),
    )
