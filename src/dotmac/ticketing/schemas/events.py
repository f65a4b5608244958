"""The public contract of the ticket event topic: CloudEvents and their data.

Every ticket event is published to ``ticketing.ticket-events.v1`` as a
CloudEvents 1.0 envelope (:class:`CloudEvent`) in structured JSON mode, and
its ``data`` is one of the ``…Data`` models below, chosen by the envelope's
``type`` (``ticketing.ticket.<snake_case event name>.v1``). The AsyncAPI
document (``schemas/asyncapi.json``, written by ``ticketing asyncapi``) is
generated from these models.

Events are facts: the models describe what was recorded and never trim,
reformat or cap values, so a consumer sees exactly what the ticket saw.
Fields are only ever added to a ``.v1`` type; removing or changing one
means a ``.v2`` type.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    with_config,
)
from typing_extensions import TypedDict

from dotmac.ticketing.schemas.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TimeEntryType,
)

CLOUDEVENTS_SPEC_VERSION: Final = "1.0"
DATA_CONTENT_TYPE: Final = "application/json"


def _drop_default(schema: dict[str, Any]) -> None:
    """Absent rather than null when unset: no default in the JSON schema."""
    schema.pop("default", None)


LOG_POSITION_DESCRIPTION = (
    "Extension attribute: the event's position in the event store's log "
    "(its notification id). Positions grow in the order events were stored, "
    "across all tickets, with gaps; a ticket's events have growing positions. "
    "Set on every event the relay publishes."
)

CustomValue = str | int | float | bool | None


class Actor(BaseModel):
    """Who caused the event: a person (token subject and role) or an automation."""

    # Fields with defaults are always present in published JSON: say so.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )

    id: str = Field(description="The user's id (the token's `sub`) or automation name.")
    role: str = Field(description="customer, agent, supervisor, admin or automation.")
    kind: Literal["user", "automation"] = "user"


class TicketEventData(BaseModel):
    """What every ticket event's data carries."""

    # Fields with defaults are always present in published JSON: say so.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )

    ticket_id: UUID = Field(description="The ticket (also the CloudEvent subject).")
    version: int = Field(
        ge=1, description="The ticket's version after this event (1 = created)."
    )
    tenant_id: str
    actor: Actor
    correlation_id: str | None = Field(
        description="The request that caused the event (X-Request-ID)."
    )
    causation_id: str | None = Field(
        description="For automated commands: the id of the event that caused it."
    )


@with_config(ConfigDict(extra="allow"))
class TicketChanges(TypedDict, total=False):
    """The descriptive fields an update changed (only those present changed)."""

    title: str
    description: str
    tags: list[str]
    custom_fields: dict[str, CustomValue]


class TicketCreatedData(TicketEventData):
    """A ticket was opened; the state it starts in is status `new`."""

    number: int = Field(description="The tenant's human-readable ticket number.")
    title: str
    description: str
    category: TicketCategory
    priority: TicketPriority
    channel: TicketChannel
    customer_id: str
    customer_email: str | None
    tags: list[str]
    custom_fields: dict[str, CustomValue]
    customer_name: str | None = Field(
        None, description="The customer's name, when the ticket was given one."
    )


class TicketUpdatedData(TicketEventData):
    """Title, description, tags or custom fields changed."""

    changes: TicketChanges = Field(description="The new values.")
    previous: TicketChanges = Field(description="The values before, same keys.")


class TicketCategorizedData(TicketEventData):
    """The ticket's category changed."""

    category: TicketCategory
    previous_category: TicketCategory
    confidence: float | None = Field(
        description="0 to 1 when a rule or model chose the category; null for people."
    )


class PriorityChangedData(TicketEventData):
    """The ticket's priority changed (SLA due times follow it)."""

    priority: TicketPriority
    previous_priority: TicketPriority
    reason: str | None


class TicketAssignedData(TicketEventData):
    """The ticket's assignee and/or team, and the status that follows."""

    assignee_id: str | None
    team: str | None
    previous_assignee_id: str | None
    previous_team: str | None
    status: TicketStatus = Field(description="The status after the assignment.")
    reason: dict[str, Any] | None = Field(
        default=None,
        description="Automatic assignments: the rule, the strategy, the agents "
        "compared (open tickets, capacity, skills) and why one was picked; "
        "`picked` null means the ticket waits in the team's queue.",
    )


class TicketUnassignedData(TicketEventData):
    """The person was taken off the ticket (the team stays)."""

    previous_assignee_id: str


class StatusChangedData(TicketEventData):
    """The ticket moved between the active states (or to on_hold, pending…)."""

    status: TicketStatus
    previous_status: TicketStatus
    reason: str | None
    cause: dict[str, Any] | None = Field(
        default=None,
        description="An automatic change (actor kind `automation`) says what "
        "caused it: `event` (`CommentAdded` or `AttachmentAdded` for a customer's "
        "answer reopening a pending ticket), its `version`, the `comment_id` or "
        "`attachment_id` and the `customer_id`; null when a person changed it.",
    )


class CommentAddedData(TicketEventData):
    """A comment; internal notes are for staff only, never for customers."""

    comment_id: str
    body: str
    internal: bool
    is_first_response: bool = Field(
        description="The first public reply of an agent (ends the first-response SLA)."
    )
    acknowledgment: bool = Field(
        default=False,
        description=(
            "An automation's acknowledgment of the new ticket (a workflow's"
            " send_acknowledgment step). The customer was sent the one"
            " acknowledgment e-mail when the ticket was opened, so the"
            " notifier does not send this comment again."
        ),
    )
    merged_from: str | None = Field(
        default=None,
        description=(
            "A comment a merge carried over (actor: the `ticket-merge`"
            " automation): the ticket merged into this one, whose description"
            " and comments it quotes. The merge's own notices tell people, so"
            " the notifier does not send it. Null otherwise, and on events"
            " stored before this field existed."
        ),
    )
    solution: bool = Field(
        default=False,
        description=(
            "An agent's public reply marked as the solution to the problem"
            " (events recorded before the flag existed: false)."
        ),
    )


class AttachmentAddedData(TicketEventData):
    """A file's metadata (the bytes are fetched from the API)."""

    attachment_id: str
    filename: str
    content_type: str
    size: int = Field(ge=0, description="In bytes.")
    sha256: str


class TicketEscalatedData(TicketEventData):
    """The ticket was escalated one level, possibly to another team."""

    level: int = Field(ge=1, description="The escalation level reached.")
    team: str | None = Field(description="The team that has the ticket now.")
    reason: str
    assignee_id: str | None = Field(
        description="Kept when the team stays the same; else the new team's agent "
        "picked by assignment, or null (waiting in the team's queue)."
    )
    rule: str | None = Field(
        default=None, description="The escalation rule that fired; null: a person."
    )
    assignment: dict[str, Any] | None = Field(
        default=None, description="How the new team's agent was picked."
    )


class EscalationRequestedData(TicketEventData):
    """An escalation rule fired that needs a supervisor's approval."""

    level: int = Field(ge=1)
    team: str
    rule: str
    reason: str


class EscalationApprovedData(TicketEventData):
    """A supervisor approved the pending escalation (TicketEscalated follows)."""

    level: int = Field(ge=1)
    comment: str


class EscalationRejectedData(TicketEventData):
    """A supervisor rejected it; the rule does not ask for this level again."""

    level: int = Field(ge=1)
    comment: str


SLATarget = Literal["first_response", "resolution", "next_reply"]


class SLAStartedData(TicketEventData):
    """An SLA clock started: its due time, warning point and why."""

    target: SLATarget
    target_minutes: float = Field(description="Business minutes allowed.")
    due_at: AwareDatetime | None = Field(description="Null when paused at once.")
    warning_at: AwareDatetime | None
    policy: dict[str, Any] = Field(
        description="The policy snapshot: name, settings version, calendar, "
        "targets per priority, warning percent, pausing statuses."
    )
    explanation: dict[str, Any] = Field(
        description="Policy and version, calendar, target minutes, pauses."
    )


class SLARecalculatedData(SLAStartedData):
    """A running clock's due time was recomputed (priority, category or policy)."""


class SLAPausedData(TicketEventData):
    """A clock paused because the ticket entered a pausing status."""

    target: SLATarget
    status: TicketStatus


class SLAResumedData(TicketEventData):
    """A clock resumed; the due time moved out by the paused business time."""

    target: SLATarget
    due_at: AwareDatetime | None
    warning_at: AwareDatetime | None
    paused_minutes: float = Field(description="Business minutes paused so far.")
    explanation: dict[str, Any]


class SLAStoppedData(TicketEventData):
    """A clock stopped: met, breached (stopped late), or stopped (not owed)."""

    target: SLATarget
    outcome: Literal["met", "breached", "stopped"]
    business_minutes_used: float


class SLAWarningData(TicketEventData):
    """A clock passed its warning point (a share of its target)."""

    target: SLATarget
    due_at: AwareDatetime
    business_minutes_left: float


class SLABreachedData(TicketEventData):
    """A clock passed its due time. Recorded once per clock."""

    target: SLATarget
    due_at: AwareDatetime
    business_minutes_used: float


class TicketResolvedData(TicketEventData):
    """The ticket was resolved, with a resolution code and note."""

    resolution_code: str
    resolution: str


class TicketReopenedData(TicketEventData):
    """A resolved ticket was reopened (status open)."""

    reason: str


class TicketClosedData(TicketEventData):
    """The ticket was closed; closed is final."""

    reason: str = Field(description='"closed", or "merged" when merged into another.')


class TicketMergedData(TicketEventData):
    """This ticket was merged into another one.

    A TicketLinked (merged_into) and a TicketClosed (reason merged) follow;
    the other ticket records a TicketLinked (merged_from) and the comments
    carried over (CommentAdded with merged_from).
    """

    into_ticket_id: str
    into_number: int | None = Field(
        default=None,
        description="The other ticket's number (null on events stored before it).",
    )
    into_assignee_id: str | None = Field(
        default=None,
        description="The other ticket's assignee at the merge (who is told of it).",
    )
    cross_customer: bool = Field(
        default=False,
        description=(
            "The other ticket belongs to another customer (the request"
            " confirmed it): what was carried over is internal there."
        ),
    )


class TicketLinkedData(TicketEventData):
    """The ticket was linked to another one."""

    linked_ticket_id: str
    relation: LinkRelation


class TimeLoggedData(TicketEventData):
    """An agent logged time on the ticket (staff only; customers never see it)."""

    entry_id: str = Field(description="The time entry's id.")
    agent_id: str = Field(description="Whose time it is.")
    minutes: int = Field(description="Minutes spent, 1 to 1440.")
    billable: bool = Field(description="Billed to the customer.")
    work_type: TimeEntryType = Field(description="What the time went on.")
    note: str = Field(description="The agent's note (personal data; may be empty).")


class TimeEntryRemovedData(TicketEventData):
    """A time entry was taken back (a correction logs the right one anew)."""

    entry_id: str = Field(description="The time entry removed.")


class SubjectErasedData(TicketEventData):
    """The customer's personal data on this ticket was erased.

    Its key is destroyed: every earlier event of the ticket, read or
    replayed from now on, carries `"[erased]"` in its personal fields
    (title, description, address, name, custom field values, comment
    bodies, attachment names, reasons and notes). Subscribers that kept
    any of those for this ticket delete them now. The facts (states,
    times, SLA figures, teams, agents) stay.
    """

    subject_id: str = Field(description="The data subject: the ticket's customer id.")
    request_id: str = Field(
        description="The privacy request (GET /api/v1/privacy/requests)."
    )
    reason: Literal["request", "retention"] = Field(
        description="Asked for by an admin, or the tenant's retention period."
    )


class SatisfactionRatedData(TicketEventData):
    """The customer rated the resolved ticket (1 to 5)."""

    rating: int = Field(ge=1, le=5)
    comment: str


class WorkflowStartedData(TicketEventData):
    """The ticket's workflow started (chosen by category in the tenant settings)."""

    workflow_type: str
    steps: list[str] = Field(description="The steps in order.")


class WorkflowStepCompletedData(TicketEventData):
    """A step succeeded: its data, and the changes it made to the ticket."""

    step: str
    attempt: int = Field(ge=1)
    data: dict[str, Any]
    message: str
    next_step: str | None = Field(description="Null: the workflow is done.")
    skipped: list[str] = Field(description="Steps passed over by a branch.")
    actions: list[dict[str, Any]] = Field(
        description="Ticket changes saved with this record (comment, categorize, "
        "assign, escalate, status, resolve, close)."
    )


class WorkflowStepWaitingData(TicketEventData):
    """A step waits for a person, a change of the ticket, or a time."""

    step: str
    attempt: int = Field(ge=1)
    message: str
    data: dict[str, Any]
    wake_at: AwareDatetime | None


class WorkflowStepFailedData(TicketEventData):
    """A step failed; it is tried again at retry_at (null: not automatically)."""

    step: str
    attempt: int = Field(ge=1)
    error: str
    retry_at: AwareDatetime | None


class WorkflowStepDueData(TicketEventData):
    """A step is to run again: a retry, a wake-up, or a person's retry."""

    step: str
    attempt: int = Field(ge=1)
    reason: Literal["retry", "wake", "manual retry"]


class WorkflowCancelledData(TicketEventData):
    """The ticket closed (or was merged) before its workflow finished."""

    workflow_type: str
    step: str | None = Field(description="The step it was at.")
    reason: str


class WorkflowCompletedData(TicketEventData):
    """Every step of the workflow is done."""

    workflow_type: str


TRACEPARENT_PATTERN = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
TRACEPARENT_DESCRIPTION = (
    "Extension attribute (CloudEvents distributed tracing): the W3C trace"
    " context of the request, or of the event, that caused this event, so a"
    " notification or a workflow step can be tied to it. Absent when nothing"
    " traced caused it (a deadline, an event stored before traces were kept)."
)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode.

    Kafka record: key = the ticket id, header ``content-type:
    application/cloudevents+json``, value = this object as JSON.
    """

    # Fields with defaults are always present in published JSON: say so.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )

    specversion: Literal["1.0"] = CLOUDEVENTS_SPEC_VERSION
    id: str = Field(
        description="`<ticket id>:<version>`: unique per event, the idempotency key."
    )
    source: str = Field(min_length=1, description="The producing service (URI-ref).")
    type: str = Field(description="`ticketing.ticket.<snake_case event>.v1`.")
    subject: str = Field(description="The ticket id.")
    time: AwareDatetime = Field(description="When the event happened (UTC).")
    datacontenttype: Literal["application/json"] = DATA_CONTENT_TYPE
    tenantid: str = Field(description="Extension attribute: the ticket's tenant.")
    # Absent on events that did not come from the store (built by hand).
    logposition: Annotated[
        int | None,
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 1,
                "description": LOG_POSITION_DESCRIPTION,
            }
        ),
    ] = Field(
        default=None,
        ge=1,
        exclude_if=lambda value: value is None,
        json_schema_extra=_drop_default,
    )
    # The CloudEvents distributed-tracing extension: the W3C trace context of
    # the request (or event) that caused this one; absent when none did.
    traceparent: Annotated[
        str | None,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": TRACEPARENT_PATTERN,
                "description": TRACEPARENT_DESCRIPTION,
            }
        ),
    ] = Field(
        default=None,
        pattern=TRACEPARENT_PATTERN,
        exclude_if=lambda value: value is None,
        json_schema_extra=_drop_default,
    )
    data: dict[str, Any] = Field(description="The event's data; schema by `type`.")
