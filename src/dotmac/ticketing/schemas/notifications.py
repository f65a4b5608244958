"""In-app notifications and webhook registrations over HTTP."""

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
)

CLOUDEVENT_TYPE_PREFIX = "ticketing.ticket."
CLOUDEVENT_TYPE_VERSION = "v1"
WEBHOOK_URL_MAX = 2000
WEBHOOK_SECRET_MIN = 16
WEBHOOK_SECRET_MAX = 200


# The relay's rule (consumers.cloudevents.snake_case): SLAStarted → sla_started.
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def cloudevent_type(event_class: type) -> str:
    """``TicketCreated`` → ``ticketing.ticket.ticket_created.v1``."""
    snake = _CAMEL_BOUNDARY.sub("_", event_class.__name__).lower()
    return f"{CLOUDEVENT_TYPE_PREFIX}{snake}.{CLOUDEVENT_TYPE_VERSION}"


#: The CloudEvent type of every event a ticket can emit, in the domain's
#: order: the published contract a webhook subscribes to (a test holds it
#: to the domain's events, so a new event cannot be forgotten here).
TICKET_EVENT_TYPES: tuple[str, ...] = (
    "ticketing.ticket.ticket_created.v1",
    "ticketing.ticket.ticket_updated.v1",
    "ticketing.ticket.ticket_categorized.v1",
    "ticketing.ticket.priority_changed.v1",
    "ticketing.ticket.ticket_assigned.v1",
    "ticketing.ticket.ticket_unassigned.v1",
    "ticketing.ticket.status_changed.v1",
    "ticketing.ticket.comment_added.v1",
    "ticketing.ticket.attachment_added.v1",
    "ticketing.ticket.ticket_escalated.v1",
    "ticketing.ticket.escalation_requested.v1",
    "ticketing.ticket.escalation_approved.v1",
    "ticketing.ticket.escalation_rejected.v1",
    "ticketing.ticket.sla_started.v1",
    "ticketing.ticket.sla_recalculated.v1",
    "ticketing.ticket.sla_paused.v1",
    "ticketing.ticket.sla_resumed.v1",
    "ticketing.ticket.sla_stopped.v1",
    "ticketing.ticket.sla_warning.v1",
    "ticketing.ticket.sla_breached.v1",
    "ticketing.ticket.workflow_started.v1",
    "ticketing.ticket.workflow_step_completed.v1",
    "ticketing.ticket.workflow_step_waiting.v1",
    "ticketing.ticket.workflow_step_failed.v1",
    "ticketing.ticket.workflow_step_due.v1",
    "ticketing.ticket.workflow_completed.v1",
    "ticketing.ticket.workflow_cancelled.v1",
    "ticketing.ticket.ticket_resolved.v1",
    "ticketing.ticket.ticket_reopened.v1",
    "ticketing.ticket.ticket_closed.v1",
    "ticketing.ticket.ticket_merged.v1",
    "ticketing.ticket.satisfaction_rated.v1",
    "ticketing.ticket.ticket_linked.v1",
    "ticketing.ticket.subject_erased.v1",
    "ticketing.ticket.time_logged.v1",
    "ticketing.ticket.time_entry_removed.v1",
)
TicketEventType = Literal[TICKET_EVENT_TYPES]  # type: ignore[valid-type]

_http_url = TypeAdapter(HttpUrl)
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\s]")


def _check_webhook_url(value: str) -> str:
    # Visible characters only: no whitespace, controls or lone surrogates
    # that could split a request line or be read differently by the sender.
    if _UNSAFE_IN_URL.search(value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        _http_url.validate_python(value)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    return value


# What the document promises is accepted (the validator also takes IDN and
# IPv6 hosts and user info): http(s), a host name or IPv4 address, a port,
# a path of visible ASCII.
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
WEBHOOK_URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://{_LABEL}(\.{_LABEL})*(:[1-9][0-9]{{0,3}})?(/[!-~]*)?$"
)
WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=WEBHOOK_URL_MAX),
    AfterValidator(_check_webhook_url),
    Field(json_schema_extra={"pattern": WEBHOOK_URL_PATTERN}),
]
WebhookSecret = Annotated[
    str,
    StringConstraints(
        min_length=WEBHOOK_SECRET_MIN,
        max_length=WEBHOOK_SECRET_MAX,
        # Printable ASCII: the key of an HMAC both sides must type the same.
        pattern=r"^[\x20-\x7e]+$",
    ),
]


class NotificationRead(BaseModel):
    """A message for one person, shown in the application."""

    id: UUID
    event_id: str = Field(description="The CloudEvent this notification is about.")
    event_type: str
    ticket_id: UUID | None
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None = Field(description="Null while unread.")


class NotificationPage(BaseModel):
    items: list[NotificationRead] = Field(description="Newest first.")
    next: str | None = Field(
        description="Cursor of the next page (pass as `cursor`); null at the end."
    )


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/ticketing",
                    "event_types": [
                        "ticketing.ticket.ticket_created.v1",
                        "ticketing.ticket.ticket_resolved.v1",
                    ],
                }
            ]
        },
    )

    url: WebhookUrl = Field(
        description="http or https; private, loopback and link-local targets "
        "are refused unless the deployment allows them."
    )
    event_types: Annotated[
        list[TicketEventType], Field(max_length=len(TICKET_EVENT_TYPES))
    ] = Field(description="CloudEvent types to deliver; an empty list means all.")
    secret: WebhookSecret | None = Field(
        None,
        description="Key of the `X-Ticketing-Signature` HMAC; generated when "
        "absent. Returned once, in the answer to this request.",
    )


class WebhookRead(BaseModel):
    """A registered webhook (its secret is never shown again)."""

    id: UUID
    url: str
    event_types: list[str] = Field(description="Empty: every event type.")
    created_at: datetime
    created_by: str
    state: Literal["active", "paused"] = Field(
        description="`paused`: its circuit breaker opened after consecutive "
        "failed deliveries; they wait (nothing is dropped) until it is resumed."
    )
    paused_since: datetime | None = Field(description="Null while active.")
    next_trial_at: datetime | None = Field(
        description="When a paused webhook is next tried with one delivery "
        "(success resumes it); null while active."
    )
    consecutive_failures: int = Field(
        description="Failed deliveries since the last one that succeeded."
    )
    last_error: str | None = Field(description="Why the last failed delivery failed.")
    last_failure_at: datetime | None


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing key: shown in this answer only, store it now."
    )


class TemplatePartFailure(BaseModel):
    part: Literal["subject", "text", "html", "sms"]
    error: str


class TemplateFallbackRead(BaseModel):
    """A notification sent with the built-in template: the tenant's failed."""

    delivery_key: str
    event_id: str
    event_type: str
    ticket_id: UUID | None
    channel: str
    recipient: str
    created_at: datetime
    failures: list[TemplatePartFailure]
