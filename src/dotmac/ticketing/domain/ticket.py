"""The Ticket aggregate: one event stream per ticket.

Public command methods validate and decide; each event's ``apply`` only
records the decided outcome, because it runs again on every replay. Events
therefore carry results (the new status, the resulting assignee), not
inputs to rules that may change. Every event has an explicit, stable topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

from eventsourcing.domain import Aggregate

from dotmac.ticketing.domain import (
    ticket_conversation,
    ticket_escalation,
    ticket_sla,
    ticket_workflow,
    trace_context,
)
from dotmac.ticketing.domain import ticket_events as events
from dotmac.ticketing.domain import time_entries as time_tracking
from dotmac.ticketing.domain.enums import (
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.lifecycle import (
    Command,
    ensure_allowed,
    ensure_status_change,
    status_after_assignment,
)
from dotmac.ticketing.domain.limits import (
    COMMENT_MAX,
    DESCRIPTION_MAX,
    NAME_MAX,
    REASON_MAX,
    TEAM_MAX,
)
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.sla import SLAPolicy
from dotmac.ticketing.domain.sla_clocks import (
    SlaClocks,
)
from dotmac.ticketing.domain.ticket_validation import (
    _optional_text,
    _valid_custom_fields,
    _valid_text,
    _valid_title,
    normalize_tags,
)
from dotmac.ticketing.domain.workflow_run import (
    WorkflowRun,
)

_TOPIC = events.TOPIC_PREFIX


class Ticket(Aggregate):
    """A customer's request, from creation to closure."""

    TOPIC = f"{_TOPIC}:Ticket"

    # State, set by the events below. Declared for readers and type checkers.
    tenant_id: str
    number: int
    title: str
    description: str
    category: TicketCategory
    priority: TicketPriority
    channel: TicketChannel
    status: TicketStatus
    customer_id: str
    customer_email: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    assignee_id: str | None
    assigned_team: str | None
    escalation_level: int
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution: dict[str, str] | None
    reopen_count: int
    merged_into: str | None
    links: list[dict[str, str]]
    comments: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    resolution_pauses: list[dict[str, datetime | None]]
    created_by: dict[str, str]
    # Defaults for tickets snapshotted before these existed.
    satisfaction: dict[str, Any] | None = None
    #: The customer's name as the ticket was opened with it (mail greets them
    #: by it); None for tickets opened without, and before the field existed.
    customer_name: str | None = None
    #: The SLA policy snapshot the ticket is measured against (``SLAStarted``).
    sla_policy: dict[str, Any] | None = None
    #: One clock per SLA target: start, pauses, due and warning times, outcome.
    sla_clocks: SlaClocks | None = None
    #: When a person (not an automation) last did something to the ticket.
    last_activity_at: datetime | None = None
    #: Escalations asked for by rules that need a supervisor's approval.
    escalation_requests: list[dict[str, Any]] | None = None
    #: The ticket's workflow: its steps, where it stands, each step's result.
    workflow: WorkflowRun | None = None
    #: Who last set the category: "user" (a person) or "automation".
    category_set_by: str | None = None
    #: When the customer's personal data on it was last erased.
    personal_data_erased_at: datetime | None = None
    #: The time agents logged on it (``domain.time_entries``), oldest first.
    time_entries: list[dict[str, Any]] | None = None

    def __init__(self) -> None:
        # The state above is set by TicketCreated.apply; an explicit __init__
        # keeps the library from turning the annotations into constructor
        # arguments.
        pass

    # The events (domain.ticket_events), named as the aggregate's own.
    Event: TypeAlias = events.Event
    TicketCreated: TypeAlias = events.TicketCreated
    # The library defines a ``Created`` class unless the aggregate has one.
    Created: TypeAlias = events.TicketCreated
    Snapshot: TypeAlias = events.Snapshot
    TicketUpdated: TypeAlias = events.TicketUpdated
    TicketCategorized: TypeAlias = events.TicketCategorized
    PriorityChanged: TypeAlias = events.PriorityChanged
    TicketAssigned: TypeAlias = events.TicketAssigned
    TicketUnassigned: TypeAlias = events.TicketUnassigned
    StatusChanged: TypeAlias = events.StatusChanged
    CommentAdded: TypeAlias = events.CommentAdded
    AttachmentAdded: TypeAlias = events.AttachmentAdded
    TicketEscalated: TypeAlias = events.TicketEscalated
    EscalationRequested: TypeAlias = events.EscalationRequested
    EscalationApproved: TypeAlias = events.EscalationApproved
    EscalationRejected: TypeAlias = events.EscalationRejected
    SLAStarted: TypeAlias = events.SLAStarted
    SLARecalculated: TypeAlias = events.SLARecalculated
    SLAPaused: TypeAlias = events.SLAPaused
    SLAResumed: TypeAlias = events.SLAResumed
    SLAStopped: TypeAlias = events.SLAStopped
    SLAWarning: TypeAlias = events.SLAWarning
    SLABreached: TypeAlias = events.SLABreached
    WorkflowStarted: TypeAlias = events.WorkflowStarted
    WorkflowStepCompleted: TypeAlias = events.WorkflowStepCompleted
    WorkflowStepWaiting: TypeAlias = events.WorkflowStepWaiting
    WorkflowStepFailed: TypeAlias = events.WorkflowStepFailed
    WorkflowStepDue: TypeAlias = events.WorkflowStepDue
    WorkflowCompleted: TypeAlias = events.WorkflowCompleted
    WorkflowCancelled: TypeAlias = events.WorkflowCancelled
    TicketResolved: TypeAlias = events.TicketResolved
    TicketReopened: TypeAlias = events.TicketReopened
    TicketClosed: TypeAlias = events.TicketClosed
    TicketMerged: TypeAlias = events.TicketMerged
    SatisfactionRated: TypeAlias = events.SatisfactionRated
    TicketLinked: TypeAlias = events.TicketLinked
    SubjectErased: TypeAlias = events.SubjectErased
    TimeLogged: TypeAlias = events.TimeLogged
    TimeEntryRemoved: TypeAlias = events.TimeEntryRemoved

    # ------------------------------------------------------------------
    # Commands. Each validates, decides, and triggers one or more events.

    @classmethod
    def create(
        cls,
        *,
        ticket_id: UUID,
        number: int,
        title: str,
        description: str,
        category: TicketCategory,
        priority: TicketPriority,
        channel: TicketChannel,
        customer_id: str,
        customer_email: str | None,
        tags: list[str],
        custom_fields: dict[str, Any],
        provenance: Provenance,
        at: datetime,
        sla_policy: SLAPolicy | None = None,
        customer_name: str | None = None,
    ) -> Ticket:
        """Open a ticket; with a policy, its SLA clocks start at once."""
        ticket = cls._create(
            cls.TicketCreated,
            id=ticket_id,
            timestamp=at,
            number=number,
            title=_valid_title(title),
            description=_valid_text("description", description, DESCRIPTION_MAX),
            category=TicketCategory(category).value,
            priority=TicketPriority(priority).value,
            channel=TicketChannel(channel).value,
            customer_id=_valid_text("customer_id", customer_id, 200, required=True),
            customer_email=customer_email,
            customer_name=_optional_text("customer_name", customer_name, NAME_MAX),
            tags=normalize_tags(tags),
            custom_fields=_valid_custom_fields(custom_fields),
            **provenance.event_fields(),
        )
        trace_context.stamp(ticket.pending_events[-1], provenance.traceparent)
        if sla_policy is not None:
            ticket._start_clocks(sla_policy, provenance, at)
        return ticket

    def update(
        self,
        *,
        provenance: Provenance,
        at: datetime,
        title: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        custom_fields: dict[str, Any] | None = None,
    ) -> bool:
        """Change descriptive fields; returns False when nothing changed."""
        ensure_allowed(Command.UPDATE, self.status)
        proposed: dict[str, Any] = {}
        if title is not None:
            proposed["title"] = _valid_title(title)
        if description is not None:
            proposed["description"] = _valid_text(
                "description", description, DESCRIPTION_MAX
            )
        if tags is not None:
            proposed["tags"] = normalize_tags(tags)
        if custom_fields is not None:
            proposed["custom_fields"] = _valid_custom_fields(custom_fields)
        changes = {k: v for k, v in proposed.items() if getattr(self, k) != v}
        if not changes:
            return False
        previous = {k: getattr(self, k) for k in changes}
        self._trigger(
            self.TicketUpdated, provenance, at, changes=changes, previous=previous
        )
        return True

    def categorize(
        self,
        category: TicketCategory,
        *,
        provenance: Provenance,
        at: datetime,
        confidence: float | None = None,
        sla_policy: SLAPolicy | None = None,
    ) -> bool:
        """Set the category; a policy narrowed by category may move due times."""
        ensure_allowed(Command.CATEGORIZE, self.status)
        category = TicketCategory(category)
        if category == self.category:
            return False
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise InvalidCommand("confidence", "must be between 0 and 1")
        self._trigger(
            self.TicketCategorized,
            provenance,
            at,
            category=category.value,
            previous_category=self.category.value,
            confidence=confidence,
        )
        if sla_policy is not None:
            self.recalculate_sla(sla_policy, provenance=provenance, at=at)
        return True

    def change_priority(
        self,
        priority: TicketPriority,
        *,
        provenance: Provenance,
        at: datetime,
        reason: str | None = None,
        sla_policy: SLAPolicy | None = None,
    ) -> bool:
        """Change the priority and recompute the running SLA clocks' due times.

        ``sla_policy`` is the tenant's current policy; without one the
        ticket's own snapshot gives the new priority's targets.
        """
        ensure_allowed(Command.CHANGE_PRIORITY, self.status)
        priority = TicketPriority(priority)
        if priority == self.priority:
            return False
        self._trigger(
            self.PriorityChanged,
            provenance,
            at,
            priority=priority.value,
            previous_priority=self.priority.value,
            reason=_optional_text("reason", reason, REASON_MAX),
        )
        policy = sla_policy or self._policy()
        if policy is not None:
            self.recalculate_sla(policy, provenance=provenance, at=at)
        return True

    def assign(
        self,
        *,
        provenance: Provenance,
        at: datetime,
        assignee_id: str | None = None,
        team: str | None = None,
        reason: dict[str, Any] | None = None,
    ) -> bool:
        """Assign to a person, a team, or both; a new ticket becomes open.

        ``reason`` explains an automatic assignment (rule, strategy, loads).
        """
        ensure_allowed(Command.ASSIGN, self.status)
        assignee_id = _optional_text("assignee_id", assignee_id, 200)
        team = _optional_text("team", team, TEAM_MAX)
        if assignee_id is None and team is None:
            raise InvalidCommand("assignee_id", "give an assignee, a team, or both")
        new_assignee = assignee_id if assignee_id is not None else self.assignee_id
        new_team = team if team is not None else self.assigned_team
        new_status = status_after_assignment(self.status)
        if (new_assignee, new_team, new_status) == (
            self.assignee_id,
            self.assigned_team,
            self.status,
        ):
            return False
        self._trigger(
            self.TicketAssigned,
            provenance,
            at,
            assignee_id=new_assignee,
            team=new_team,
            previous_assignee_id=self.assignee_id,
            previous_team=self.assigned_team,
            status=new_status.value,
            reason=reason,
        )
        self._follow_sla(provenance, at)
        return True

    def unassign(self, *, provenance: Provenance, at: datetime) -> bool:
        ensure_allowed(Command.UNASSIGN, self.status)
        if self.assignee_id is None:
            return False
        self._trigger(
            self.TicketUnassigned,
            provenance,
            at,
            previous_assignee_id=self.assignee_id,
        )
        return True

    def change_status(
        self,
        status: TicketStatus,
        *,
        provenance: Provenance,
        at: datetime,
        reason: str | None = None,
    ) -> bool:
        status = TicketStatus(status)
        if not ensure_status_change(self.status, status):
            return False
        self._trigger(
            self.StatusChanged,
            provenance,
            at,
            status=status.value,
            previous_status=self.status.value,
            reason=_optional_text("reason", reason, REASON_MAX),
        )
        self._follow_sla(provenance, at)
        return True

    def resolve(
        self,
        *,
        resolution: str,
        resolution_code: str,
        provenance: Provenance,
        at: datetime,
    ) -> None:
        ensure_allowed(Command.RESOLVE, self.status)
        self._trigger(
            self.TicketResolved,
            provenance,
            at,
            resolution_code=_valid_text(
                "resolution_code", resolution_code, 100, required=True
            ),
            resolution=_valid_text("resolution", resolution, COMMENT_MAX),
        )
        self._stop_clocks_resolved(provenance, at)

    def reopen(self, *, reason: str, provenance: Provenance, at: datetime) -> None:
        ensure_allowed(Command.REOPEN, self.status)
        self._reopen(_valid_text("reason", reason, REASON_MAX), provenance, at)

    def _reopen(self, reason: str, provenance: Provenance, at: datetime) -> None:
        self._trigger(self.TicketReopened, provenance, at, reason=reason)
        self._restart_resolution(provenance, at)

    def close(
        self, *, provenance: Provenance, at: datetime, by_workflow: bool = False
    ) -> None:
        """Close a resolved ticket; an unfinished workflow ends with it.

        ``by_workflow``: the ticket's own workflow closes it (as its last
        step's change), so the workflow completes rather than being cancelled.
        """
        ensure_allowed(Command.CLOSE, self.status)
        self._trigger(self.TicketClosed, provenance, at, reason="closed")
        if not by_workflow:
            self._cancel_workflow("the ticket was closed", provenance, at)

    def rate_satisfaction(
        self, rating: int, *, comment: str, provenance: Provenance, at: datetime
    ) -> None:
        """The customer's rating (1 to 5) of a resolved ticket; a new one replaces."""
        ensure_allowed(Command.RATE, self.status)
        if provenance.actor.id != self.customer_id:
            raise InvalidCommand("rating", "only the ticket's customer rates it")
        if not 1 <= rating <= 5:
            raise InvalidCommand("rating", "must be from 1 to 5")
        self._trigger(
            self.SatisfactionRated,
            provenance,
            at,
            rating=rating,
            comment=_valid_text("comment", comment, REASON_MAX),
        )

    # ------------------------------------------------------------------
    # The conversation (comments, attachments, answers), merges and links.

    add_comment = ticket_conversation.add_comment
    add_attachment = ticket_conversation.add_attachment
    _end_wait_on_answer = ticket_conversation._end_wait_on_answer
    _answer_provenance = ticket_conversation._answer_provenance
    merge_into = ticket_conversation.merge_into
    _receive_merge = ticket_conversation._receive_merge
    link = ticket_conversation.link

    # ------------------------------------------------------------------
    # Escalations: by a person or a rule, or asked of a supervisor.

    escalate = ticket_escalation.escalate
    judge_escalation_rule = ticket_escalation.judge_escalation_rule
    apply_escalation_rule = ticket_escalation.apply_escalation_rule
    _open_once_assigned = ticket_escalation._open_once_assigned
    request_escalation = ticket_escalation.request_escalation
    pending_escalation = ticket_escalation.pending_escalation
    rejected_escalation_levels = ticket_escalation.rejected_escalation_levels
    approve_escalation = ticket_escalation.approve_escalation
    reject_escalation = ticket_escalation.reject_escalation
    _pending_or_refuse = ticket_escalation._pending_or_refuse
    _requests = ticket_escalation._requests
    _decide_request = ticket_escalation._decide_request

    # ------------------------------------------------------------------
    # The workflow run: each command is idempotent (domain.ticket_workflow).

    start_workflow = ticket_workflow.start_workflow
    complete_workflow_step = ticket_workflow.complete_workflow_step
    complete_waiting_step = ticket_workflow.complete_waiting_step
    wait_on_workflow_step = ticket_workflow.wait_on_workflow_step
    fail_workflow_step = ticket_workflow.fail_workflow_step
    workflow_step_due = ticket_workflow.workflow_step_due
    retry_workflow = ticket_workflow.retry_workflow
    workflow_wake_time = ticket_workflow.workflow_wake_time
    _cancel_workflow = ticket_workflow._cancel_workflow
    _workflow = ticket_workflow._workflow

    # ------------------------------------------------------------------
    # SLA clocks: the clocks decide (domain.sla_clocks); the ticket records.

    recalculate_sla = ticket_sla.recalculate_sla
    check_sla = ticket_sla.check_sla
    sla_report = ticket_sla.sla_report
    sla_due_times = ticket_sla.sla_due_times
    _start_clock = ticket_sla._start_clock
    _start_clocks = ticket_sla._start_clocks
    _stop_clocks_resolved = ticket_sla._stop_clocks_resolved
    _restart_resolution = ticket_sla._restart_resolution
    _stop_clocks_closed = ticket_sla._stop_clocks_closed
    _stop_clock = ticket_sla._stop_clock
    _follow_sla = ticket_sla._follow_sla
    _follow_reply = ticket_sla._follow_reply
    _policy = ticket_sla._policy
    _policy_or_fail = ticket_sla._policy_or_fail
    _clocks = ticket_sla._clocks
    _set_clock = ticket_sla._set_clock
    _clock_provenance = ticket_sla._clock_provenance

    # ------------------------------------------------------------------
    # Time tracking (domain.time_entries).

    log_time = time_tracking.log_time
    remove_time_entry = time_tracking.remove_time_entry
    find_time_entry = time_tracking.find_time_entry

    # ------------------------------------------------------------------
    # Privacy.

    def record_erasure(
        self, *, provenance: Provenance, at: datetime, request_id: str, reason: str
    ) -> None:
        """Record that the customer's personal data here was erased (its key
        destroyed by the caller first): allowed in every status."""
        if reason not in ("request", "retention"):
            raise InvalidCommand("reason", "an erasure is by request or by retention")
        self._trigger(
            self.SubjectErased,
            provenance,
            at,
            subject_id=self.customer_id,
            request_id=request_id,
            reason=reason,
        )

    # ------------------------------------------------------------------
    # Queries on the state.

    def is_visible_to_customer(self, customer_id: str) -> bool:
        return self.customer_id == customer_id

    def public_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if not c["internal"]]

    def find_attachment(self, attachment_id: str) -> dict[str, Any] | None:
        return next((a for a in self.attachments if a["id"] == attachment_id), None)

    # ------------------------------------------------------------------

    def _trigger(
        self,
        event_class: type[Ticket.Event],
        provenance: Provenance,
        at: datetime,
        **fields: Any,
    ) -> None:
        if provenance.tenant_id != self.tenant_id:
            # The service checks tenancy first; this guards the stream itself.
            raise CommandRefused("act on", self.status.value, "wrong tenant")
        self.trigger_event(
            event_class, timestamp=at, **fields, **provenance.event_fields()
        )
        trace_context.stamp(self.pending_events[-1], provenance.traceparent)

    def _enter_status(self, status: TicketStatus, at: datetime) -> None:
        """Move to ``status``, pausing the resolution clock while pending."""
        leaving_pending = self.status == TicketStatus.PENDING
        entering_pending = status == TicketStatus.PENDING
        if leaving_pending and not entering_pending and self.resolution_pauses:
            self.resolution_pauses[-1]["end"] = at
        if entering_pending and not leaving_pending:
            self.resolution_pauses.append({"start": at, "end": None})
        self.status = status
