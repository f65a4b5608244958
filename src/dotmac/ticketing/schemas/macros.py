"""Macros: a tenant's named sets of actions, applied to a ticket in one command."""

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from dotmac.ticketing.domain.limits import (
    COMMENT_MAX,
    NAME_MAX,
    REASON_MAX,
    TAGS_MAX,
    TEMPLATE_PATTERN,
)
from dotmac.ticketing.schemas.enums import TicketCategory, TicketPriority
from dotmac.ticketing.schemas.tickets import (
    CustomFields,
    Identifier,
    Tag,
    Team,
    _Request,
    _stripped,
    _text,
)

#: The statuses a plain change reaches (resolving and closing take their own
#: commands, with a resolution).
MacroStatus = Literal["open", "in_progress", "pending", "on_hold"]
MacroName = Annotated[str, _stripped(NAME_MAX)]
MacroDescription = Annotated[str, _text(REASON_MAX)]
Template = Annotated[
    str, StringConstraints(max_length=COMMENT_MAX, pattern=TEMPLATE_PATTERN)
]


class SetPriorityAction(_Request):
    type: Literal["set_priority"]
    priority: TicketPriority


class SetCategoryAction(_Request):
    type: Literal["set_category"]
    category: TicketCategory


class SetTagsAction(_Request):
    type: Literal["set_tags"]
    add: Annotated[list[Tag], Field(max_length=TAGS_MAX)] = Field(
        default_factory=list, description="Tags added (kept if there already)."
    )
    remove: Annotated[list[Tag], Field(max_length=TAGS_MAX)] = Field(
        default_factory=list, description="Tags removed (if there)."
    )


class SetCustomFieldsAction(_Request):
    type: Literal["set_custom_fields"]
    values: CustomFields = Field(
        description="Custom fields set to these values; null removes the field."
    )


class AssignAction(_Request):
    # A team, an agent, or both: as the schema states it.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["team"], "properties": {"team": {"type": "string"}}},
                {
                    "required": ["assignee_id"],
                    "properties": {"assignee_id": {"type": "string"}},
                },
            ]
        },
    )

    type: Literal["assign"]
    team: Team | None = Field(None, description="A team of the tenant's settings.")
    assignee_id: Identifier | None = Field(
        None, description="An agent of that team (or of any team without one)."
    )

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.team is None and self.assignee_id is None:
            raise ValueError("give a team, an agent (assignee_id) or both")
        return self


class SetStatusAction(_Request):
    type: Literal["set_status"]
    status: MacroStatus


class _TemplateAction(_Request):
    # The template pattern looks ahead, which only Python's engine does.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


class PublicReplyAction(_TemplateAction):
    type: Literal["public_reply"]
    body: Template = Field(
        description="The reply; placeholders such as {{ ticket.number }} and"
        " {{ customer.name }} are filled in (docs/macros-and-triggers.md lists them)."
    )


class InternalNoteAction(_TemplateAction):
    type: Literal["internal_note"]
    body: Template = Field(description="The note; placeholders as in a reply.")


MacroActionSpec = Annotated[
    SetPriorityAction
    | SetCategoryAction
    | SetTagsAction
    | SetCustomFieldsAction
    | AssignAction
    | SetStatusAction
    | PublicReplyAction
    | InternalNoteAction,
    Field(discriminator="type"),
]
MacroActions = Annotated[list[MacroActionSpec], Field(min_length=1, max_length=20)]


class MacroWrite(_Request):
    """A macro as an admin writes it (create, or replace whole)."""

    name: MacroName = Field(description="What agents pick it by.")
    description: MacroDescription = ""
    actions: MacroActions = Field(description="Applied in this order.")


class MacroRead(BaseModel):
    id: UUID
    name: str
    description: str
    actions: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime


class MacroPreview(BaseModel):
    """What applying the macro to the ticket now would do; nothing is saved."""

    macro_id: UUID
    ticket_id: UUID
    version: int = Field(description="The ticket's version the preview is of.")
    changes: dict[str, dict[str, Any]] = Field(
        description="Per field that would change: its value now (from) and after (to)."
    )
    comments: list[dict[str, Any]] = Field(
        description="The replies and notes it would post, placeholders filled in."
    )
    events: list[str] = Field(description="The events it would record, in order.")
