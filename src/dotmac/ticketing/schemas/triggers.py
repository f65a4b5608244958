"""Triggers: a tenant's rules that apply actions on events or after a wait."""

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from dotmac.ticketing.domain.limits import NAME_MAX, REASON_MAX, TEAM_MAX
from dotmac.ticketing.schemas.enums import TicketStatus
from dotmac.ticketing.schemas.macros import (
    AssignAction,
    InternalNoteAction,
    PublicReplyAction,
    SetCategoryAction,
    SetCustomFieldsAction,
    SetPriorityAction,
    SetStatusAction,
    SetTagsAction,
    Template,
    _TemplateAction,
)
from dotmac.ticketing.schemas.tenant_config import HOURS_MAX, Conditions
from dotmac.ticketing.schemas.tickets import Email, _Request, _stripped, _text

#: The kinds of event a trigger waits for (``domain.triggers.EVENT_KINDS``).
EventKind = Literal[
    "created",
    "updated",
    "priority_changed",
    "assigned",
    "status_changed",
    "customer_comment",
    "agent_comment",
    "internal_note",
    "escalated",
    "sla_warning",
    "sla_breach",
    "resolved",
    "reopened",
    "closed",
]


class OnEvents(_Request):
    """Run when the ticket has an event of one of these kinds."""

    type: Literal["event"]
    events: Annotated[list[EventKind], Field(min_length=1, max_length=20)] = Field(
        description="created, updated (any field), priority_changed, assigned,"
        " status_changed (resolving, reopening and closing too),"
        " customer_comment, agent_comment (a public reply), internal_note,"
        " escalated, sla_warning, sla_breach, resolved, reopened, closed."
    )


class AfterTime(_Request):
    """Run once the ticket has been in a status for so many hours."""

    type: Literal["time"]
    status: TicketStatus
    hours: Annotated[float, Field(gt=0, le=HOURS_MAX, allow_inf_nan=False)]
    business_hours: StrictBool = Field(
        False,
        description="Count the ticket's team's business hours (else the"
        " tenant's), not the clock's.",
    )


class ApplyMacroAction(_Request):
    type: Literal["apply_macro"]
    macro_id: UUID = Field(description="A macro of the tenant; its actions run here.")


class NotifyAction(_TemplateAction):
    """An e-mail about the ticket: to a team's agents (those with an address
    in the settings' teams), or to one address."""

    model_config = ConfigDict(
        extra="forbid",
        regex_engine="python-re",
        json_schema_extra={
            "oneOf": [
                {"required": ["team"], "properties": {"team": {"type": "string"}}},
                {
                    "required": ["address"],
                    "properties": {"address": {"type": "string"}},
                },
            ]
        },
    )

    type: Literal["notify"]
    team: Annotated[str, _stripped(TEAM_MAX)] | None = None
    address: Email | None = None
    subject: Template = Field(description="The subject; placeholders as in a reply.")
    body: Template = Field(description="The text; placeholders as in a reply.")

    @model_validator(mode="after")
    def _one_recipient(self) -> Self:
        if (self.team is None) == (self.address is None):
            raise ValueError("notify a team or an address, one of them")
        return self


class CallWebhookAction(_Request):
    """One of the tenant's webhooks (``/api/v1/webhooks``) is called with the
    firing, a CloudEvent of type ``ticketing.trigger.fired.v1`` (its facts:
    trigger, ticket, cause; no personal data), signed as its other calls."""

    type: Literal["call_webhook"]
    webhook_id: UUID


TriggerActionSpec = Annotated[
    SetPriorityAction
    | SetCategoryAction
    | SetTagsAction
    | SetCustomFieldsAction
    | AssignAction
    | SetStatusAction
    | PublicReplyAction
    | InternalNoteAction
    | ApplyMacroAction
    | NotifyAction
    | CallWebhookAction,
    Field(discriminator="type"),
]


class TriggerWrite(_Request):
    """A trigger as an admin writes it (create, or replace whole)."""

    name: Annotated[str, _stripped(NAME_MAX)]
    description: Annotated[str, _text(REASON_MAX)] = ""
    enabled: StrictBool = True
    when: Annotated[OnEvents | AfterTime, Field(discriminator="type")]
    conditions: Conditions = Field(
        default_factory=Conditions,
        description="The rules' conditions, checked on the ticket as it is"
        " when the trigger runs; none: every ticket.",
    )
    actions: Annotated[list[TriggerActionSpec], Field(min_length=1, max_length=20)]


class TriggerRead(BaseModel):
    id: UUID
    name: str
    description: str
    enabled: bool
    when: dict[str, Any]
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime


class TriggerRunRead(BaseModel):
    """One run of a trigger: fired, cut at the depth limit, or refused."""

    id: int
    ticket_id: UUID
    cause: str = Field(description="The event (<ticket>:<version>) or timer.")
    depth: int = Field(description="Its place in a chain of triggers (1: first).")
    outcome: Literal["fired", "cut", "refused"]
    events: int = Field(description="Events its actions recorded.")
    detail: str
    at: datetime
