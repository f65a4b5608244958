"""The Ticket aggregate's events: what each records, and how it changes the ticket.

Each event's ``apply`` only records the decided outcome, because it runs
again on every replay; the decisions are the ticket's (``domain.ticket``)
and its value objects' (``domain.sla_clocks``, ``domain.workflow_run``).
Every event has an explicit, stable topic: stored events name their class
by it, so these classes may move (they were nested in ``Ticket``; the
aggregate still names them, ``Ticket.SLAStarted``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import eventsourcing.domain
from eventsourcing.domain import Aggregate

from dotmac.ticketing.domain.enums import (
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from dotmac.ticketing.domain.personal_paths import erased, personal_paths
from dotmac.ticketing.domain.sla_clocks import SlaClock, SlaClocks
from dotmac.ticketing.domain.workflow_run import (
    StepFailure,
    StepRecord,
    StepWait,
    WorkflowRun,
)

if TYPE_CHECKING:
    from dotmac.ticketing.domain.ticket import Ticket

TOPIC_PREFIX = "ticketing.ticket"
_TOPIC = TOPIC_PREFIX


class Event(Aggregate.Event):
    """Every ticket event says which tenant and who or what caused it."""

    tenant_id: str
    actor: dict[str, str]
    correlation_id: str | None
    causation_id: str | None

    def mutate(self, aggregate: Any) -> Any:
        ticket = super().mutate(aggregate)
        # Timers and workflows acting on a ticket are not activity: an
        # escalation "untouched for an hour" must not be reset by them.
        if ticket is not None and self.actor.get("kind") != "automation":
            ticket.last_activity_at = self.timestamp
        return ticket


class TicketCreated(Event, Aggregate.Created):
    TOPIC = f"{_TOPIC}:TicketCreated.v1"
    number: int
    title: str
    description: str
    category: str
    priority: str
    channel: str
    customer_id: str
    customer_email: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    # Stored events from before the field have none.
    customer_name: str | None = None

    def apply(self, aggregate: Ticket) -> None:
        t = aggregate
        t.tenant_id = self.tenant_id
        t.number = self.number
        t.title = self.title
        t.description = self.description
        t.category = TicketCategory(self.category)
        t.priority = TicketPriority(self.priority)
        t.channel = TicketChannel(self.channel)
        t.status = TicketStatus.NEW
        t.customer_id = self.customer_id
        t.customer_email = self.customer_email
        t.customer_name = self.customer_name
        t.tags = list(self.tags)
        t.custom_fields = dict(self.custom_fields)
        t.assignee_id = None
        t.assigned_team = None
        t.escalation_level = 0
        t.first_response_at = None
        t.resolved_at = None
        t.closed_at = None
        t.resolution = None
        t.reopen_count = 0
        t.merged_into = None
        t.links = []
        t.comments = []
        t.attachments = []
        t.resolution_pauses = []
        t.created_by = dict(self.actor)
        t.satisfaction = None
        t.sla_policy = None
        t.sla_clocks = SlaClocks()
        t.escalation_requests = []


class Snapshot(eventsourcing.domain.Snapshot):
    """A ticket's state at a version; its enums come back as enums.

    JSON stores a ``StrEnum`` as its plain string, so without this a
    ticket loaded from a snapshot would have ``status == "open"`` but
    no ``status.value`` for the commands that read it.
    """

    TOPIC = f"{_TOPIC}:Snapshot.v1"

    @classmethod
    def take(cls, aggregate: Any) -> Any:
        """The state with its value objects as the plain data stored before."""
        taken = super().take(aggregate)
        state = dict(taken.state)
        if isinstance(state.get("sla_clocks"), SlaClocks):
            state["sla_clocks"] = state["sla_clocks"].to_state()
        if isinstance(state.get("workflow"), WorkflowRun):
            state["workflow"] = state["workflow"].to_state()
        return cls(
            originator_id=taken.originator_id,
            originator_version=taken.originator_version,
            timestamp=taken.timestamp,
            topic=taken.topic,
            state=state,
        )

    def mutate(self, _: None) -> Any:
        ticket = super().mutate(_)
        state = vars(ticket)
        for name, kind in (
            ("status", TicketStatus),
            ("priority", TicketPriority),
            ("category", TicketCategory),
            ("channel", TicketChannel),
        ):
            state[name] = kind(state[name])
        if "sla_clocks" in state:
            state["sla_clocks"] = SlaClocks.from_state(state["sla_clocks"])
        if state.get("workflow") is not None:
            state["workflow"] = WorkflowRun.from_state(state["workflow"])
        return ticket


class TicketUpdated(Event):
    TOPIC = f"{_TOPIC}:TicketUpdated.v1"
    changes: dict[str, Any]
    previous: dict[str, Any]

    def apply(self, aggregate: Ticket) -> None:
        for name, value in self.changes.items():
            setattr(aggregate, name, value)


class TicketCategorized(Event):
    TOPIC = f"{_TOPIC}:TicketCategorized.v1"
    category: str
    previous_category: str
    confidence: float | None

    def apply(self, aggregate: Ticket) -> None:
        aggregate.category = TicketCategory(self.category)
        aggregate.category_set_by = str(self.actor.get("kind", "user"))


class PriorityChanged(Event):
    TOPIC = f"{_TOPIC}:PriorityChanged.v1"
    priority: str
    previous_priority: str
    reason: str | None

    def apply(self, aggregate: Ticket) -> None:
        aggregate.priority = TicketPriority(self.priority)


class TicketAssigned(Event):
    TOPIC = f"{_TOPIC}:TicketAssigned.v1"
    assignee_id: str | None
    team: str | None
    previous_assignee_id: str | None
    previous_team: str | None
    status: str
    #: Automatic assignments say why: rule, strategy, loads or skills.
    reason: dict[str, Any] | None = None

    def apply(self, aggregate: Ticket) -> None:
        aggregate.assignee_id = self.assignee_id
        aggregate.assigned_team = self.team
        aggregate._enter_status(TicketStatus(self.status), self.timestamp)


class TicketUnassigned(Event):
    TOPIC = f"{_TOPIC}:TicketUnassigned.v1"
    previous_assignee_id: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.assignee_id = None


class StatusChanged(Event):
    TOPIC = f"{_TOPIC}:StatusChanged.v1"
    status: str
    previous_status: str
    reason: str | None
    #: An automatic change says what caused it (the customer's comment or
    #: attachment: its event, version and id); None: a person changed it.
    cause: dict[str, Any] | None = None

    def apply(self, aggregate: Ticket) -> None:
        aggregate._enter_status(TicketStatus(self.status), self.timestamp)


class CommentAdded(Event):
    TOPIC = f"{_TOPIC}:CommentAdded.v1"
    comment_id: str
    body: str
    internal: bool
    is_first_response: bool
    #: An automation acknowledging the new ticket: the customer had the
    #: acknowledgment e-mail when the ticket was opened, so the notifier
    #: does not send it again. (Stored events before it: False.)
    acknowledgment: bool = False
    #: A comment a merge carried over: the id of the ticket merged into
    #: this one, whose description and comments it quotes (the merge
    #: notifies; the notifier does not send this comment). Stored
    #: events before it: None.
    merged_from: str | None = None
    #: An agent's public reply marked as the solution to the problem (a
    #: workflow waiting for the solution completes on it; a plain reply,
    #: a question for instance, does not). (Stored events before it: False.)
    solution: bool = False

    def apply(self, aggregate: Ticket) -> None:
        aggregate.comments.append(
            {
                "id": self.comment_id,
                "body": self.body,
                "internal": self.internal,
                "author_id": self.actor["id"],
                "author_role": self.actor["role"],
                "created_at": self.timestamp,
                "solution": self.solution,
            }
        )
        if self.is_first_response:
            aggregate.first_response_at = self.timestamp


class AttachmentAdded(Event):
    TOPIC = f"{_TOPIC}:AttachmentAdded.v1"
    attachment_id: str
    filename: str
    content_type: str
    size: int
    sha256: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.attachments.append(
            {
                "id": self.attachment_id,
                "filename": self.filename,
                "content_type": self.content_type,
                "size": self.size,
                "sha256": self.sha256,
                "uploaded_by": self.actor["id"],
                "created_at": self.timestamp,
            }
        )


class TicketEscalated(Event):
    TOPIC = f"{_TOPIC}:TicketEscalated.v1"
    level: int
    team: str | None
    reason: str
    assignee_id: str | None
    #: The escalation rule that fired (None: a person escalated).
    rule: str | None = None
    #: How the new team's agent was picked, when one was.
    assignment: dict[str, Any] | None = None

    def apply(self, aggregate: Ticket) -> None:
        aggregate.escalation_level = self.level
        aggregate.assigned_team = self.team
        aggregate.assignee_id = self.assignee_id


class EscalationRequested(Event):
    TOPIC = f"{_TOPIC}:EscalationRequested.v1"
    level: int
    team: str
    rule: str
    reason: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate._requests().append(
            {
                "level": self.level,
                "team": self.team,
                "rule": self.rule,
                "reason": self.reason,
                "state": "pending",
                "requested_at": self.timestamp,
                "decided_at": None,
                "decided_by": None,
                "comment": None,
            }
        )


class EscalationApproved(Event):
    TOPIC = f"{_TOPIC}:EscalationApproved.v1"
    level: int
    comment: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate._decide_request(self, "approved")


class EscalationRejected(Event):
    TOPIC = f"{_TOPIC}:EscalationRejected.v1"
    level: int
    comment: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate._decide_request(self, "rejected")


# -- SLA clocks: each event records a decided due time and why ------------


class SLAStarted(Event):
    TOPIC = f"{_TOPIC}:SLAStarted.v1"
    target: str
    target_minutes: float
    due_at: datetime | None
    warning_at: datetime | None
    policy: dict[str, Any]
    explanation: dict[str, Any]

    def apply(self, aggregate: Ticket) -> None:
        aggregate.sla_policy = dict(self.policy)
        aggregate._set_clock(
            self.target,
            SlaClock.started(
                at=self.timestamp,
                target_minutes=self.target_minutes,
                due_at=self.due_at,
                warning_at=self.warning_at,
                explanation=self.explanation,
            ),
        )


class SLARecalculated(Event):
    TOPIC = f"{_TOPIC}:SLARecalculated.v1"
    target: str
    target_minutes: float
    due_at: datetime | None
    warning_at: datetime | None
    policy: dict[str, Any]
    explanation: dict[str, Any]

    def apply(self, aggregate: Ticket) -> None:
        aggregate.sla_policy = dict(self.policy)
        clock = aggregate._clocks()[self.target]
        aggregate._set_clock(
            self.target,
            clock.with_targets(
                at=self.timestamp,
                target_minutes=self.target_minutes,
                due_at=self.due_at,
                warning_at=self.warning_at,
                explanation=self.explanation,
            ),
        )


class SLAPaused(Event):
    TOPIC = f"{_TOPIC}:SLAPaused.v1"
    target: str
    status: str

    def apply(self, aggregate: Ticket) -> None:
        clock = aggregate._clocks()[self.target]
        aggregate._set_clock(self.target, clock.with_pause(self.timestamp))


class SLAResumed(Event):
    TOPIC = f"{_TOPIC}:SLAResumed.v1"
    target: str
    due_at: datetime | None
    warning_at: datetime | None
    paused_minutes: float
    explanation: dict[str, Any]

    def apply(self, aggregate: Ticket) -> None:
        clock = aggregate._clocks()[self.target]
        aggregate._set_clock(
            self.target,
            clock.resumed(
                at=self.timestamp,
                due_at=self.due_at,
                warning_at=self.warning_at,
                explanation=self.explanation,
            ),
        )


class SLAStopped(Event):
    TOPIC = f"{_TOPIC}:SLAStopped.v1"
    target: str
    outcome: str
    business_minutes_used: float

    def apply(self, aggregate: Ticket) -> None:
        clock = aggregate._clocks()[self.target]
        aggregate._set_clock(
            self.target,
            clock.stopped(
                at=self.timestamp,
                outcome=self.outcome,
                minutes_used=self.business_minutes_used,
            ),
        )


class SLAWarning(Event):
    TOPIC = f"{_TOPIC}:SLAWarning.v1"
    target: str
    due_at: datetime
    business_minutes_left: float

    def apply(self, aggregate: Ticket) -> None:
        clock = aggregate._clocks()[self.target]
        aggregate._set_clock(self.target, clock.with_warning())


class SLABreached(Event):
    TOPIC = f"{_TOPIC}:SLABreached.v1"
    target: str
    due_at: datetime
    business_minutes_used: float

    def apply(self, aggregate: Ticket) -> None:
        clock = aggregate._clocks()[self.target]
        aggregate._set_clock(self.target, clock.with_breach())


# -- the workflow of the ticket's type -----------------------------------


class WorkflowStarted(Event):
    TOPIC = f"{_TOPIC}:WorkflowStarted.v1"
    workflow_type: str
    steps: list[str]

    def apply(self, aggregate: Ticket) -> None:
        aggregate.workflow = WorkflowRun.started(
            self.workflow_type,
            self.steps,
            at=self.timestamp,
            version=self.originator_version,
        )


class WorkflowStepCompleted(Event):
    TOPIC = f"{_TOPIC}:WorkflowStepCompleted.v1"
    step: str
    attempt: int
    data: dict[str, Any]
    message: str
    next_step: str | None
    skipped: list[str]
    actions: list[dict[str, Any]]

    def apply(self, aggregate: Ticket) -> None:
        record = StepRecord(
            data=dict(self.data),
            message=self.message,
            completed_at=self.timestamp,
            completed_by=dict(self.actor),
            actions=tuple(self.actions),
        )
        aggregate.workflow = aggregate._workflow().with_step_completed(
            self.step,
            record,
            next_step=self.next_step,
            skipped=self.skipped,
            version=self.originator_version,
        )


class WorkflowStepWaiting(Event):
    TOPIC = f"{_TOPIC}:WorkflowStepWaiting.v1"
    step: str
    attempt: int
    message: str
    data: dict[str, Any]
    wake_at: datetime | None

    def apply(self, aggregate: Ticket) -> None:
        wait = StepWait(
            message=self.message,
            data=dict(self.data),
            wake_at=self.wake_at,
            since=self.timestamp,
            since_version=self.originator_version,
        )
        aggregate.workflow = aggregate._workflow().with_wait(wait)


class WorkflowStepFailed(Event):
    TOPIC = f"{_TOPIC}:WorkflowStepFailed.v1"
    step: str
    attempt: int
    error: str
    #: When the step is tried again; None: not automatically.
    retry_at: datetime | None

    def apply(self, aggregate: Ticket) -> None:
        failure = StepFailure(
            attempt=self.attempt,
            error=self.error,
            retry_at=self.retry_at,
            failed_at=self.timestamp,
        )
        aggregate.workflow = aggregate._workflow().with_failure(failure)


class WorkflowStepDue(Event):
    TOPIC = f"{_TOPIC}:WorkflowStepDue.v1"
    step: str
    attempt: int
    #: retry (after a failure), wake (a waiting step's time came) or
    #: manual retry (asked for through the API).
    reason: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.workflow = aggregate._workflow().with_step_due(
            self.attempt, version=self.originator_version
        )


class WorkflowCompleted(Event):
    TOPIC = f"{_TOPIC}:WorkflowCompleted.v1"
    workflow_type: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.workflow = aggregate._workflow().completed(self.timestamp)


class WorkflowCancelled(Event):
    TOPIC = f"{_TOPIC}:WorkflowCancelled.v1"
    workflow_type: str
    #: The step it was at: waiting, running or failed.
    step: str | None
    reason: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.workflow = aggregate._workflow().cancelled(self.timestamp, self.step)


class TicketResolved(Event):
    TOPIC = f"{_TOPIC}:TicketResolved.v1"
    resolution_code: str
    resolution: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate._enter_status(TicketStatus.RESOLVED, self.timestamp)
        aggregate.resolved_at = self.timestamp
        aggregate.resolution = {
            "code": self.resolution_code,
            "note": self.resolution,
        }


class TicketReopened(Event):
    TOPIC = f"{_TOPIC}:TicketReopened.v1"
    reason: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate._enter_status(TicketStatus.OPEN, self.timestamp)
        aggregate.reopen_count += 1
        aggregate.resolved_at = None
        aggregate.resolution = None


class TicketClosed(Event):
    TOPIC = f"{_TOPIC}:TicketClosed.v1"
    reason: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate._enter_status(TicketStatus.CLOSED, self.timestamp)
        aggregate.closed_at = self.timestamp


class TicketMerged(Event):
    TOPIC = f"{_TOPIC}:TicketMerged.v1"
    into_ticket_id: str
    # Stored events before these: None, None, False.
    #: The target's number, and its assignee then (who is told).
    into_number: int | None = None
    into_assignee_id: str | None = None
    #: The target belongs to another customer (confirmed by the request).
    cross_customer: bool = False

    def apply(self, aggregate: Ticket) -> None:
        aggregate.merged_into = self.into_ticket_id


class SatisfactionRated(Event):
    TOPIC = f"{_TOPIC}:SatisfactionRated.v1"
    rating: int
    comment: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.satisfaction = {"rating": self.rating, "comment": self.comment}


class TicketLinked(Event):
    TOPIC = f"{_TOPIC}:TicketLinked.v1"
    linked_ticket_id: str
    relation: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.links.append(
            {"ticket_id": self.linked_ticket_id, "relation": self.relation}
        )


class TimeLogged(Event):
    """An agent spent ``minutes`` on the ticket (staff only: customers never
    see time entries)."""

    TOPIC = f"{_TOPIC}:TimeLogged.v1"
    entry_id: str
    #: Whose time it is (the caller, or the agent a supervisor logged for).
    agent_id: str
    minutes: int
    billable: bool
    #: What the time went on (``enums.TimeEntryType``).
    work_type: str
    #: The agent's own words about the work (personal text).
    note: str

    def apply(self, aggregate: Ticket) -> None:
        entries = list(aggregate.time_entries or [])
        entries.append(
            {
                "id": self.entry_id,
                "agent_id": self.agent_id,
                "minutes": self.minutes,
                "billable": self.billable,
                "work_type": self.work_type,
                "note": self.note,
                "logged_by": self.actor["id"],
                "logged_at": self.timestamp,
            }
        )
        aggregate.time_entries = entries


class TimeEntryRemoved(Event):
    """A time entry was taken back (a correction: log the right one anew)."""

    TOPIC = f"{_TOPIC}:TimeEntryRemoved.v1"
    entry_id: str

    def apply(self, aggregate: Ticket) -> None:
        aggregate.time_entries = [
            e for e in aggregate.time_entries or [] if e["id"] != self.entry_id
        ]


#: Where a ticket's state holds its customer's personal data (its snapshot
#: seals these; ``domain.personal_data`` names the events' fields).
PERSONAL_STATE: tuple[str, ...] = (
    "title",
    "description",
    "customer_email",
    "customer_name",
    "custom_fields.*",
    "comments.*.body",
    "attachments.*.filename",
    "resolution.note",
    "satisfaction.comment",
    "escalation_requests.*.comment",
    "time_entries.*.note",
    "workflow.results.*.message",
    "workflow.results.*.data.*",
    "workflow.waiting.message",
    "workflow.waiting.data.*",
)


class SubjectErased(Event):
    """The customer's personal data on this ticket was erased: its key is
    destroyed, so every earlier event reads ``"[erased]"`` in its personal
    fields. Carries no personal data itself; subscribers forget theirs."""

    TOPIC = f"{_TOPIC}:SubjectErased.v1"
    #: The data subject: the ticket's customer.
    subject_id: str
    #: The privacy request that erased it (GET /privacy/requests).
    request_id: str
    #: "request" (an erasure asked for) or "retention" (the tenant's period).
    reason: str

    def apply(self, aggregate: Ticket) -> None:
        state = dict(vars(aggregate))
        workflow = state.get("workflow")
        if isinstance(workflow, WorkflowRun):
            state["workflow"] = workflow.to_state()
        blank = erased(state, personal_paths(state, PERSONAL_STATE))
        if isinstance(workflow, WorkflowRun):
            blank["workflow"] = WorkflowRun.from_state(blank["workflow"])
        # No address to write to any more.
        blank["customer_email"] = None
        vars(aggregate).update(blank)
        aggregate.personal_data_erased_at = self.timestamp
