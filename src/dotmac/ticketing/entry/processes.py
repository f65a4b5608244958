"""The composition root: every process is built here from the settings.

The API (``ticketing api``), each worker (``ticketing worker <name>``),
``ticketing dev``'s set of them, and the tests' ``start_*`` helpers: this
module is the one place that reads :class:`Settings` for them and hands
each adapter the values it needs (a :class:`KafkaConfig`, a worker's
``*Config``, a :class:`Supervision`). The workers run under the
supervisor (``consumers/supervision.py``: restarts with back-off, a
heartbeat for ``/ready``), as the process or on a daemon thread.

Each worker's configuration is built when the worker (re)starts, inside
its supervision: a missing setting is reported like any start-up failure,
and the tenant configuration file is read anew.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from eventsourcing.domain import Aggregate
from prometheus_client import Gauge, start_http_server

from dotmac.ticketing.projections.analytics import (
    point_analytics_views,
    repoint_analytics_views,
)
from dotmac.ticketing.projections.status import projection_statuses
from dotmac.ticketing.projections.worker import ProjectionWorker
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.clock import Clock, clock_from_settings
from dotmac.ticketing.service.config_file import load_config_file
from dotmac.ticketing.service.satisfaction_links import link_secret
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.workflows import WorkflowRegistry
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.database import eventsourcing_env

if TYPE_CHECKING:  # the Kafka side is imported by the processes that run it
    from fastapi import FastAPI

    from dotmac.ticketing.consumers.kafka.consumer_loop import KafkaConfig
    from dotmac.ticketing.consumers.kafka.security import KafkaSecurity
    from dotmac.ticketing.consumers.mail_in.worker import MailInConfig
    from dotmac.ticketing.consumers.notify.channels import Channel
    from dotmac.ticketing.consumers.notify.channels.email import EmailChannel
    from dotmac.ticketing.consumers.notify.channels.sms import SmsChannel
    from dotmac.ticketing.consumers.notify.channels.webhook import WebhookChannel
    from dotmac.ticketing.consumers.notify.notifier import SatisfactionLinks
    from dotmac.ticketing.consumers.notify.worker import NotifierConfig
    from dotmac.ticketing.consumers.relay import Relay
    from dotmac.ticketing.consumers.supervision import Part, RunningWorker, Supervision
    from dotmac.ticketing.consumers.timers.worker import TimersConfig
    from dotmac.ticketing.consumers.workflows.worker import WorkflowsConfig

log = structlog.get_logger(__name__)

# Set with each heartbeat's lag probe (every few seconds).
PROJECTION_LAG_EVENTS = Gauge(
    "ticketing_projection_lag_events",
    "Events in the log the projection has not applied yet.",
    ("projection",),
)
PROJECTION_LAG_SECONDS = Gauge(
    "ticketing_projection_lag_seconds",
    "Age of the oldest event the projection has not applied yet (0: none).",
    ("projection",),
)
RELAY_LAG_EVENTS = Gauge(
    "ticketing_relay_lag_events",
    "Events in the log the relay has not published to Kafka yet.",
)

# The relay's tracking table is ``relay_tracking``.
RELAY_TRACKING = "relay"


# ----------------------------------------------------------------------
# Settings → the values the layers below take


def supervision(settings: Settings) -> Supervision:
    """How the settings' workers restart and beat (a heartbeat with a database)."""
    from dotmac.ticketing.consumers.supervision import Supervision

    return Supervision(
        backoff=Backoff(
            initial=settings.worker_restart_initial_seconds,
            maximum=max(settings.worker_restart_max_seconds, 0.01),
        ),
        heartbeat_url=settings.database_url,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
    )


def settings_environment(values: Mapping[str, Any]) -> dict[str, str]:
    """Settings fields (``{"database_url": ...}``) as the environment
    variables that set them, for a child process's environment."""
    environment = {}
    for name, value in values.items():
        variable = Settings.model_fields[name].validation_alias
        assert isinstance(variable, str)
        if isinstance(value, bool):
            environment[variable] = "true" if value else "false"
        elif value is not None:
            environment[variable] = str(value)
    return environment


def database_url(settings: Settings, who: str) -> str:
    if not settings.database_url:
        raise ValueError(f"{who} needs DATABASE_URL")
    return settings.database_url


def kafka_config(settings: Settings, who: str) -> KafkaConfig:
    from dotmac.ticketing.consumers.kafka.consumer_loop import KafkaConfig
    from dotmac.ticketing.service.span_export import SpanSampling

    if not settings.kafka_bootstrap_servers:
        raise ValueError(f"{who} needs KAFKA_BOOTSTRAP_SERVERS")
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        partitions=settings.kafka_partitions,
        recreate_mismatched_topics=settings.kafka_recreate_mismatched_topics,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        otlp_endpoint=settings.otlp_endpoint,
        span_sampling=SpanSampling(*settings.trace_sampler),
        security=kafka_security(settings),
    )


def kafka_security(settings: Settings) -> KafkaSecurity:
    """The Kafka clients' TLS / SASL, from the settings."""
    from dotmac.ticketing.consumers.kafka.security import KafkaSecurity

    return KafkaSecurity(
        protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
    )


def write_side(
    settings: Settings,
    *,
    clock: Clock,
    pool_size: int | None = None,
    workflows: WorkflowRegistry | None = None,
) -> Callable[[], Ticketing]:
    """Builds the write side, its event-store pool at most ``pool_size``."""
    if pool_size is not None:
        settings = settings.model_copy(
            update={"db_pool_size": min(settings.db_pool_size, pool_size)}
        )
    return lambda: initialize_ticketing(settings, clock=clock, workflows=workflows)


# ----------------------------------------------------------------------
# The API


def api_app(settings: Settings) -> tuple[FastAPI, Ticketing]:
    """The API over a write side of its own (close the ``Ticketing``)."""
    from dotmac.ticketing.service.api.app import create_app

    # Built here rather than by create_app so that the API runs on the same
    # clock as the timers (TICKETING_CLOCK_FILE, a testing and demo aid).
    core = initialize_ticketing(settings, clock=clock_from_settings(settings))
    return create_app(settings, ticketing=core), core


# The import string of :func:`api_from_environment`, for uvicorn's workers.
API_FACTORY = f"{__name__}:api_from_environment"


def api_from_environment() -> FastAPI:
    """The API of one of ``ticketing api --workers N``'s processes.

    uvicorn starts each worker process afresh (spawned, nothing inherited),
    so the process builds its settings, its logging and its write side
    (its own pool) from the environment, as ``ticketing api`` checked it.
    The app owns that write side and closes it when the server stops.
    """
    from dotmac.ticketing.service.api.app import create_app
    from dotmac.ticketing.service.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level, process="api")
    # create_app builds it on the settings' clock (TICKETING_CLOCK_FILE), as
    # api_app does.
    return create_app(settings)


# ----------------------------------------------------------------------
# The notifier


def email_channel(settings: Settings) -> EmailChannel:
    from dotmac.ticketing.consumers.notify.channels.email import (
        EmailChannel,
        SmtpConfig,
    )

    if not settings.smtp_host:
        return EmailChannel(
            None, sender=settings.smtp_from, domain=settings.mail_domain
        )
    return EmailChannel(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        ),
        domain=settings.mail_domain,
    )


def sms_channel(settings: Settings) -> SmsChannel:
    from dotmac.ticketing.consumers.notify.channels.sms import SmsChannel

    return SmsChannel(
        settings.sms_url,
        user=settings.sms_user,
        password=settings.sms_password,
        sender=settings.sms_from,
    )


def webhook_channel(settings: Settings) -> WebhookChannel:
    from dotmac.ticketing.consumers.notify.channels.webhook import WebhookChannel

    seconds = settings.webhook_timeout_seconds
    return WebhookChannel(
        allow_private=settings.webhook_allow_private,
        timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)),
        max_connections=settings.delivery_concurrency,
    )


def notifier_channels(settings: Settings) -> dict[str, Channel]:
    return {
        "email": email_channel(settings),
        "sms": sms_channel(settings),
        "webhook": webhook_channel(settings),
    }


def satisfaction_links(settings: Settings) -> SatisfactionLinks | None:
    """How resolution mail signs rating links; None: the deployment has no key."""
    from dotmac.ticketing.consumers.notify.notifier import SatisfactionLinks

    secret = link_secret(settings)
    if secret is None:
        log.warning(
            "no TICKETING_LINK_SECRET or TICKETING_JWT_SECRET:"
            " resolution e-mail carries no satisfaction links"
        )
        return None
    return SatisfactionLinks(secret, days=settings.satisfaction_link_days)


def notifier_config(
    settings: Settings,
    *,
    config: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> NotifierConfig:
    """``config``: the tenant configuration (default: the ``TICKETING_CONFIG`` file).

    ``clock`` defaults to the settings'.
    """
    from dotmac.ticketing.consumers.notify.circuit_breaker import BreakerPolicy
    from dotmac.ticketing.consumers.notify.delivery_lanes import Limits
    from dotmac.ticketing.consumers.notify.template_sandbox import RenderBudget
    from dotmac.ticketing.consumers.notify.worker import NotifierConfig

    return NotifierConfig(
        database_url=database_url(settings, "the notifier"),
        kafka=kafka_config(settings, "the notifier"),
        tenant_config=(
            (lambda: config)
            if config is not None
            else (lambda: load_config_file(settings.config_path))
        ),
        channels=lambda: notifier_channels(settings),
        clock=clock or clock_from_settings(settings),
        public_url=settings.public_url,
        snapshot_interval=settings.snapshot_interval,
        render_budget=RenderBudget(
            seconds=settings.template_render_seconds,
            max_chars=settings.template_max_chars,
        ),
        limits=Limits(
            total=settings.delivery_concurrency,
            per_tenant_channel=settings.delivery_tenant_concurrency,
            per_lane=settings.delivery_endpoint_concurrency,
        ),
        breaker=BreakerPolicy(
            threshold=settings.webhook_breaker_threshold,
            cooldown=timedelta(seconds=settings.webhook_breaker_cooldown_seconds),
        ),
        satisfaction_links=satisfaction_links(settings),
        webhook_give_up_seconds=settings.webhook_give_up_seconds,
        webhook_timeout_seconds=settings.webhook_timeout_seconds,
    )


def notifier_main(
    settings: Settings,
    *,
    config: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> Part:
    from dotmac.ticketing.consumers.notify.worker import run_notifier

    return lambda stop: run_notifier(
        notifier_config(settings, config=config, clock=clock), stop
    )


def start_notifier(
    settings: Settings,
    *,
    config: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> RunningWorker:
    """The notifier on a daemon thread of this process (``ticketing dev``)."""
    return _start(
        "notifier", settings, notifier_main(settings, config=config, clock=clock)
    )


# ----------------------------------------------------------------------
# The timers and the workflows


def timers_config(settings: Settings, *, clock: Clock | None = None) -> TimersConfig:
    """``clock`` defaults to ``TICKETING_CLOCK_FILE`` or the real time; the
    firing loop and the commands it issues share it."""
    from dotmac.ticketing.consumers.timers.worker import (
        TIMERS_DB_POOL_SIZE,
        TimersConfig,
    )

    url = database_url(settings, "the timers")
    kafka = kafka_config(settings, "the timers")
    clock = clock or clock_from_settings(settings)
    return TimersConfig(
        database_url=url,
        kafka=kafka,
        clock=clock,
        ticketing=write_side(settings, clock=clock, pool_size=TIMERS_DB_POOL_SIZE),
        poll_interval=settings.timers_poll_interval,
    )


def timers_main(settings: Settings, *, clock: Clock | None = None) -> Part:
    from dotmac.ticketing.consumers.timers.worker import run_timers

    return lambda stop: run_timers(timers_config(settings, clock=clock), stop)


def start_timers(settings: Settings, *, clock: Clock | None = None) -> RunningWorker:
    """Start the timers on a daemon thread (``ticketing dev``, tests)."""
    return _start("timers", settings, timers_main(settings, clock=clock))


def workflows_config(
    settings: Settings,
    *,
    clock: Clock | None = None,
    workflows: WorkflowRegistry | None = None,
) -> WorkflowsConfig:
    """``workflows`` replaces the default registry (the built-ins and the
    installed entry points), e.g. with workflows registered in code."""
    from dotmac.ticketing.consumers.workflows.worker import (
        WORKFLOWS_DB_POOL_SIZE,
        WorkflowsConfig,
    )

    url = database_url(settings, "the workflows")
    kafka = kafka_config(settings, "the workflows")
    clock = clock or clock_from_settings(settings)
    return WorkflowsConfig(
        database_url=url,
        kafka=kafka,
        clock=clock,
        ticketing=write_side(
            settings, clock=clock, pool_size=WORKFLOWS_DB_POOL_SIZE, workflows=workflows
        ),
        integrations_allow_private=settings.integrations_allow_private,
    )


def workflows_main(
    settings: Settings,
    *,
    clock: Clock | None = None,
    workflows: WorkflowRegistry | None = None,
) -> Part:
    from dotmac.ticketing.consumers.workflows.worker import run_workflows

    return lambda stop: run_workflows(
        workflows_config(settings, clock=clock, workflows=workflows), stop
    )


def start_workflows(
    settings: Settings,
    *,
    clock: Clock | None = None,
    workflows: WorkflowRegistry | None = None,
) -> RunningWorker:
    """Start the workflow runtime on a daemon thread (``ticketing dev``, tests)."""
    return _start(
        "workflows",
        settings,
        workflows_main(settings, clock=clock, workflows=workflows),
    )


# ----------------------------------------------------------------------
# Inbound e-mail


def mail_in_config(settings: Settings, *, clock: Clock | None = None) -> MailInConfig:
    from dotmac.ticketing.consumers.mail_in.worker import MailInConfig

    database_url(settings, "the mail-in worker")
    clock = clock or clock_from_settings(settings)
    return MailInConfig(
        ticketing=write_side(settings, clock=clock, pool_size=4),
        idle_seconds=settings.mail_in_idle_seconds,
        poll_seconds=settings.mail_in_poll_seconds,
        ca_file=settings.mail_in_ca_file,
        allow_private=settings.mail_in_allow_private,
    )


def mail_in_main(settings: Settings, *, clock: Clock | None = None) -> Part:
    from dotmac.ticketing.consumers.mail_in.worker import run_mail_in

    return lambda stop: run_mail_in(mail_in_config(settings, clock=clock), stop)


def start_mail_in(settings: Settings, *, clock: Clock | None = None) -> RunningWorker:
    """Start the mail-in worker on a daemon thread (tests)."""
    return _start("mail-in", settings, mail_in_main(settings, clock=clock))


# ----------------------------------------------------------------------
# The relay


def service_consumer_groups() -> tuple[str, ...]:
    """The service's consumer groups of the ticket topic: after the broker
    lost the topic the relay republishes what any of them has not applied."""
    from dotmac.ticketing.consumers.notify.notifier import NOTIFIER_NAME
    from dotmac.ticketing.consumers.timers.triggers import TRIGGERS_NAME
    from dotmac.ticketing.consumers.timers.worker import TIMERS_NAME
    from dotmac.ticketing.consumers.workflows.worker import WORKFLOWS_NAME

    return (NOTIFIER_NAME, TIMERS_NAME, TRIGGERS_NAME, WORKFLOWS_NAME)


def build_relay(settings: Settings, **options: Any) -> Relay:
    """A relay over the configured database and brokers (call ``close_relay``).

    ``options`` are passed to :class:`Relay` (tests shorten its timeouts).
    """
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.postgres import PostgresTrackingRecorder
    from eventsourcing.utils import Environment

    from dotmac.ticketing.consumers.relay import Relay

    url = database_url(settings, "the relay")
    kafka = kafka_config(settings, "the relay")
    # Reads the log: one LISTEN connection, one for reads, one spare.
    app = TicketApplication(eventsourcing_env(url, pool_size=3))
    try:
        # The position, and the advisory lock's connection.
        tracking_env = eventsourcing_env(url, pool_size=2)
        factory = InfrastructureFactory.construct(
            Environment(RELAY_TRACKING, tracking_env)
        )
        tracking = factory.tracking_recorder()
    except BaseException:
        app.close()
        raise
    assert isinstance(tracking, PostgresTrackingRecorder)
    options.setdefault("partitions", kafka.partitions)
    options.setdefault("consumer_groups", service_consumer_groups())
    options.setdefault("recreate_mismatched_topics", kafka.recreate_mismatched_topics)
    options.setdefault("security", kafka.security)
    return Relay(app, tracking, kafka.bootstrap_servers, **options)


def close_relay(relay: Relay) -> None:
    try:
        relay.app.close()
    finally:
        relay.tracking.datastore.close()


def relay_lag(relay: Relay) -> int:
    """Log positions the relay has not published yet (also on /metrics)."""
    head = relay.app.head_position()
    lag = max(head - (relay.tracking.max_tracking_id(relay.app.name) or 0), 0)
    RELAY_LAG_EVENTS.set(lag)
    return lag


async def relay_main(relay: Relay, stop: asyncio.Event) -> None:
    """Run a built relay until ``stop`` (its loop waits on a thread's event)."""
    from dotmac.ticketing.consumers.supervision import current_health

    health = current_health()
    if health is not None:
        health.watch_lag("relay", lambda: asyncio.to_thread(relay_lag, relay))
    thread_stop = threading.Event()
    watcher = asyncio.ensure_future(stop.wait())
    watcher.add_done_callback(lambda _: thread_stop.set())
    try:
        await relay.run(thread_stop)
    finally:
        watcher.cancel()
        if health is not None:
            health.unwatch_lag("relay")


async def run_relay(settings: Settings, stop: asyncio.Event, **options: Any) -> None:
    """Build the relay and run it until ``stop`` (``ticketing worker relay``)."""
    relay = await asyncio.to_thread(build_relay, settings, **options)
    try:
        await relay_main(relay, stop)
    finally:
        await asyncio.to_thread(close_relay, relay)


@dataclass
class RunningRelay:
    """The relay on a thread of this process, and how to stop it."""

    worker: RunningWorker
    relay: Relay

    def stop(self, timeout: float = 10.0) -> None:
        self.worker.stop(timeout)
        if not self.worker.thread.is_alive():
            close_relay(self.relay)


def start_relay(settings: Settings, **options: Any) -> RunningRelay:
    """Start the relay on a daemon thread (``ticketing dev``, tests)."""
    relay = build_relay(settings, **options)
    worker = _start("relay", settings, lambda stop: relay_main(relay, stop))
    return RunningRelay(worker=worker, relay=relay)


# ----------------------------------------------------------------------
# The projections


def projection_worker(
    settings: Settings, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[ProjectionWorker, TicketApplication]:
    """The projection worker over the configured database.

    Run under the supervisor (``ticketing worker projections``) or directly
    (``ticketing projections rebuild``).
    """
    assert settings.database_url is not None
    env = eventsourcing_env(settings.database_url, pool_size=2)
    # Its own small pool: the advisory-lock connection and registry reads.
    app = TicketApplication(env)
    # A build swapped in by an older version may have no analysts' views yet.
    repoint_analytics_views(app.datastore)
    worker = ProjectionWorker(
        env,
        datastore=app.datastore,
        # Analysts' views follow every swap, in the swap's own transaction.
        on_swap=point_analytics_views,
        on_progress=on_progress,
    )
    return worker, app


def projection_lag(app: TicketApplication) -> int:
    """Log positions the live tickets projection has not applied yet.

    Also on /metrics, with the age of the oldest event it has not applied.
    """
    (tickets,) = projection_statuses(app.datastore)
    PROJECTION_LAG_EVENTS.labels(tickets.name).set(tickets.lag)
    PROJECTION_LAG_SECONDS.labels(tickets.name).set(
        _age_of_event_after(app, tickets.position) if tickets.lag else 0.0
    )
    return tickets.lag


def _age_of_event_after(app: TicketApplication, position: int) -> float:
    """Seconds since the first event after ``position`` happened (0: none)."""
    after = app.recorder.select_notifications(
        start=position, limit=1, inclusive_of_start=False
    )
    if not after:
        return 0.0
    event = app.mapper.to_domain_event(after[0])
    # Every event of this store is an Aggregate.Event, which has one.
    assert isinstance(event, Aggregate.Event)
    happened = event.timestamp
    return max((datetime.now(UTC) - happened).total_seconds(), 0.0)


async def run_projections(settings: Settings, stop: asyncio.Event) -> None:
    """The projection worker until ``stop`` (``ticketing worker projections``)."""
    from dotmac.ticketing.consumers.supervision import blocking, current_health

    worker, app = await asyncio.to_thread(projection_worker, settings)
    health = current_health()
    if health is not None:
        health.watch_lag("projections", lambda: asyncio.to_thread(projection_lag, app))
    try:
        await blocking(worker.run, stop)
    finally:
        if health is not None:
            health.unwatch_lag("projections")
        await asyncio.to_thread(app.close)


def start_projection_worker(settings: Settings) -> RunningWorker:
    """Start the projection worker on a daemon thread (``ticketing dev``, tests)."""
    return _start("projections", settings, lambda stop: run_projections(settings, stop))


# ----------------------------------------------------------------------
# Every worker, as the process or as ``ticketing dev``'s set


def worker_main(name: str, settings: Settings) -> Part:
    """The worker ``name`` (one of ``WORKER_NAMES``) as the settings configure it."""
    mains: dict[str, Callable[[], Part]] = {
        "projections": lambda: lambda stop: run_projections(settings, stop),
        "relay": lambda: lambda stop: run_relay(settings, stop),
        "notifier": lambda: notifier_main(settings),
        "timers": lambda: timers_main(settings),
        "workflows": lambda: workflows_main(settings),
        "mail-in": lambda: mail_in_main(settings),
    }
    return mains[name]()


def serve_worker(name: str, settings: Settings) -> None:
    """Run the worker ``name`` as this process until SIGTERM or Ctrl-C.

    On SIGTERM the work in flight is finished (or abandoned unrecorded).
    """
    from dotmac.ticketing.consumers.supervision import serve

    if settings.metrics:
        serve_metrics(name, settings.host, settings.metrics_port)
    serve(name, supervision(settings), worker_main(name, settings))


def serve_metrics(name: str, host: str, port: int) -> None:
    """Prometheus metrics of this worker process on ``host:port`` (0: none).

    A port taken (another process on this host has it) is logged and the
    worker runs without: metrics are not worth refusing to work for.
    """
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as error:
        log.warning(
            "metrics port unavailable; serving no metrics",
            worker=name,
            port=port,
            error=str(error),
        )
        return
    log.info("metrics served", worker=name, url=f"http://{host}:{port}/metrics")


def _start(name: str, settings: Settings, main: Part) -> RunningWorker:
    from dotmac.ticketing.consumers.supervision import start_in_thread

    return start_in_thread(name, main, supervision=supervision(settings))
