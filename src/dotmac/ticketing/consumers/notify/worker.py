"""Running the notifier: the Kafka consumer and the dispatcher, side by side.

``ticketing worker notifier`` runs :func:`serve_notifier`; ``ticketing dev``
can run it on a thread with :func:`start_notifier`. One process holds one
connection pool: the consumer (event → ledger rows, one transaction per
record) and the dispatcher (ledger rows → e-mail, SMS, webhooks) share it.
Several processes may run at once: Kafka splits the partitions among the
consumers, and ``FOR UPDATE SKIP LOCKED`` splits the deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from psycopg.rows import dict_row

from dotmac.ticketing.consumers.kafka.consumer_loop import (
    ensure_service_topics,
    ticket_events_consumer,
    worker_pool,
)
from dotmac.ticketing.consumers.kafka.topics import NOTIFICATIONS_DLQ
from dotmac.ticketing.consumers.notify.channels import Channel
from dotmac.ticketing.consumers.notify.channels.email import EmailChannel
from dotmac.ticketing.consumers.notify.channels.sms import SmsChannel
from dotmac.ticketing.consumers.notify.channels.webhook import WebhookChannel
from dotmac.ticketing.consumers.notify.circuit_breaker import BreakerPolicy
from dotmac.ticketing.consumers.notify.delivery_lanes import Limits
from dotmac.ticketing.consumers.notify.directory import SettingsTenantDirectory
from dotmac.ticketing.consumers.notify.dispatcher import (
    Backoff,
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
from dotmac.ticketing.consumers.supervision import (
    RunningWorker,
    restarting,
    serve,
    start_in_thread,
    until_done,
)
from dotmac.ticketing.service.clock import Clock, clock_from_settings
from dotmac.ticketing.service.config_file import load_config_file, tenant_defaults
from dotmac.ticketing.service.satisfaction_links import link_secret
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.tenant_settings import TenantSettingsService
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env

log = structlog.get_logger(__name__)

RESTART_DELAY_MAX = 30.0


def delivery_limits(settings: Settings) -> Limits:
    return Limits(
        total=settings.delivery_concurrency,
        per_tenant_channel=settings.delivery_tenant_concurrency,
        per_lane=settings.delivery_endpoint_concurrency,
    )


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        threshold=settings.webhook_breaker_threshold,
        cooldown=timedelta(seconds=settings.webhook_breaker_cooldown_seconds),
    )


def satisfaction_links(settings: Settings) -> SatisfactionLinks | None:
    """How resolution mail signs rating links; None: the deployment has no key."""
    secret = link_secret(settings)
    if secret is None:
        log.warning(
            "no TICKETING_LINK_SECRET or TICKETING_JWT_SECRET:"
            " resolution e-mail carries no satisfaction links"
        )
        return None
    return SatisfactionLinks(secret, days=settings.satisfaction_link_days)


async def run_notifier(
    settings: Settings,
    stop: asyncio.Event,
    *,
    config: Mapping[str, Any] | None = None,
    directory: TenantDirectory | None = None,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> None:
    """Consume ticket events and dispatch their notifications until ``stop``.

    ``config`` is the tenant configuration (default: the ``TICKETING_CONFIG``
    file): the directory of agents and the tenants' template overrides.
    ``clock`` (default: the settings') says when held e-mail is due and
    webhook breakers cool down; it must be the clock the events are
    stamped with.
    """
    if not settings.database_url:
        raise ValueError("the notifier needs DATABASE_URL")
    if not settings.kafka_bootstrap_servers:
        raise ValueError("the notifier needs KAFKA_BOOTSTRAP_SERVERS")
    if config is None:
        config = load_config_file(settings.config_path)
    bootstrap = settings.kafka_bootstrap_servers
    # The consumer, the dispatcher's claim session and its two connections
    # recording outcomes, and one to spare.
    pool = worker_pool(
        settings.database_url, NOTIFIER_NAME, max_size=5, row_factory=dict_row
    )
    await pool.open()
    channels: dict[str, Channel] = {
        "email": EmailChannel.from_settings(settings),
        "sms": SmsChannel.from_settings(settings),
        "webhook": WebhookChannel.from_settings(settings),
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    # Tenant settings (teams, agents, supervisors) are read from the event
    # store through the synchronous application, off the event loop.
    app = await asyncio.to_thread(
        TicketApplication,
        eventsourcing_env(settings.database_url, pool_size=2),
        snapshot_interval=settings.snapshot_interval,
    )
    templates = NotificationTemplates(
        config,
        sandbox=TemplateSandbox(
            RenderBudget(
                seconds=settings.template_render_seconds,
                max_chars=settings.template_max_chars,
            )
        ),
    )
    try:
        await ensure_service_topics("notifier", settings, stop)
        await until_done("notifier", "dead-letter producer", producer.start, stop)
        notifier = Notifier(
            directory=directory
            or SettingsTenantDirectory(
                TenantSettingsService(app, defaults=tenant_defaults(config)).get,
                fallback=ConfigTenantDirectory(config),
            ),
            templates=templates,
            public_url=settings.public_url,
            reply_promises=EventStoreReplyPromises(app),
            satisfaction_links=satisfaction_links(settings),
        )
        consumer = ticket_events_consumer(
            settings,
            name=NOTIFIER_NAME,
            pool=pool,
            handler=notifier,
            dlq_topic=NOTIFICATIONS_DLQ,
        )
        dispatcher = Dispatcher(
            pool,
            channels,
            KafkaDeadLetters(producer, NOTIFICATIONS_DLQ),
            give_up_seconds={"webhook": settings.webhook_give_up_seconds},
            backoff=backoff,
            limits=delivery_limits(settings),
            breaker=breaker_policy(settings),
            # The channels' own timeouts end a send first; this is the backstop
            # (DNS resolution, say, is outside httpx's timeout).
            send_timeouts={"webhook": settings.webhook_timeout_seconds + 5},
            clock=clock or clock_from_settings(settings),
            listen_conninfo=settings.database_url,
        )
        log.info("notifier started", bootstrap_servers=bootstrap)
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


def serve_notifier(settings: Settings) -> None:
    """Run the notifier in this process until SIGTERM or Ctrl-C."""
    serve("notifier", settings, lambda stop: run_notifier(settings, stop))


def start_notifier(
    settings: Settings,
    *,
    config: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> RunningWorker:
    """The notifier on a daemon thread of this process (``ticketing dev``)."""
    return start_in_thread(
        "notifier",
        lambda stop: run_notifier(settings, stop, config=config, clock=clock),
        settings=settings,
    )
