"""The service's configuration: the one place that reads the environment.

Built once at start-up (``Settings()``) and passed down; nothing else in the
code base looks at ``os.environ``. Every field is read from exactly the
variable its alias names, and tests may also build one by field name:
``Settings(database_url=...)``. Each field's description is the text of
docs/reference/settings.md (``ticketing docs`` writes it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

MIB = 1024 * 1024

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits).
JWT_SECRET_MIN_LENGTH = 32

DAY_SECONDS = 24 * 3600
YEAR_SECONDS = 365 * DAY_SECONDS

# What a browser front end sends and needs to read back (docs/security.md).
DEFAULT_CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_CORS_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Min-Position",
    "X-Request-ID",
)
DEFAULT_CORS_EXPOSE_HEADERS = (
    "ETag",
    "Location",
    "Idempotent-Replayed",
    "X-Event-Position",
    "X-Projection-Position",
    "X-Projection-Stale",
    "X-Request-ID",
)

_PEM_MARKER = "-----BEGIN "

# The background workers, as ``ticketing worker <name>`` and the rows of
# their heartbeats are named.
WORKER_NAMES = ("projections", "relay", "notifier", "timers", "workflows", "mail-in")


class _ExactEnvironmentSource(PydanticBaseSettingsSource):
    """Reads each field from the one variable named by its alias, and no other.

    pydantic-settings' own environment source also accepts a field's *name*
    as a variable when ``populate_by_name`` is on, so ``CONFIG_PATH`` or
    ``DATA_DIR`` left in a container's environment would silently configure
    the service. Here ``TICKETING_CONFIG`` means ``config_path`` and nothing
    else does. Empty values count as unset (``FOO=`` in a compose file).
    """

    def get_field_value(
        self, field: FieldInfo, field_name: str
    ) -> tuple[Any, str, bool]:
        variable = field.validation_alias
        if not isinstance(variable, str):
            raise TypeError(f"field {field_name} needs a string validation_alias")
        value = os.environ.get(variable) or None
        return value, variable, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, variable, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[variable] = value
        return values


class Settings(BaseSettings):
    """Deployment configuration: one environment variable per field.

    The reference of every variable (type, default, constraints, meaning)
    is generated from these fields: docs/reference/settings.md.
    """

    model_config = SettingsConfigDict(
        populate_by_name=True, extra="ignore", frozen=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL for the events and every table (a libpq URL or"
        " `key=value` string). Unset: `ticketing dev` (`make run`) starts an"
        " embedded server under `TICKETING_DATA_DIR`; every other command that"
        " needs the database refuses to start.",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="Kafka brokers (`host:port`, comma-separated). Unset:"
        " `ticketing dev` starts the bundled broker on a free loopback port;"
        " the Kafka workers refuse to start.",
    )
    # The workers refuse to run on a topic with another count that holds
    # records (consumers/kafka/broker.py): the consumers' offsets per
    # partition, and the partition of each ticket's key, would mean nothing.
    kafka_partitions: int = Field(
        default=6,
        gt=0,
        validation_alias="TICKETING_KAFKA_PARTITIONS",
        description="Partitions the ticket event topic and its dead letters are"
        " created with, and must have (docs/operations.md); the consumers scale"
        " up to this many replicas.",
    )
    kafka_recreate_mismatched_topics: bool = Field(
        default=False,
        validation_alias="TICKETING_KAFKA_RECREATE_MISMATCHED_TOPICS",
        description="Recreate a topic whose partition count is wrong even when it"
        " holds records (its dead letters are lost; the relay republishes the"
        " events). `ticketing dev` turns it on for the bundled broker, which"
        " keeps nothing across restarts anyway.",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        le=300_000,
        validation_alias="TICKETING_KAFKA_SESSION_TIMEOUT_MS",
        description="How long a Kafka consumer that died keeps its partitions"
        " before its group reassigns them (aiokafka's default); shorter fails"
        " over faster.",
    )
    # The bundled development broker waits the whole time even when records
    # arrive (measured: ~130 ms median per hop at aiokafka's 500 ms default,
    # ~7 ms at 20 ms); real Kafka answers as soon as records arrive.
    kafka_fetch_max_wait_ms: int = Field(
        default=500,
        gt=0,
        validation_alias="TICKETING_KAFKA_FETCH_MAX_WAIT_MS",
        description="How long a consumer's fetch may wait at the broker for"
        " records. `ticketing dev` uses at most 20 with the bundled broker.",
    )
    kafka_security_protocol: Literal[
        "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"
    ] = Field(
        default="PLAINTEXT",
        validation_alias="TICKETING_KAFKA_SECURITY_PROTOCOL",
        description="How every Kafka client connects: PLAINTEXT, SSL (TLS),"
        " SASL_SSL (TLS and SASL: managed brokers), SASL_PLAINTEXT.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = (
        Field(
            default=None,
            validation_alias="TICKETING_KAFKA_SASL_MECHANISM",
            description="SASL mechanism (with a SASL_ protocol).",
        )
    )
    kafka_sasl_username: str | None = Field(
        default=None,
        validation_alias="TICKETING_KAFKA_SASL_USERNAME",
        description="SASL user (with a SASL_ protocol).",
    )
    kafka_sasl_password: str | None = Field(
        default=None,
        validation_alias="TICKETING_KAFKA_SASL_PASSWORD",
        description="SASL password (with a SASL_ protocol); never logged.",
        repr=False,
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        validation_alias="TICKETING_KAFKA_SSL_CAFILE",
        description="CA bundle the brokers' certificates are checked against"
        " (with SSL or SASL_SSL); unset: the system's.",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias="HOST",
        description="Address the API listens on.",
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        validation_alias="PORT",
        description="Port the API listens on.",
    )
    rate_limit_tenant: str | None = Field(
        default="1000/second",
        pattern=r"^[1-9][0-9]{0,8}/(second|minute|hour)$",
        validation_alias="TICKETING_RATE_LIMIT_TENANT",
        description="Requests a tenant may make (all its callers together), unless"
        " its settings say otherwise (`rate_limits.tenant`); `off`: no limit."
        " Beyond: 429 with `Retry-After`.",
    )
    rate_limit_subject: str | None = Field(
        default="300/second",
        pattern=r"^[1-9][0-9]{0,8}/(second|minute|hour)$",
        validation_alias="TICKETING_RATE_LIMIT_SUBJECT",
        description="Requests each token subject may make, unless the tenant's"
        " settings say otherwise (`rate_limits.subject`); `off`: no limit.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        validation_alias="TICKETING_RATE_LIMIT_STORAGE",
        description="Where the counts are kept: `memory://` (each API process its"
        " own: with N processes a limit is N times as loose), or"
        " `redis://host:6379/0` (every process and replica shares them).",
    )
    request_deadline_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        validation_alias="TICKETING_REQUEST_DEADLINE_SECONDS",
        description="How long the API works on a request: a save still waiting"
        " after this is not written and the request is answered 503"
        " (`deadline-passed`), so a client that gave up and retries never finds"
        " its first attempt stored later. Keep it below your clients' timeouts;"
        " 0: none.",
    )
    shutdown_grace_seconds: float = Field(
        default=8.0,
        ge=0,
        le=300,
        validation_alias="TICKETING_SHUTDOWN_GRACE_SECONDS",
        description="On SIGTERM the API stops accepting and finishes the requests"
        " in flight for up to this long, then ends the rest (a deployment's"
        " termination grace period must be longer).",
    )
    max_in_flight: int = Field(
        default=200,
        ge=1,
        validation_alias="TICKETING_MAX_IN_FLIGHT",
        description="API requests one process works on at once; one more is"
        " answered 503 (`overloaded`, Retry-After: 1) at once instead of"
        " queueing. Health, readiness and metrics are never refused.",
    )
    db_wait_seconds: int = Field(
        default=1,
        ge=1,
        le=60,
        validation_alias="TICKETING_DB_WAIT_SECONDS",
        description="How long a request waits for a database connection (the"
        " database down, or every connection busy) before it is answered 503"
        " with Retry-After.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="TICKETING_OTLP_ENDPOINT",
        description="OpenTelemetry collector (OTLP over HTTP, e.g."
        " `http://collector:4318`) the API's request spans and the consumers'"
        " record spans are exported to. Unset: none are (the trace context"
        " still rides on events and CloudEvents).",
    )
    # Measured (docs/benchmarks.md): every trace exported, +1 to 4 % of the
    # API's CPU per create to a receiver on loopback, close to the 5 % budget
    # before a real collector's network and TLS; one in ten, within the noise.
    otlp_sample_ratio: float = Field(
        default=0.1,
        ge=0,
        le=1,
        validation_alias="TICKETING_OTLP_SAMPLE_RATIO",
        description="Share of the traces that start here (a request with no"
        " sampled `traceparent`) whose spans are exported: 0.1 is one in ten,"
        " chosen by trace id. A trace the caller sampled is always exported;"
        " the trace context rides on events and CloudEvents either way."
        " `OTEL_TRACES_SAMPLER`, when set, decides instead.",
    )
    otel_traces_sampler: (
        Literal[
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ]
        | None
    ) = Field(
        default=None,
        validation_alias="OTEL_TRACES_SAMPLER",
        description="OpenTelemetry's standard sampler setting; when set it"
        " replaces `TICKETING_OTLP_SAMPLE_RATIO`'s"
        " `parentbased_traceidratio`, with `OTEL_TRACES_SAMPLER_ARG` as the"
        " ratio of the `traceidratio` samplers.",
    )
    otel_traces_sampler_arg: float | None = Field(
        default=None,
        ge=0,
        le=1,
        validation_alias="OTEL_TRACES_SAMPLER_ARG",
        description="The ratio of `OTEL_TRACES_SAMPLER=traceidratio` or"
        " `parentbased_traceidratio` (unset: 1.0, as OpenTelemetry says).",
    )
    metrics: bool = Field(
        default=True,
        validation_alias="TICKETING_METRICS",
        description="Prometheus metrics: `/metrics` of the API, counted per route,"
        " and each worker's on `TICKETING_METRICS_PORT`. false: neither.",
    )
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        validation_alias="TICKETING_METRICS_PORT",
        description="Port a worker process serves Prometheus metrics on"
        " (`/metrics`, on `HOST`); 0: none. The API serves its own on `PORT`."
        " `ticketing dev` gives its workers this port and the next four.",
    )
    # Each process has its own event-store pool (TICKETING_DB_POOL_SIZE):
    # PostgreSQL must accept this many times as many connections.
    api_workers: int | None = Field(
        default=None,
        ge=1,
        validation_alias="TICKETING_API_WORKERS",
        description="Processes `ticketing api` (and `ticketing dev`) serves from,"
        " each with its own database pool; `ticketing api --workers N` overrides"
        " it. Unset: one per core.",
    )

    jwt_secret: str | None = Field(
        default=None,
        min_length=JWT_SECRET_MIN_LENGTH,
        validation_alias="TICKETING_JWT_SECRET",
        description="HS256 secret that signs and verifies bearer tokens"
        " (docs/security.md). Unset: `ticketing dev` and `ticketing token`"
        " generate one into `TICKETING_DATA_DIR/jwt-secret`; `ticketing api`"
        " needs it, `TICKETING_JWT_PUBLIC_KEY` or `TICKETING_JWT_JWKS_URL`.",
    )
    # Always PEM text once validated.
    jwt_public_key: str | None = Field(
        default=None,
        validation_alias="TICKETING_JWT_PUBLIC_KEY",
        description="RSA public key that verifies RS256 tokens: PEM text, or the"
        " path of a PEM file. Not together with `TICKETING_JWT_JWKS_URL`.",
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        validation_alias="TICKETING_JWT_JWKS_URL",
        description="An OIDC provider's key set (http or https): RS256 and ES256"
        " tokens, verified with the key their `kid` names. Fetched on first use"
        " and kept for `TICKETING_JWT_JWKS_CACHE_SECONDS`; a token naming an"
        " unknown `kid` refetches it, at most once per"
        " `TICKETING_JWT_JWKS_REFRESH_MIN_SECONDS` (so forged kids cannot flood"
        " the provider).",
    )
    jwt_jwks_cache_seconds: float = Field(
        default=300,
        gt=0,
        le=DAY_SECONDS,
        validation_alias="TICKETING_JWT_JWKS_CACHE_SECONDS",
        description="How long a fetched key set is used before it is fetched again.",
    )
    jwt_jwks_refresh_min_seconds: float = Field(
        default=30,
        ge=0,
        le=3600,
        validation_alias="TICKETING_JWT_JWKS_REFRESH_MIN_SECONDS",
        description="Least time between two fetches caused by an unknown `kid`"
        " (0: no limit).",
    )
    jwt_jwks_timeout_seconds: float = Field(
        default=5,
        gt=0,
        le=60,
        validation_alias="TICKETING_JWT_JWKS_TIMEOUT_SECONDS",
        description="How long a request waits at most for the provider's key set.",
    )
    jwt_issuer: str | None = Field(
        default=None,
        validation_alias="TICKETING_JWT_ISSUER",
        description="When set, every token must carry exactly this `iss`"
        " (`ticketing token` adds it). Unset: not checked.",
    )
    jwt_audience: str | None = Field(
        default=None,
        validation_alias="TICKETING_JWT_AUDIENCE",
        description="When set, every token's `aud` must be this audience or a"
        " list including it (`ticketing token` adds it). Unset: a token naming"
        " an audience is refused.",
    )
    jwt_max_lifetime_seconds: int = Field(
        default=DAY_SECONDS,
        gt=0,
        le=YEAR_SECONDS,
        validation_alias="TICKETING_JWT_MAX_LIFETIME_SECONDS",
        description="Longest accepted token lifetime, `exp - iat` (`exp - now`"
        " without `iat`): a stolen token is worth this long at most.",
    )

    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias="TICKETING_DATA_DIR",
        description="Where `ticketing dev` (`make run`) keeps its data: the"
        " embedded PostgreSQL (`postgres/`), the generated JWT secret"
        " (`jwt-secret`) and the bundled broker's log (`kafka.log`).",
    )
    attachment_dir: Path | None = Field(
        default=None,
        validation_alias="TICKETING_ATTACHMENT_DIR",
        description="Store attachment bytes in files under this directory."
        " Unset: they live in PostgreSQL next to the events.",
    )
    attachment_max_bytes: int = Field(
        default=10 * MIB,
        gt=0,
        validation_alias="TICKETING_ATTACHMENT_MAX_BYTES",
        description="Largest attachment upload, in bytes (10 MiB).",
    )
    request_max_bytes: int = Field(
        default=1 * MIB,
        gt=0,
        validation_alias="TICKETING_REQUEST_MAX_BYTES",
        description="Largest request body other than an upload, in bytes (1 MiB);"
        " larger ones are answered 413.",
    )

    db_pool_size: int = Field(
        default=20,
        gt=0,
        validation_alias="TICKETING_DB_POOL_SIZE",
        description="Connections of the event store's pool, per process.",
    )
    command_retries: int = Field(
        default=8,
        ge=0,
        validation_alias="TICKETING_COMMAND_RETRIES",
        description="How often a command that lost a version race is retried"
        " before the caller gets 409; 0 answers 409 on the first conflict.",
    )

    bulk_runner: bool = Field(
        default=True,
        validation_alias="TICKETING_BULK_RUNNER",
        description="Whether this API process applies bulk jobs"
        " (`POST /tickets/bulk`); every process that does claims unfinished"
        " jobs by a lease (docs/bulk-actions.md).",
    )
    bulk_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias="TICKETING_BULK_CONCURRENCY",
        description="Tickets a process's bulk runner changes at once (its"
        " threads, each holding one event-store connection while it saves).",
    )
    bulk_lease_seconds: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        validation_alias="TICKETING_BULK_LEASE_SECONDS",
        description="How long a runner's claim on a bulk job lasts unrenewed:"
        " after a crash, the job resumes elsewhere once it runs out.",
    )
    bulk_poll_seconds: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        validation_alias="TICKETING_BULK_POLL_SECONDS",
        description="How often an idle bulk runner looks for a job another"
        " process started (its own process's start it at once).",
    )

    config_path: Path | None = Field(
        default=None,
        validation_alias="TICKETING_CONFIG",
        description="YAML or JSON file with, per tenant (`tenants.<id>`), a"
        " settings document (`settings`, applied at start-up, idempotent),"
        " notification template overrides (`templates`) and, for tenants whose"
        " settings list no teams, the notifier's directory of agents (`teams`)"
        " (docs/configuration.md).",
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        validation_alias="LOG_FORMAT",
        description="How log lines are written. Unset: `console` on a terminal,"
        " JSON lines otherwise.",
    )
    log_level: str = Field(
        default="info",
        validation_alias="LOG_LEVEL",
        description="Least level logged: `debug`, `info`, `warning`, `error` or"
        " `critical`.",
    )

    snapshot_interval: int = Field(
        default=50,
        gt=0,
        validation_alias="TICKETING_SNAPSHOT_INTERVAL",
        description="Snapshot a ticket every this many events, so loading it"
        " replays at most that many.",
    )

    seal_personal_data: bool = Field(
        default=True,
        validation_alias="TICKETING_SEAL_PERSONAL_DATA",
        description="Encrypt the personal fields of every ticket event, snapshot"
        " and attachment with a key of the ticket's customer, so that an erasure"
        " (destroying the keys) removes them from the whole history (README,"
        " Privacy). Off: new data is stored in clear and cannot be erased from"
        " the event store; what was sealed still opens.",
    )
    key_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        validation_alias="TICKETING_KEY_CACHE_SECONDS",
        description="How long a process keeps a data subject's key after using"
        " it: an erasure made by another process takes effect here within this"
        " time.",
    )

    smtp_host: str | None = Field(
        default=None,
        validation_alias="TICKETING_SMTP_HOST",
        description="SMTP server of outgoing e-mail (the notifier). Unset: e-mail"
        " is written to the log.",
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        validation_alias="TICKETING_SMTP_PORT",
        description="Port of the SMTP server.",
    )
    smtp_from: str = Field(
        default="ticketing@localhost",
        validation_alias="TICKETING_SMTP_FROM",
        description="Sender address of every e-mail.",
    )
    smtp_user: str | None = Field(
        default=None,
        validation_alias="TICKETING_SMTP_USER",
        description="User name the notifier logs in to the SMTP server with."
        " Unset: no login.",
    )
    smtp_password: str | None = Field(
        default=None,
        validation_alias="TICKETING_SMTP_PASSWORD",
        description="Password of `TICKETING_SMTP_USER`.",
    )
    smtp_starttls: bool = Field(
        default=False,
        validation_alias="TICKETING_SMTP_STARTTLS",
        description="Upgrade the SMTP connection with STARTTLS.",
    )
    mail_domain: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$",
        validation_alias="TICKETING_MAIL_DOMAIN",
        description="Domain of the Message-IDs that thread a ticket's e-mail"
        " (`<ticket-{id}@{domain}>`, docs/notifications.md). Unset: the domain"
        " of `TICKETING_SMTP_FROM`.",
    )
    link_secret: str | None = Field(
        default=None,
        min_length=JWT_SECRET_MIN_LENGTH,
        validation_alias="TICKETING_LINK_SECRET",
        description="Key that signs the one-click satisfaction links of"
        " resolution e-mail. Unset: a key derived from `TICKETING_JWT_SECRET`;"
        " without either, e-mail carries no links.",
    )
    satisfaction_link_days: int = Field(
        default=30,
        ge=1,
        le=365,
        validation_alias="TICKETING_SATISFACTION_LINK_DAYS",
        description="How many days a satisfaction link works.",
    )

    sms_url: str | None = Field(
        default=None,
        validation_alias="TICKETING_SMS_URL",
        description="SMS provider's endpoint (a Twilio-style form post). Unset:"
        " SMS is written to the log.",
    )
    sms_user: str | None = Field(
        default=None,
        validation_alias="TICKETING_SMS_USER",
        description="User (account) of the SMS provider, sent with basic"
        " authentication.",
    )
    sms_password: str | None = Field(
        default=None,
        validation_alias="TICKETING_SMS_PASSWORD",
        description="Password (token) of `TICKETING_SMS_USER`.",
    )
    sms_from: str = Field(
        default="Ticketing",
        validation_alias="TICKETING_SMS_FROM",
        description="Sender number or alphanumeric id the provider shows"
        " (Twilio's `From`).",
    )

    # Webhooks to private, loopback or link-local addresses are refused
    # (server-side request forgery) unless a deployment explicitly allows them.
    webhook_allow_private: bool = Field(
        default=False,
        validation_alias="TICKETING_WEBHOOK_ALLOW_PRIVATE",
        description="Allow webhooks to private, loopback and link-local"
        " addresses (refused otherwise, against server-side request forgery).",
    )
    integrations_allow_private: bool = Field(
        default=False,
        validation_alias="TICKETING_INTEGRATIONS_ALLOW_PRIVATE",
        description="Allow workflow integration hooks (the tenant settings'"
        " `integrations`) to private, loopback and link-local addresses.",
    )
    webhook_give_up_seconds: float = Field(
        default=3600,
        gt=0,
        validation_alias="TICKETING_WEBHOOK_GIVE_UP_SECONDS",
        description="A webhook delivery failing for longer than this (in"
        " service) goes to the dead letters.",
    )
    webhook_timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=300,
        validation_alias="TICKETING_WEBHOOK_TIMEOUT_SECONDS",
        description="How long one webhook call may take, connecting (at most 5 s"
        " of it) included, before it counts as failed; a receiver that does not"
        " answer holds its slot no longer.",
    )
    webhooks_per_tenant_max: int = Field(
        default=20,
        ge=0,
        validation_alias="TICKETING_WEBHOOKS_PER_TENANT_MAX",
        description="How many webhooks one tenant may register (one more is"
        " refused with 409).",
    )
    webhook_breaker_threshold: int = Field(
        default=5,
        ge=1,
        validation_alias="TICKETING_WEBHOOK_BREAKER_THRESHOLD",
        description="The circuit breaker: this many failed deliveries in a row"
        " pause a webhook (its deliveries wait, its tenant's admins are told).",
    )
    webhook_breaker_cooldown_seconds: float = Field(
        default=300,
        gt=0,
        validation_alias="TICKETING_WEBHOOK_BREAKER_COOLDOWN_SECONDS",
        description="How long a paused webhook waits before one trial delivery;"
        " its success resumes the webhook.",
    )
    # A receiver that hangs holds at most its webhook's share.
    delivery_concurrency: int = Field(
        default=128,
        ge=1,
        validation_alias="TICKETING_DELIVERY_CONCURRENCY",
        description="Sends in flight per notifier process, in total.",
    )
    delivery_tenant_concurrency: int = Field(
        default=32,
        ge=1,
        validation_alias="TICKETING_DELIVERY_TENANT_CONCURRENCY",
        description="Sends in flight per notifier process, per tenant and channel"
        " (one tenant's webhooks together; its e-mail; its SMS).",
    )
    delivery_endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        validation_alias="TICKETING_DELIVERY_ENDPOINT_CONCURRENCY",
        description="Sends in flight per notifier process, per webhook.",
    )
    # A tenant's notification template renders in a worker process within
    # these budgets per part; past either (or on any error) the built-in
    # template is used and the failure is recorded on the delivery.
    template_render_seconds: float = Field(
        default=1.0,
        gt=0,
        le=30,
        validation_alias="TICKETING_TEMPLATE_RENDER_SECONDS",
        description="Time budget of one part of a tenant's notification template;"
        " past it the built-in part is used (docs/operations.md).",
    )
    template_max_chars: int = Field(
        default=100_000,
        gt=0,
        le=10_000_000,
        validation_alias="TICKETING_TEMPLATE_MAX_CHARS",
        description="Size budget, in characters, of one rendered part of a"
        " tenant's notification template; past it the built-in part is used.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias="TICKETING_PUBLIC_URL",
        description="Where people reach the service: the base of the links in"
        " notifications (satisfaction links, for example).",
    )

    # A deadline written by another replica, a file clock moved by a test,
    # a retry of a failed command are seen this late.
    mail_in_allow_private: bool = Field(
        default=False,
        validation_alias="TICKETING_MAIL_IN_ALLOW_PRIVATE",
        description="Let tenants' mailboxes be on private, loopback and"
        " link-local addresses, and use security plain there (refused"
        " otherwise, against server-side request forgery).",
    )
    mail_in_ca_file: str | None = Field(
        default=None,
        validation_alias="TICKETING_MAIL_IN_CA_FILE",
        description="A CA bundle the mail-in worker trusts besides the system's"
        " (an internal IMAP server's certificate authority).",
    )
    mail_in_idle_seconds: float = Field(
        default=25.0,
        gt=0,
        le=1500,
        validation_alias="TICKETING_MAIL_IN_IDLE_SECONDS",
        description="How long one IMAP IDLE waits before it is renewed (also the"
        " longest a stop waits on it).",
    )
    mail_in_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        validation_alias="TICKETING_MAIL_IN_POLL_SECONDS",
        description="How often a mailbox without IDLE is polled.",
    )
    timers_poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        validation_alias="TICKETING_TIMERS_POLL_INTERVAL",
        description="Longest sleep of the timers' firing loop, in seconds (it"
        " sleeps until the next due time, but never longer).",
    )
    worker_restart_initial_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        validation_alias="TICKETING_WORKER_RESTART_INITIAL_SECONDS",
        description="First delay before a failed worker part is started again;"
        " it doubles per failure in a row (consumers/supervision.py).",
    )
    worker_restart_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        validation_alias="TICKETING_WORKER_RESTART_MAX_SECONDS",
        description="Longest delay between restarts of a failed worker part.",
    )
    worker_heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        validation_alias="TICKETING_WORKER_HEARTBEAT_SECONDS",
        description="How often each worker writes its state (its"
        " `worker_status` row) for `GET /ready`.",
    )
    ready_stale_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias="TICKETING_READY_STALE_SECONDS",
        description="Readiness: a worker whose last heartbeat is older than this"
        " is down.",
    )
    ready_max_lag: int = Field(
        default=1000,
        ge=0,
        validation_alias="TICKETING_READY_MAX_LAG",
        description="Readiness: a worker more events behind than this is lagging.",
    )
    ready_workers: str | None = Field(
        default=None,
        validation_alias="TICKETING_READY_WORKERS",
        description="Workers `GET /ready` requires, comma-separated (projections,"
        " relay, notifier, timers, workflows), or `none` (the workers are not"
        " checked). Unset: every worker that has reported; `ticketing dev`"
        " requires all five.",
    )
    # service/clock.py says why a file.
    clock_file: Path | None = Field(
        default=None,
        validation_alias="TICKETING_CLOCK_FILE",
        description="Testing and demo aid: a file holding the ISO 8601 instant"
        " that is now for the timers and the API of the processes started with"
        " it. Unset: real time.",
    )

    api_docs: bool = Field(
        default=True,
        validation_alias="TICKETING_API_DOCS",
        description="Serve `/docs`, `/redoc` and `/openapi.json`; off answers"
        " them 404, for deployments that do not publish their API"
        " (docs/security.md).",
    )
    # A proxy in front terminates TLS, so the service cannot tell by itself.
    hsts: bool = Field(
        default=False,
        validation_alias="TICKETING_HSTS",
        description="Send `Strict-Transport-Security`, for deployments reached"
        " only over TLS.",
    )
    hsts_max_age_seconds: int = Field(
        default=YEAR_SECONDS,
        ge=0,
        le=2 * YEAR_SECONDS,
        validation_alias="TICKETING_HSTS_MAX_AGE_SECONDS",
        description="The `max-age` of `Strict-Transport-Security`.",
    )
    hsts_include_subdomains: bool = Field(
        default=False,
        validation_alias="TICKETING_HSTS_INCLUDE_SUBDOMAINS",
        description="Add `includeSubDomains` to `Strict-Transport-Security`.",
    )
    cors_allow_origins: tuple[str, ...] = Field(
        default=(),
        validation_alias="TICKETING_CORS_ALLOW_ORIGINS",
        description="Origins (`scheme://host[:port]`) of the browser front ends"
        " that may call the API (CORS), or `*` for any. Unset: CORS is off.",
    )
    cors_allow_methods: tuple[str, ...] = Field(
        default=DEFAULT_CORS_METHODS,
        validation_alias="TICKETING_CORS_ALLOW_METHODS",
        description="Methods a front end may use.",
    )
    cors_allow_headers: tuple[str, ...] = Field(
        default=DEFAULT_CORS_HEADERS,
        validation_alias="TICKETING_CORS_ALLOW_HEADERS",
        description="Request headers a front end may send.",
    )
    cors_expose_headers: tuple[str, ...] = Field(
        default=DEFAULT_CORS_EXPOSE_HEADERS,
        validation_alias="TICKETING_CORS_EXPOSE_HEADERS",
        description="Response headers a front end's scripts may read.",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        validation_alias="TICKETING_CORS_ALLOW_CREDENTIALS",
        description="Allow cookies and HTTP authentication on cross-origin"
        " requests; needs explicit origins, not `*`.",
    )
    cors_max_age_seconds: int = Field(
        default=600,
        ge=0,
        le=DAY_SECONDS,
        validation_alias="TICKETING_CORS_MAX_AGE_SECONDS",
        description="How long a browser may cache a preflight answer.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments win over the environment; no .env or secret files:
        # the deployment decides what the process sees.
        return (init_settings, _ExactEnvironmentSource(settings_cls))

    @field_validator("jwt_public_key")
    @classmethod
    def _read_public_key(cls, value: str | None) -> str | None:
        if value is None or value.lstrip().startswith(_PEM_MARKER):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(
                f"must be PEM text or the path of a PEM file; {str(path)!r} is neither"
            )
        text = path.read_text(encoding="utf-8")
        if _PEM_MARKER not in text:
            raise ValueError(f"{str(path)!r} does not contain a PEM key")
        return text

    @field_validator("jwt_jwks_url", "otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator(
        "cors_allow_origins",
        "cors_allow_methods",
        "cors_allow_headers",
        "cors_expose_headers",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("rate_limit_tenant", "rate_limit_subject", mode="before")
    @classmethod
    def _off_is_no_limit(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "off"):
            return None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("memory", "redis", "rediss"):
            raise ValueError("must be memory:// or a redis:// (rediss://) URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism
            and self.kafka_sasl_username
            and self.kafka_sasl_password
        ):
            raise ValueError(
                "a SASL_ TICKETING_KAFKA_SECURITY_PROTOCOL needs"
                " TICKETING_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD"
            )
        if self.jwt_public_key is not None and self.jwt_jwks_url is not None:
            # Both would verify RS256 tokens; which key wins would be a guess.
            raise ValueError(
                "set TICKETING_JWT_PUBLIC_KEY or TICKETING_JWT_JWKS_URL, not both"
            )
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            # Credentials for any origin means any web page may act as the
            # signed-in user; name the front ends instead.
            raise ValueError(
                "TICKETING_CORS_ALLOW_CREDENTIALS needs explicit origins, not '*'"
            )
        return self

    @field_validator("ready_workers")
    @classmethod
    def _known_workers(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() == "none":
            return value and "none"
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(WORKER_NAMES))
        if unknown:
            raise ValueError(
                f"unknown worker {', '.join(unknown)}; known: {', '.join(WORKER_NAMES)}"
            )
        return ",".join(names)

    @property
    def api_worker_count(self) -> int:
        """Processes the API serves from: the setting, or one per core."""
        return self.api_workers or os.cpu_count() or 1

    @property
    def trace_sampler(self) -> tuple[str, float]:
        """The span sampler's name and ratio: OpenTelemetry's standard pair
        when ``OTEL_TRACES_SAMPLER`` is set, as in any of its SDKs; else the
        caller's decision, or ``TICKETING_OTLP_SAMPLE_RATIO`` of new traces."""
        if self.otel_traces_sampler is not None:
            ratio = self.otel_traces_sampler_arg
            return self.otel_traces_sampler, 1.0 if ratio is None else ratio
        return "parentbased_traceidratio", self.otlp_sample_ratio

    @property
    def ready_worker_names(self) -> tuple[str, ...] | None:
        """The workers readiness requires; None: every one that reported."""
        if self.ready_workers is None:
            return None
        if self.ready_workers == "none":
            return ()
        return tuple(self.ready_workers.split(","))

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().lower()
        if not isinstance(logging.getLevelName(level.upper()), int):
            raise ValueError("must be one of debug, info, warning, error, critical")
        return level
