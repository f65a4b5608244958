"""Running the notifier: the Kafka consumer and the dispatcher, side by side.

The entry layer (``entry/processes.py``) builds a :class:`NotifierConfig`
and runs :func:`run_notifier` as ``ticketing worker notifier`` or on a
thread of ``ticketing dev``. One process holds one connection pool: the
consumer (event → ledger rows, one transaction per record) and the
dispatcher (ledger rows → e-mail, SMS, webhooks) share it. Several
processes may run at once: Kafka splits the partitions among the
consumers, and ``FOR UPDATE SKIP LOCKED`` splits the deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from psycopg.rows import dict_row

from dotmac.ticketing.consumers.kafka.consumer_loop import (
    TRANSACTION_BATCH,
    KafkaConfig,
    ensure_service_topics,
    ticket_events_consumer,
    worker_pool,
)
from dotmac.ticketing.consumers.kafka.topics import NOTIFICATIONS_DLQ
from dotmac.ticketing.consumers.notify.channels import Channel
from dotmac.ticketing.consumers.notify.circuit_breaker import BreakerPolicy
from dotmac.ticketing.consumers.notify.delivery_lanes import Limits
from dotmac.ticketing.consumers.notify.directory import SettingsTenantDirectory
from dotmac.ticketing.consumers.notify.dispatcher import (
    Dispatcher,
    KafkaDeadLetters,
)
from dotmac.ticketing.consumers.notify.notifier import (
    NOTIFIER_NAME,
    Notifier,
    SatisfactionLinks,
)
from dotmac.ticketing.consumers.notify.rendering import NotificationTemplates
from dotmac.ticketing.consumers.notify.reply_promises import EventStoreReplyPromises
from dotmac.ticketing.consumers.notify.rules import (
    ConfigTenantDirectory,
    TenantDirectory,
)
from dotmac.ticketing.consumers.notify.template_sandbox import (
    RenderBudget,
    TemplateSandbox,
)
from dotmac.ticketing.consumers.supervision import restarting, until_done
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.config_file import tenant_defaults
from dotmac.ticketing.service.tenant_config import TenantSettingsService
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NotifierConfig:
    """What the notifier is given (the entry layer reads it from the settings)."""

    database_url: str
    kafka: KafkaConfig
    # The tenant configuration (the directory of agents, template overrides),
    # read again at each start.
    tenant_config: Callable[[], Mapping[str, Any]]
    # Its channels, made anew at each start (each is closed at its end).
    channels: Callable[[], dict[str, Channel]]
    clock: Clock
    public_url: str
    snapshot_interval: int
    render_budget: RenderBudget
    limits: Limits
    breaker: BreakerPolicy
    satisfaction_links: SatisfactionLinks | None
    webhook_give_up_seconds: float
    webhook_timeout_seconds: float


async def run_notifier(
    notifier_config: NotifierConfig,
    stop: asyncio.Event,
    *,
    directory: TenantDirectory | None = None,
    backoff: Backoff | None = None,
) -> None:
    """Consume ticket events and dispatch their notifications until ``stop``.

    The clock says when held e-mail is due and webhook breakers cool down;
    it must be the clock the events are stamped with.
    """
    c = notifier_config
    config = c.tenant_config()
    # The consumer, the dispatcher's claim session and its two connections
    # recording outcomes, and one to spare.
    pool = worker_pool(c.database_url, NOTIFIER_NAME, max_size=5, row_factory=dict_row)
    await pool.open()
    channels = c.channels()
    producer = AIOKafkaProducer(
        bootstrap_servers=c.kafka.bootstrap_servers,
        acks="all",
        **c.kafka.security.client_options(),
    )
    # Tenant settings (teams, agents, supervisors) are read from the event
    # store through the synchronous application, off the event loop.
    app = await asyncio.to_thread(
        TicketApplication,
        eventsourcing_env(c.database_url, pool_size=2),
        snapshot_interval=c.snapshot_interval,
    )
    templates = NotificationTemplates(config, sandbox=TemplateSandbox(c.render_budget))
    try:
        await ensure_service_topics("notifier", c.kafka, stop)
        await until_done("notifier", "dead-letter producer", producer.start, stop)
        notifier = Notifier(
            directory=directory
            or SettingsTenantDirectory(
                TenantSettingsService(app, defaults=tenant_defaults(config)).get,
                fallback=ConfigTenantDirectory(config),
            ),
            templates=templates,
            public_url=c.public_url,
            reply_promises=EventStoreReplyPromises(app),
            satisfaction_links=c.satisfaction_links,
        )
        consumer = ticket_events_consumer(
            c.kafka,
            name=NOTIFIER_NAME,
            pool=pool,
            handler=notifier,
            dlq_topic=NOTIFICATIONS_DLQ,
            # Its effects are rows of its transaction (e-mail is sent later).
            batch_size=TRANSACTION_BATCH,
        )
        dispatcher = Dispatcher(
            pool,
            channels,
            KafkaDeadLetters(producer, NOTIFICATIONS_DLQ),
            give_up_seconds={"webhook": c.webhook_give_up_seconds},
            backoff=backoff,
            limits=c.limits,
            breaker=c.breaker,
            # The channels' own timeouts end a send first; this is the backstop
            # (DNS resolution, say, is outside httpx's timeout).
            send_timeouts={"webhook": c.webhook_timeout_seconds + 5},
            clock=c.clock,
            listen_conninfo=c.database_url,
        )
        log.info("notifier started", bootstrap_servers=c.kafka.bootstrap_servers)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(restarting("notifier", "consumer", consumer.run, stop))
            tasks.create_task(
                restarting("notifier", "dispatcher", dispatcher.run, stop)
            )
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        for channel in channels.values():
            await channel.aclose()
        await asyncio.to_thread(templates.close)
        await pool.close()
        await asyncio.to_thread(app.close)
        log.info("notifier stopped")
