"""The composition root: builds the object graph from configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from dotmac.ticketing.consumers.notification_tables import NOTIFICATION_DDL
from dotmac.ticketing.domain.builtin_workflows import BUILTIN_WORKFLOWS
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.projections.registry import BuildRegistry
from dotmac.ticketing.service.application import TicketApplication
from dotmac.ticketing.service.assignment import AssignmentDesk
from dotmac.ticketing.service.attachments import (
    BlobStore,
    DirectoryBlobStore,
    PostgresBlobStore,
)
from dotmac.ticketing.service.clock import Clock, clock_from_settings
from dotmac.ticketing.service.config_file import load_config_file
from dotmac.ticketing.service.database import eventsourcing_env
from dotmac.ticketing.service.numbers import TicketNumbers
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.tables import create_service_tables
from dotmac.ticketing.service.tenant_settings import TenantSettingsService
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.service.workflows import (
    WorkflowRegistry,
    WorkflowService,
    registry_with,
)


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

    def is_ready(self) -> bool:
        """Whether the database answers (for ``/ready``)."""
        try:
            with self.app.transaction() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            return False
        return True

    def close(self) -> None:
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
    (``{"database_url": ..., "snapshot_interval": 20}``).
    """
    settings = config if isinstance(config, Settings) else Settings(**(config or {}))
    if not settings.database_url:
        raise ValueError("initialize_ticketing needs a database_url")
    if clock is None:
        clock = clock_from_settings(settings)
    app = TicketApplication(
        eventsourcing_env(settings.database_url, pool_size=settings.db_pool_size),
        snapshot_interval=settings.snapshot_interval,
    )
    create_service_tables(app)
    with app.transaction() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ticketing-ddl'))")
        cursor.execute(NOTIFICATION_DDL)
    BuildRegistry(app.datastore).create_tables()
    blobs: BlobStore = (
        DirectoryBlobStore(settings.attachment_dir)
        if settings.attachment_dir
        else PostgresBlobStore(app)
    )
    settings_service = TenantSettingsService(
        app, clock=clock, retries=settings.command_retries
    )
    read_model = ReadModel(app.datastore)
    desk = AssignmentDesk(
        # Turn locks on their own few connections (see service.assignment).
        ConnectionPool(
            settings.database_url, min_size=0, max_size=4, open=True, name="turns"
        ),
        read_model,
    )
    tickets = TicketService(
        app,
        numbers=TicketNumbers(app),
        blobs=blobs,
        clock=clock,
        retries=settings.command_retries,
        settings=settings_service.get,
        desk=desk,
    )
    # Tenant settings documents of the config mapping or TICKETING_CONFIG file.
    seed = (
        config
        if isinstance(config, Mapping) and "tenants" in config
        else load_config_file(settings.config_path)
    )
    settings_service.seed_from_config(seed)
    return Ticketing(
        settings=settings,
        app=app,
        tickets=tickets,
        read_model=read_model,
        settings_service=settings_service,
        desk=desk,
        workflows=WorkflowService(
            tickets,
            # The built-ins, then those installed under the entry point group.
            workflows or registry_with(BUILTIN_WORKFLOWS),
        ),
    )
