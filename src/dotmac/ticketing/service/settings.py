"""The service's configuration: the one place that reads the environment.

Built once at start-up (``Settings()``) and passed down; nothing else in the
code base looks at ``os.environ``. Every field is read from exactly the
variable named in docs/configuration.md, and tests may also build
one by field name: ``Settings(database_url=...)``.
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
WORKER_NAMES = ("projections", "relay", "notifier", "timers", "workflows")


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
    """Deployment configuration; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        populate_by_name=True, extra="ignore", frozen=True
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    # Partitions of the ticket event topic (and its dead letters). The
    # workers create the topics with this many and refuse to run on a topic
    # with another count that holds records (consumers/kafka/broker.py). Consumers
    # scale up to this many.
    kafka_partitions: int = Field(
        default=6, gt=0, validation_alias="TICKETING_KAFKA_PARTITIONS"
    )
    # Recreate a topic whose partition count is wrong even when it holds
    # records (its dead letters are lost; the relay republishes the events).
    # On for the bundled in-memory broker of `ticketing dev`.
    kafka_recreate_mismatched_topics: bool = Field(
        default=False, validation_alias="TICKETING_KAFKA_RECREATE_MISMATCHED_TOPICS"
    )
    # How long a Kafka consumer that died keeps its partitions before the
    # group reassigns them (aiokafka's default). Shorter: faster failover.
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        le=300_000,
        validation_alias="TICKETING_KAFKA_SESSION_TIMEOUT_MS",
    )
    # How long a consumer's fetch may wait for records before the broker
    # answers. The bundled development broker waits the whole time even when
    # records arrive (measured: ~130 ms median per hop at aiokafka's 500 ms
    # default, ~7 ms at 20 ms); real Kafka answers as soon as records arrive.
    kafka_fetch_max_wait_ms: int = Field(
        default=500, gt=0, validation_alias="TICKETING_KAFKA_FETCH_MAX_WAIT_MS"
    )
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PORT")

    jwt_secret: str | None = Field(
        default=None,
        min_length=JWT_SECRET_MIN_LENGTH,
        validation_alias="TICKETING_JWT_SECRET",
    )
    # PEM text, or the path of a PEM file; always PEM text once validated.
    jwt_public_key: str | None = Field(
        default=None, validation_alias="TICKETING_JWT_PUBLIC_KEY"
    )
    # An OIDC provider's key set (RS256 and ES256 keys, chosen by the token's
    # kid). Fetched on first use, kept for jwt_jwks_cache_seconds; a token
    # naming an unknown kid refetches it, at most once per
    # jwt_jwks_refresh_min_seconds (so forged kids cannot flood the provider).
    jwt_jwks_url: str | None = Field(
        default=None, validation_alias="TICKETING_JWT_JWKS_URL"
    )
    jwt_jwks_cache_seconds: float = Field(
        default=300,
        gt=0,
        le=DAY_SECONDS,
        validation_alias="TICKETING_JWT_JWKS_CACHE_SECONDS",
    )
    jwt_jwks_refresh_min_seconds: float = Field(
        default=30,
        ge=0,
        le=3600,
        validation_alias="TICKETING_JWT_JWKS_REFRESH_MIN_SECONDS",
    )
    # A request waits this long at most for the provider's key set.
    jwt_jwks_timeout_seconds: float = Field(
        default=5, gt=0, le=60, validation_alias="TICKETING_JWT_JWKS_TIMEOUT_SECONDS"
    )
    # When set, every token must carry exactly this iss / this aud (or a
    # list of audiences including it); `ticketing token` adds them.
    jwt_issuer: str | None = Field(
        default=None, validation_alias="TICKETING_JWT_ISSUER"
    )
    jwt_audience: str | None = Field(
        default=None, validation_alias="TICKETING_JWT_AUDIENCE"
    )
    # Longest accepted token lifetime, exp - iat (exp - now without iat): a
    # stolen token is worth this long at most.
    jwt_max_lifetime_seconds: int = Field(
        default=DAY_SECONDS,
        gt=0,
        le=YEAR_SECONDS,
        validation_alias="TICKETING_JWT_MAX_LIFETIME_SECONDS",
    )

    data_dir: Path = Field(default=Path(".data"), validation_alias="TICKETING_DATA_DIR")
    # None: attachment bytes live in PostgreSQL next to the events.
    attachment_dir: Path | None = Field(
        default=None, validation_alias="TICKETING_ATTACHMENT_DIR"
    )
    attachment_max_bytes: int = Field(
        default=10 * MIB, gt=0, validation_alias="TICKETING_ATTACHMENT_MAX_BYTES"
    )
    request_max_bytes: int = Field(
        default=1 * MIB, gt=0, validation_alias="TICKETING_REQUEST_MAX_BYTES"
    )

    db_pool_size: int = Field(
        default=20, gt=0, validation_alias="TICKETING_DB_POOL_SIZE"
    )
    # How often a command that lost a version race is retried before the
    # caller gets 409; 0 answers 409 on the first conflict.
    command_retries: int = Field(
        default=8, ge=0, validation_alias="TICKETING_COMMAND_RETRIES"
    )

    config_path: Path | None = Field(default=None, validation_alias="TICKETING_CONFIG")
    # None: console on a terminal, JSON lines otherwise.
    log_format: Literal["json", "console"] | None = Field(
        default=None, validation_alias="LOG_FORMAT"
    )
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")

    snapshot_interval: int = Field(
        default=50, gt=0, validation_alias="TICKETING_SNAPSHOT_INTERVAL"
    )

    # Outgoing e-mail (the notifier). No host: e-mail is written to the log.
    smtp_host: str | None = Field(default=None, validation_alias="TICKETING_SMTP_HOST")
    smtp_port: int = Field(
        default=587, ge=1, le=65535, validation_alias="TICKETING_SMTP_PORT"
    )
    smtp_from: str = Field(
        default="ticketing@localhost", validation_alias="TICKETING_SMTP_FROM"
    )
    smtp_user: str | None = Field(default=None, validation_alias="TICKETING_SMTP_USER")
    smtp_password: str | None = Field(
        default=None, validation_alias="TICKETING_SMTP_PASSWORD"
    )
    smtp_starttls: bool = Field(
        default=False, validation_alias="TICKETING_SMTP_STARTTLS"
    )
    # The domain of the Message-IDs that thread a ticket's mail
    # (<ticket-{id}@{domain}>, docs/notifications.md); unset: the sender's.
    mail_domain: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$",
        validation_alias="TICKETING_MAIL_DOMAIN",
    )
    # Signs the one-click satisfaction links of resolution e-mail; unset: a
    # key derived from TICKETING_JWT_SECRET (without either, no links).
    link_secret: str | None = Field(
        default=None,
        min_length=JWT_SECRET_MIN_LENGTH,
        validation_alias="TICKETING_LINK_SECRET",
    )
    satisfaction_link_days: int = Field(
        default=30, ge=1, le=365, validation_alias="TICKETING_SATISFACTION_LINK_DAYS"
    )

    # SMS provider (Twilio-style form post). No URL: SMS is written to the log.
    sms_url: str | None = Field(default=None, validation_alias="TICKETING_SMS_URL")
    sms_user: str | None = Field(default=None, validation_alias="TICKETING_SMS_USER")
    sms_password: str | None = Field(
        default=None, validation_alias="TICKETING_SMS_PASSWORD"
    )
    # The sender number or alphanumeric id the provider shows (Twilio's From).
    sms_from: str = Field(default="Ticketing", validation_alias="TICKETING_SMS_FROM")

    # Webhooks to private, loopback or link-local addresses are refused
    # (server-side request forgery) unless a deployment explicitly allows them.
    webhook_allow_private: bool = Field(
        default=False, validation_alias="TICKETING_WEBHOOK_ALLOW_PRIVATE"
    )
    # Workflow integration hooks (the tenant settings' "integrations") are
    # refused on private, loopback or link-local addresses in the same way.
    integrations_allow_private: bool = Field(
        default=False, validation_alias="TICKETING_INTEGRATIONS_ALLOW_PRIVATE"
    )
    # A webhook delivery failing for longer than this goes to the dead letters.
    webhook_give_up_seconds: float = Field(
        default=3600, gt=0, validation_alias="TICKETING_WEBHOOK_GIVE_UP_SECONDS"
    )
    # How long one webhook call may take (connecting included) before it
    # counts as failed; a receiver that does not answer holds its slot no longer.
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, le=300, validation_alias="TICKETING_WEBHOOK_TIMEOUT_SECONDS"
    )
    # How many webhooks one tenant may register (the 21st is refused with 409).
    webhooks_per_tenant_max: int = Field(
        default=20, ge=0, validation_alias="TICKETING_WEBHOOKS_PER_TENANT_MAX"
    )
    # The circuit breaker: this many failed deliveries in a row pause a
    # webhook (its deliveries wait, its tenant's admins are told) ...
    webhook_breaker_threshold: int = Field(
        default=5, ge=1, validation_alias="TICKETING_WEBHOOK_BREAKER_THRESHOLD"
    )
    # ... and this long after, one delivery is tried: success resumes it.
    webhook_breaker_cooldown_seconds: float = Field(
        default=300,
        gt=0,
        validation_alias="TICKETING_WEBHOOK_BREAKER_COOLDOWN_SECONDS",
    )
    # Sends in flight per notifier process: in total, per tenant and channel
    # (one tenant's webhooks together, its e-mail, its SMS), and per webhook.
    # A receiver that hangs holds at most its webhook's share.
    delivery_concurrency: int = Field(
        default=128, ge=1, validation_alias="TICKETING_DELIVERY_CONCURRENCY"
    )
    delivery_tenant_concurrency: int = Field(
        default=32, ge=1, validation_alias="TICKETING_DELIVERY_TENANT_CONCURRENCY"
    )
    delivery_endpoint_concurrency: int = Field(
        default=4, ge=1, validation_alias="TICKETING_DELIVERY_ENDPOINT_CONCURRENCY"
    )
    # A tenant's notification template renders in a worker process within
    # these budgets per part; past either (or on any error) the built-in
    # template is used and the failure is recorded on the delivery.
    template_render_seconds: float = Field(
        default=1.0, gt=0, le=30, validation_alias="TICKETING_TEMPLATE_RENDER_SECONDS"
    )
    template_max_chars: int = Field(
        default=100_000,
        gt=0,
        le=10_000_000,
        validation_alias="TICKETING_TEMPLATE_MAX_CHARS",
    )
    # Where people reach the service (links in notifications, e.g. satisfaction).
    public_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias="TICKETING_PUBLIC_URL"
    )

    # The timers' firing loop sleeps until the next due time, but never
    # longer than this (a deadline written by another replica, a file clock
    # moved by a test, a retry of a failed command are seen this late).
    timers_poll_interval: float = Field(
        default=1.0, gt=0, le=60, validation_alias="TICKETING_TIMERS_POLL_INTERVAL"
    )
    # Workers (consumers/supervision.py): a part that fails is restarted
    # after this delay, doubled per failure in a row up to the maximum.
    worker_restart_initial_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        validation_alias="TICKETING_WORKER_RESTART_INITIAL_SECONDS",
    )
    worker_restart_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        validation_alias="TICKETING_WORKER_RESTART_MAX_SECONDS",
    )
    # How often each worker writes its state to the worker_status table.
    worker_heartbeat_seconds: float = Field(
        default=5.0, gt=0, le=300, validation_alias="TICKETING_WORKER_HEARTBEAT_SECONDS"
    )
    # Readiness (GET /ready): a worker whose last heartbeat is older than
    # this is down; one more events behind than ready_max_lag is lagging.
    ready_stale_seconds: float = Field(
        default=30.0, gt=0, validation_alias="TICKETING_READY_STALE_SECONDS"
    )
    ready_max_lag: int = Field(
        default=1000, ge=0, validation_alias="TICKETING_READY_MAX_LAG"
    )
    # Comma-separated worker names readiness requires (projections, relay,
    # notifier, timers, workflows); unset: every worker that has reported;
    # "none": the workers are not checked.
    ready_workers: str | None = Field(
        default=None, validation_alias="TICKETING_READY_WORKERS"
    )
    # Testing and demo aid: a file holding an ISO 8601 instant that is "now"
    # for the processes started with it (service/clock.py says why a file).
    clock_file: Path | None = Field(
        default=None, validation_alias="TICKETING_CLOCK_FILE"
    )

    # HTTP answers (docs/security.md). /docs, /redoc and /openapi.json: off
    # answers them 404, for deployments that do not publish their API.
    api_docs: bool = Field(default=True, validation_alias="TICKETING_API_DOCS")
    # Strict-Transport-Security, for deployments reached only over TLS (a
    # proxy in front terminates it, so the service cannot tell by itself).
    hsts: bool = Field(default=False, validation_alias="TICKETING_HSTS")
    hsts_max_age_seconds: int = Field(
        default=YEAR_SECONDS,
        ge=0,
        le=2 * YEAR_SECONDS,
        validation_alias="TICKETING_HSTS_MAX_AGE_SECONDS",
    )
    hsts_include_subdomains: bool = Field(
        default=False, validation_alias="TICKETING_HSTS_INCLUDE_SUBDOMAINS"
    )
    # Cross-origin requests from a browser front end; no origins: CORS off.
    # Lists are comma-separated in the environment.
    cors_allow_origins: tuple[str, ...] = Field(
        default=(), validation_alias="TICKETING_CORS_ALLOW_ORIGINS"
    )
    cors_allow_methods: tuple[str, ...] = Field(
        default=DEFAULT_CORS_METHODS, validation_alias="TICKETING_CORS_ALLOW_METHODS"
    )
    cors_allow_headers: tuple[str, ...] = Field(
        default=DEFAULT_CORS_HEADERS, validation_alias="TICKETING_CORS_ALLOW_HEADERS"
    )
    cors_expose_headers: tuple[str, ...] = Field(
        default=DEFAULT_CORS_EXPOSE_HEADERS,
        validation_alias="TICKETING_CORS_EXPOSE_HEADERS",
    )
    cors_allow_credentials: bool = Field(
        default=False, validation_alias="TICKETING_CORS_ALLOW_CREDENTIALS"
    )
    cors_max_age_seconds: int = Field(
        default=600,
        ge=0,
        le=DAY_SECONDS,
        validation_alias="TICKETING_CORS_MAX_AGE_SECONDS",
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

    @field_validator("jwt_jwks_url")
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

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
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
