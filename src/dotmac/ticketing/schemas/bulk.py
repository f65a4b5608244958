"""Bulk actions: one action applied to many tickets by a job (``service.bulk``).

An action names one ticket command and takes that command's own request
body (``schemas.tickets``): ``{"assign": {"assignee_id": "agent-7"}}``,
``{"status": {"status": "pending"}}``, ``{"close": {}}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)

from dotmac.ticketing.domain.limits import BULK_TICKETS_MAX, TAGS_MAX
from dotmac.ticketing.schemas.ticket_filters import TicketListFilter
from dotmac.ticketing.schemas.tickets import (
    CommentCreate,
    Tag,
    TicketAssign,
    TicketEscalate,
    TicketReopen,
    TicketResolve,
    TicketStatusChange,
    TicketUpdate,
    _Request,
)

ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]+$")
]
Outcome = Literal["done", "conflict_retried", "refused"]
JobState = Literal["running", "finished"]


class NoArguments(_Request):
    """A command without arguments (``unassign``, ``close``): ``{}``."""


class AddTags(_Request):
    """Tags added to those the ticket has (``update`` replaces them)."""

    tags: Annotated[list[Tag], Field(min_length=1, max_length=TAGS_MAX)]


#: The single-ticket commands a bulk action may name (each with its route's body).
COMMANDS = (
    "assign",
    "unassign",
    "status",
    "update",
    "add_tags",
    "comment",
    "escalate",
    "resolve",
    "reopen",
    "close",
)


#: One branch per kind of action: exactly one is given.
def _one_of(kind: str, json_type: str) -> JsonValue:
    return {"required": [kind], "properties": {kind: {"type": json_type}}}


_ONE_OF: list[JsonValue] = [
    _one_of("macro", "string"),
    *(_one_of(kind, "object") for kind in COMMANDS),
]


class BulkAction(_Request):
    """Exactly one command, with the body its single-ticket route takes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"assign": {"team": "Billing"}},
                {"status": {"status": "pending"}},
                {"update": {"priority": "high"}},
                {"add_tags": {"tags": ["outage-2024-06"]}},
                {"comment": {"body": "We are on it", "internal": False}},
                {"close": {}},
                {"macro": "9b2f6c1e-4d8a-4f3b-9c7e-2a1d5e8f0b34"},
            ],
            # Exactly one command or macro (null is as good as absent).
            "oneOf": _ONE_OF,
        },
    )

    assign: TicketAssign | None = None
    unassign: NoArguments | None = None
    status: TicketStatusChange | None = None
    update: TicketUpdate | None = None
    add_tags: AddTags | None = None
    comment: CommentCreate | None = None
    escalate: TicketEscalate | None = None
    resolve: TicketResolve | None = None
    reopen: TicketReopen | None = None
    close: NoArguments | None = None
    #: A macro of the tenant (``/api/v1/macros``): all its actions, one save
    #: per ticket.
    macro: UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BulkAction:
        if len(self._given()) != 1:
            raise ValueError(
                "an action names exactly one command: "
                + ", ".join(sorted(type(self).model_fields))
            )
        return self

    def _given(self) -> list[str]:
        return [n for n in type(self).model_fields if getattr(self, n) is not None]

    @property
    def kind(self) -> str:
        return self._given()[0]

    @property
    def arguments(self) -> _Request | UUID:
        argument: _Request | UUID = getattr(self, self.kind)
        return argument


class BulkJobCreate(_Request):
    """Which tickets (``ids``, or a ``filter`` resolved when the job starts)
    and the action applied to each."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ids": ["9c342039-488e-4d28-8aa9-2ad1ef4c49ae"],
                    "action": {"status": {"status": "pending"}},
                },
                {
                    "filter": {"status": ["open"], "assigned_team": ["Billing"]},
                    "action": {"assign": {"team": "Payments"}},
                },
            ],
            # Either, not both (null is as good as absent).
            "oneOf": [
                {"required": ["ids"], "properties": {"ids": {"type": "array"}}},
                {"required": ["filter"], "properties": {"filter": {"type": "object"}}},
            ],
        },
    )

    ids: (
        Annotated[list[UUID], Field(min_length=1, max_length=BULK_TICKETS_MAX)] | None
    ) = None
    filter: TicketListFilter | None = None
    action: BulkAction

    @model_validator(mode="after")
    def _ids_or_filter(self) -> BulkJobCreate:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or a filter")
        return self


class BulkItemRead(BaseModel):
    """One ticket of a job: ``outcome`` null while it waits its turn."""

    position: int
    ticket_id: UUID
    outcome: Outcome | None
    #: The command saved a change (false: refused, or nothing to change).
    changed: bool | None
    #: Times another writer saved the ticket first and the command was
    #: decided again on the new state.
    conflicts: int
    #: A refusal's problem type (``not-found``, ``invalid-transition``, ...).
    problem: str | None
    reason: str | None
    version: int | None
    finished_at: datetime | None


class BulkCounts(BaseModel):
    pending: int
    done: int
    conflict_retried: int
    refused: int
    #: Items whose command saved a change.
    changed: int
    #: Conflicts met and retried, over all items.
    conflicts: int


class BulkJobRead(BaseModel):
    id: UUID
    state: JobState
    action: dict[str, Any]
    #: ``{"ids": <how many>}`` or ``{"filter": {...}}`` as asked.
    selection: dict[str, Any]
    total: int
    counts: BulkCounts
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    items: list[BulkItemRead]
    #: ``?after=`` for the next page of items; null on the last page.
    next_after: int | None
