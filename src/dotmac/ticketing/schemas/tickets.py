"""Request and response models of the ticket API, named by intent."""

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from dotmac.ticketing.domain.limits import (
    COMMENT_MAX,
    CUSTOM_FIELDS_MAX,
    DESCRIPTION_MAX,
    NAME_MAX,
    REASON_MAX,
    TAG_MAX,
    TAGS_MAX,
    TEAM_MAX,
    TITLE_MAX,
)
from dotmac.ticketing.schemas.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from dotmac.ticketing.schemas.sla import TicketSLASummary

# The schema states what the validators enforce, so that a client (or a
# generator) working from the document sends only what is accepted: no NUL
# anywhere (PostgreSQL text cannot hold it), and text that is stripped must
# keep a character that is not whitespace.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def _text(max_length: int, *, min_length: int = 0) -> StringConstraints:
    return StringConstraints(
        min_length=min_length or None, max_length=max_length, pattern=NO_NUL
    )


def _stripped(max_length: int) -> StringConstraints:
    return StringConstraints(
        strip_whitespace=True, min_length=1, max_length=max_length, pattern=NOT_BLANK
    )


Title = Annotated[str, _stripped(TITLE_MAX)]
Description = Annotated[str, _text(DESCRIPTION_MAX)]
Tag = Annotated[str, _text(TAG_MAX, min_length=1)]
Identifier = Annotated[str, _stripped(200)]
Team = Annotated[str, _stripped(TEAM_MAX)]
Reason = Annotated[str, _text(REASON_MAX)]
# Finite numbers only: JSON has no NaN or Infinity, and neither has jsonb.
CustomValue = (
    Annotated[str, StringConstraints(pattern=NO_NUL)]
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
CustomFields = Annotated[
    dict[Annotated[str, _text(64, min_length=1)], CustomValue],
    Field(
        max_length=CUSTOM_FIELDS_MAX,
        # Pydantic states the names' pattern as patternProperties, which a
        # name that does not match escapes: the names say it themselves.
        json_schema_extra={
            "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": NO_NUL}
        },
    ),
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=320,
        pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$",
    ),
]


class _Request(BaseModel):
    # Unknown fields are refused: a typo must not be silently ignored.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here, in every field.
        for path, text in _strings(value):
            if "\x00" in text:
                raise ValueError(f"NUL characters are not allowed ({path})")
        return value


def _strings(value: Any, path: str = "value") -> Iterator[tuple[str, str]]:
    """Every string in a JSON-like value (keys too), with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, str(key)
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


class TicketCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Cannot log in after password reset",
                    "description": "The reset link says it expired.",
                    "category": "technical_support",
                    "priority": "high",
                    "customer_id": "cust-42",
                    "customer_email": "ada@example.com",
                    "customer_name": "Ada Lovelace",
                    "tags": ["login", "password"],
                    "custom_fields": {"plan": "pro"},
                    "channel": "web",
                }
            ]
        },
    )

    title: Title
    description: Description = ""
    category: TicketCategory = TicketCategory.GENERAL
    priority: TicketPriority = TicketPriority.NORMAL
    customer_id: Identifier | None = Field(
        None,
        description="Whom the ticket is for. Customers open tickets for "
        "themselves (leave it out or give their own id); staff give it, or "
        "`customer_email` alone.",
    )
    customer_email: Email | None = Field(
        None,
        description="The customer's address. Given without `customer_id` by "
        "staff, the ticket is for the tenant's customer with this address: "
        "the customer of the first ticket that carried it, else an id derived "
        "from the address (`email-<uuid>`).",
    )
    customer_name: Annotated[str, _stripped(NAME_MAX)] | None = Field(
        None,
        description="The customer's name: e-mail greets them by it and names "
        "them by it to agents (else their address, else their id).",
    )
    tags: Annotated[list[Tag], Field(max_length=TAGS_MAX)] = []
    custom_fields: CustomFields = {}
    channel: TicketChannel = TicketChannel.API

    def dict(self, **options: Any) -> dict[str, Any]:
        """The fields the caller set (pydantic v1's name for a dump).

        The original product's Quick Start spreads it into
        ``create_customer_ticket(customer_id=..., **ticket_data.dict())``;
        an unset ``customer_id`` in it would be that keyword twice.
        """
        return self.model_dump(exclude_unset=True, **options)


class TicketUpdate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"priority": "urgent", "tags": ["vip"]}]},
    )

    title: Title | None = None
    description: Description | None = None
    category: TicketCategory | None = None
    priority: TicketPriority | None = None
    tags: Annotated[list[Tag], Field(max_length=TAGS_MAX)] | None = None
    custom_fields: CustomFields | None = None


class TicketAssign(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"assignee_id": "agent-7", "team": "Technical Support"}],
            # An assignee, a team, or both (``None`` for both is refused).
            "anyOf": [
                {
                    "required": ["assignee_id"],
                    "properties": {"assignee_id": {"type": "string"}},
                },
                {"required": ["team"], "properties": {"team": {"type": "string"}}},
            ],
        },
    )

    assignee_id: Identifier | None = None
    team: Team | None = None


class TicketStatusChange(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "in_progress"}]}
    )

    status: TicketStatus
    reason: Reason | None = None


class TicketEscalate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "Customer is losing data", "team": "Engineering"}]
        },
    )

    reason: Annotated[str, _text(REASON_MAX, min_length=1)]
    team: Team | None = None


class TicketResolve(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"resolution": "Reset the MFA device.", "resolution_code": "fixed"}
            ]
        },
    )

    resolution: Annotated[str, _text(COMMENT_MAX)] = ""
    resolution_code: Annotated[str, _stripped(100)] = "resolved"


class TicketReopen(_Request):
    reason: Reason = ""


class CommentCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"body": "Could you send a screenshot?", "internal": False},
                {"body": "Update the client to 5.2.2.", "solution": True},
            ],
            # An internal note is no solution (the service answers 422).
            "not": {
                "required": ["internal", "solution"],
                "properties": {
                    "internal": {"const": True},
                    "solution": {"const": True},
                },
            },
        },
    )

    # Not blank: white space alone says nothing (the ticket refuses it).
    body: Annotated[
        str,
        StringConstraints(min_length=1, max_length=COMMENT_MAX, pattern=NOT_BLANK),
    ]
    internal: bool = False
    solution: bool = Field(
        default=False,
        description=(
            "Staff only, on a public reply: this reply is the solution to the"
            " problem. A workflow waiting for the solution (technical"
            " support's provide_solution) completes on it, not on a plain"
            " reply such as a question."
        ),
    )


class SatisfactionRate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"rating": 5, "comment": "Quick and kind"}]},
    )

    rating: int = Field(ge=1, le=5)
    comment: Reason = ""


class EscalationDecision(_Request):
    """A supervisor's answer to an escalation request (the body is optional)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"comment": "Engineering should look"}]},
    )

    comment: Reason = ""


class TicketMerge(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"into": "6f1c2a4e-0c1b-4a5e-9a55-2f1d8f0b7c11"}]
        },
    )

    into: UUID = Field(description="The ticket that stays: this one closes into it.")
    # Strict: an explicit confirmation is JSON true, not "yes" or 1.
    confirm_cross_customer: StrictBool = Field(
        False,
        description=(
            "Merge even though the two tickets belong to different customers"
            " (without it, such a merge answers 409 cross-customer-merge). What"
            " is carried over is then internal, and neither customer sees the"
            " other's ticket."
        ),
    )


class TicketLink(_Request):
    ticket_id: UUID
    relation: LinkRelation = LinkRelation.RELATES_TO


class CommentRead(BaseModel):
    id: str
    body: str
    internal: bool
    author_id: str
    author_role: str
    created_at: datetime
    #: An agent's reply marked as the solution (``CommentCreate.solution``).
    solution: bool = False


class AttachmentRead(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: datetime


class LinkRead(BaseModel):
    ticket_id: str
    relation: LinkRelation


class Resolution(BaseModel):
    code: str
    note: str


class PendingEscalationRead(BaseModel):
    """An escalation a rule asked for, awaiting a supervisor's approval."""

    level: int
    team: str
    rule: str
    reason: str
    requested_at: datetime


class TicketRead(BaseModel):
    id: UUID
    number: int
    version: int
    position: int | None = Field(
        None,
        description=(
            "Position of the command's last event in the event log (null when "
            "the request changed nothing); pass it as min_position to queries."
        ),
    )
    title: str
    description: str
    status: TicketStatus
    priority: TicketPriority
    category: TicketCategory
    channel: TicketChannel
    customer_id: str
    customer_email: str | None
    customer_name: str | None = None
    customer_email_bouncing: bool = Field(
        description=(
            "Mail to customer_email bounces now (whatever as_of asks for): "
            "the desk sends it no e-mail until mail from it arrives or an "
            "admin clears it (GET /api/v1/inbound/bounces)."
        ),
    )
    tags: list[str]
    custom_fields: dict[str, Any]
    assigned_team: str | None
    assignee_id: str | None
    escalation_level: int
    reopen_count: int
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution: Resolution | None
    merged_into: str | None
    links: list[LinkRead]
    attachments: list[AttachmentRead]
    comment_count: int
    satisfaction: dict[str, Any] | None = Field(
        None, description="The customer's rating (1-5) and comment, once given."
    )
    sla: TicketSLASummary | None = Field(
        None,
        description=(
            "Each SLA target's state and due time, computed when the response "
            "is made (for ?as_of=, at that moment); null for a ticket without "
            "an SLA policy. GET /tickets/{id}/sla has the details."
        ),
    )
    pending_escalation: PendingEscalationRead | None = Field(
        None,
        description=(
            "The escalation awaiting a supervisor's approval, if any "
            "(staff only: null for customers)."
        ),
    )


class HistoryEntryRead(BaseModel):
    version: int
    event: str
    at: datetime
    actor: dict[str, str]
    correlation_id: str | None
    causation_id: str | None
    data: dict[str, Any]
