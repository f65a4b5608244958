"""The Ticket aggregate: one event stream per ticket.

Public command methods validate and decide; each event's ``apply`` only
records the decided outcome, because it runs again on every replay. Events
therefore carry results (the new status, the resulting assignee), not
inputs to rules that may change. Every event has an explicit, stable topic.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from dotmac.ticketing.domain import sla
from dotmac.ticketing.domain import ticket_events as events
from dotmac.ticketing.domain import workflow as wf
from dotmac.ticketing.domain.customer_replies import (
    CUSTOMER_REPLY,
    DEFAULT_REPLY_POLICY,
    CustomerReplyPolicy,
    is_customer_answer,
)
from dotmac.ticketing.domain.enums import (
    ACTIVE_STATUSES,
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.escalation_change import escalation_change
from dotmac.ticketing.domain.lifecycle import (
    Command,
    ensure_allowed,
    ensure_status_change,
    status_after_assignment,
)
from dotmac.ticketing.domain.limits import (
    COMMENT_MAX,
    CUSTOM_FIELD_KEY_MAX,
    CUSTOM_FIELD_VALUE_MAX,
    CUSTOM_FIELDS_MAX,
    DESCRIPTION_MAX,
    FILENAME_MAX,
    REASON_MAX,
    TAG_MAX,
    TAGS_MAX,
    TEAM_MAX,
    TITLE_MAX,
)
from dotmac.ticketing.domain.merging import (
    TICKET_MERGE,
    MergedSource,
    MergePolicy,
    carried_comments,
)
from dotmac.ticketing.domain.provenance import Actor, Provenance, event_id
from dotmac.ticketing.domain.sla import SLA_CLOCKS, SLAPolicy
from dotmac.ticketing.domain.sla_clocks import (
    SlaClock,
    SlaClocks,
    clock_deadline,
    explain,
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
            tags=normalize_tags(tags),
            custom_fields=_valid_custom_fields(custom_fields),
            **provenance.event_fields(),
        )
        if sla_policy is not None:
            for target in (sla.FIRST_RESPONSE, sla.RESOLUTION):
                ticket._start_clock(target, sla_policy, provenance, at)
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

    def add_comment(
        self,
        body: str,
        *,
        internal: bool,
        provenance: Provenance,
        at: datetime,
        comment_id: str | None = None,
        replies: CustomerReplyPolicy = DEFAULT_REPLY_POLICY,
        acknowledgment: bool = False,
        solution: bool = False,
    ) -> str:
        """Add a comment; the first public agent reply is the first response.

        The customer's public comment ends a wait on them as ``replies`` (the
        tenant's policy) says: the ticket reopens and paused clocks resume.
        ``acknowledgment`` marks an automation's public acknowledgment of
        the new ticket (see ``CommentAdded.acknowledgment``); ``solution``
        an agent's public reply that solves the problem
        (``CommentAdded.solution``).
        """
        ensure_allowed(Command.COMMENT, self.status)
        body = _valid_text("body", body, COMMENT_MAX, required=True, strip=False)
        if internal and provenance.actor.role == "customer":
            raise InvalidCommand("internal", "customers cannot write internal notes")
        if acknowledgment and (internal or provenance.actor.kind != "automation"):
            raise InvalidCommand(
                "acknowledgment", "only an automation's public comment acknowledges"
            )
        if solution and (internal or not provenance.actor.is_agent):
            raise InvalidCommand(
                "solution",
                "only an agent's public reply is a solution (not an internal note)",
            )
        comment_id = comment_id or uuid4().hex
        is_first_response = (
            not internal
            and self.first_response_at is None
            and provenance.actor.is_agent
        )
        self._trigger(
            self.CommentAdded,
            provenance,
            at,
            comment_id=comment_id,
            body=body,
            internal=internal,
            is_first_response=is_first_response,
            acknowledgment=acknowledgment,
            solution=solution,
        )
        if not internal:
            self._end_wait_on_answer(
                replies,
                provenance,
                at,
                cause={"event": "CommentAdded", "comment_id": comment_id},
            )
            self._follow_reply(provenance, at)
        return comment_id

    def add_attachment(
        self,
        *,
        attachment_id: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        provenance: Provenance,
        at: datetime,
        replies: CustomerReplyPolicy = DEFAULT_REPLY_POLICY,
    ) -> None:
        """Record a stored file's metadata (the bytes live outside the stream).

        The customer's attachment is an answer too (see :meth:`add_comment`).
        """
        ensure_allowed(Command.ATTACH, self.status)
        filename = _valid_text("filename", filename, FILENAME_MAX, required=True)
        if size < 0:
            raise InvalidCommand("size", "must not be negative")
        if len(sha256) != 64:
            raise InvalidCommand("sha256", "must be 64 hexadecimal digits")
        self._trigger(
            self.AttachmentAdded,
            provenance,
            at,
            attachment_id=attachment_id,
            filename=filename,
            content_type=content_type or "application/octet-stream",
            size=size,
            sha256=sha256,
        )
        self._end_wait_on_answer(
            replies,
            provenance,
            at,
            cause={"event": "AttachmentAdded", "attachment_id": attachment_id},
        )

    def _end_wait_on_answer(
        self,
        replies: CustomerReplyPolicy,
        provenance: Provenance,
        at: datetime,
        *,
        cause: dict[str, Any],
    ) -> None:
        """The customer answered a ticket waiting on them: reopen it.

        Called right after the answer's event, so ``cause`` (and the change's
        causation id) names that event's version. The change is an
        automation's, in the same request (same correlation id), saved with
        the answer; the clocks the waiting state paused resume with it.
        """
        if not is_customer_answer(provenance.actor, self.customer_id):
            return
        if self.status == TicketStatus.RESOLVED:
            if replies.reopens(self.resolved_at, at):
                self._reopen(
                    "the customer answered", self._answer_provenance(provenance), at
                )
            return
        status = replies.status_after_answer(self.status)
        if status is None or not ensure_status_change(self.status, status):
            return
        automation = self._answer_provenance(provenance)
        self._trigger(
            self.StatusChanged,
            automation,
            at,
            status=status.value,
            previous_status=self.status.value,
            reason="the customer answered",
            cause={**cause, "version": self.version, "customer_id": self.customer_id},
        )
        self._follow_sla(automation, at)

    def _answer_provenance(self, provenance: Provenance) -> Provenance:
        """The ``customer-reply`` automation, caused by the answer just recorded."""
        return Provenance(
            tenant_id=provenance.tenant_id,
            actor=Actor.automation(CUSTOMER_REPLY),
            correlation_id=provenance.correlation_id,
            causation_id=event_id(self.id, self.version),
        )

    def escalate(
        self,
        *,
        reason: str,
        provenance: Provenance,
        at: datetime,
        team: str | None = None,
        level: int | None = None,
        rule: str | None = None,
        assignee_id: str | None = None,
        assignment: dict[str, Any] | None = None,
    ) -> int:
        """Raise the escalation level; a new team takes the ticket over.

        A person escalates one level up; a rule names its level. An agent of
        the new team picked by assignment (``assignee_id``, with why in
        ``assignment``) takes it; otherwise it waits in that team's queue.
        An escalation that leaves the ticket with whoever holds it (the same
        team and agent, ``domain.escalation_change``) records nothing and
        returns the level the ticket is at.
        """
        ensure_allowed(Command.ESCALATE, self.status)
        reason = _valid_text("reason", reason, REASON_MAX, required=True)
        team = _optional_text("team", team, TEAM_MAX)
        new_level = self.escalation_level + 1 if level is None else level
        if new_level <= self.escalation_level:
            raise CommandRefused(
                f"escalate to level {new_level}",
                self.status.value,
                f"already at level {self.escalation_level}",
            )
        change = escalation_change(
            current_team=self.assigned_team,
            current_assignee=self.assignee_id,
            team=team,
            assignee_id=assignee_id,
        )
        if not change.changes:
            return self.escalation_level
        self._trigger(
            self.TicketEscalated,
            provenance,
            at,
            level=new_level,
            team=change.team,
            reason=reason,
            assignee_id=change.assignee_id,
            rule=rule,
            assignment=assignment,
        )
        self._open_once_assigned(provenance, at, reason="assigned by escalation")
        return new_level

    def _open_once_assigned(
        self, provenance: Provenance, at: datetime, *, reason: str
    ) -> None:
        """A new ticket someone now holds is open, as a manual assignment makes it."""
        if self.assignee_id is None:
            return
        status = status_after_assignment(self.status)
        if status == self.status:
            return
        self._trigger(
            self.StatusChanged,
            provenance,
            at,
            status=status.value,
            previous_status=self.status.value,
            reason=reason,
        )
        self._follow_sla(provenance, at)

    def request_escalation(
        self,
        *,
        level: int,
        team: str,
        rule: str,
        reason: str,
        provenance: Provenance,
        at: datetime,
    ) -> bool:
        """Ask a supervisor to approve a rule's escalation; False if moot.

        A level already reached, awaiting approval or rejected once is not
        asked for again: a rejection stands for that level.
        """
        ensure_allowed(Command.ESCALATE, self.status)
        if level <= self.escalation_level or any(
            r["level"] == level and r["state"] in ("pending", "rejected")
            for r in self._requests()
        ):
            return False
        self._trigger(
            self.EscalationRequested,
            provenance,
            at,
            level=level,
            team=_valid_text("team", team, TEAM_MAX, required=True),
            rule=rule,
            reason=_valid_text("reason", reason, REASON_MAX, required=True),
        )
        return True

    def pending_escalation(self) -> dict[str, Any] | None:
        """The escalation request awaiting a supervisor, if any."""
        pending = [r for r in self._requests() if r["state"] == "pending"]
        return pending[-1] if pending else None

    def rejected_escalation_levels(self) -> set[int]:
        return {r["level"] for r in self._requests() if r["state"] == "rejected"}

    def approve_escalation(
        self,
        *,
        provenance: Provenance,
        at: datetime,
        comment: str = "",
        assignee_id: str | None = None,
        assignment: dict[str, Any] | None = None,
    ) -> int:
        """Approve the pending request: the ticket escalates as the rule said."""
        request = self._pending_or_refuse("approve escalation")
        comment = _valid_text("comment", comment, REASON_MAX)
        self._trigger(
            self.EscalationApproved,
            provenance,
            at,
            level=request["level"],
            comment=comment,
        )
        if request["level"] <= self.escalation_level:
            # A person escalated further meanwhile: the approval is recorded
            # but there is nothing left to raise.
            return self.escalation_level
        return self.escalate(
            reason=request["reason"],
            team=request["team"],
            level=request["level"],
            rule=request["rule"],
            assignee_id=assignee_id,
            assignment=assignment,
            provenance=provenance,
            at=at,
        )

    def reject_escalation(
        self, *, provenance: Provenance, at: datetime, comment: str = ""
    ) -> int:
        """Reject the pending request; its level is not asked for again."""
        request = self._pending_or_refuse("reject escalation")
        self._trigger(
            self.EscalationRejected,
            provenance,
            at,
            level=request["level"],
            comment=_valid_text("comment", comment, REASON_MAX),
        )
        return int(request["level"])

    def _pending_or_refuse(self, command: str) -> dict[str, Any]:
        ensure_allowed(Command.ESCALATE, self.status)
        request = self.pending_escalation()
        if request is None:
            raise CommandRefused(
                command, self.status.value, "no escalation awaits approval"
            )
        return request

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
        self._stop_clock(sla.RESOLUTION, provenance, at, goal_reached=True)
        # Nothing more is owed on a resolved ticket.
        self._stop_clock(sla.FIRST_RESPONSE, provenance, at, goal_reached=False)
        self._stop_clock(sla.NEXT_REPLY, provenance, at, goal_reached=False)

    def reopen(self, *, reason: str, provenance: Provenance, at: datetime) -> None:
        ensure_allowed(Command.REOPEN, self.status)
        self._reopen(_valid_text("reason", reason, REASON_MAX), provenance, at)

    def _reopen(self, reason: str, provenance: Provenance, at: datetime) -> None:
        self._trigger(self.TicketReopened, provenance, at, reason=reason)
        policy = self._policy()
        if policy is not None:
            # A reopened ticket owes a new resolution, measured afresh.
            self._start_clock(sla.RESOLUTION, policy, provenance, at)

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

    def merge_into(
        self,
        target: Ticket,
        *,
        provenance: Provenance,
        at: datetime,
        confirm_cross_customer: bool = False,
        policy: MergePolicy | None = None,
    ) -> None:
        """Fold this ticket into ``target``: this one closes, both link, and
        the target receives this one's description and comments.

        Two customers' tickets merge only when ``confirm_cross_customer``
        says so and the tenant's ``policy`` allows it (``domain.merging``).
        """
        ensure_allowed(Command.MERGE, self.status)
        ensure_allowed(Command.MERGE, target.status)
        if target.id == self.id:
            raise InvalidCommand("into", "a ticket cannot be merged into itself")
        if target.tenant_id != self.tenant_id:
            raise CommandRefused(Command.MERGE.value, self.status.value, "unknown")
        cross_customer = (policy or MergePolicy()).check(
            source_customer_id=self.customer_id,
            target_customer_id=target.customer_id,
            confirmed=confirm_cross_customer,
            status=self.status.value,
        )
        self._trigger(
            self.TicketMerged,
            provenance,
            at,
            into_ticket_id=str(target.id),
            into_number=target.number,
            into_assignee_id=target.assignee_id,
            cross_customer=cross_customer,
        )
        merged_at = event_id(self.id, self.version)
        # Linked before the close: a closed ticket takes no links.
        self.link(target.id, LinkRelation.MERGED_INTO, provenance=provenance, at=at)
        self._trigger(self.TicketClosed, provenance, at, reason="merged")
        for clock in sla.TARGETS:
            self._stop_clock(clock, provenance, at, goal_reached=False)
        self._cancel_workflow("the ticket was merged", provenance, at)
        target._receive_merge(
            self, cross_customer, provenance, at, causation_id=merged_at
        )

    def _receive_merge(
        self,
        source: Ticket,
        cross_customer: bool,
        provenance: Provenance,
        at: datetime,
        *,
        causation_id: str,
    ) -> None:
        """Link back to the merged ticket and carry its conversation over.

        The carried comments are the ``ticket-merge`` automation's, caused
        by the source's ``TicketMerged``: they are not a reply of the
        merging agent (no first response, no SLA goal reached, no answer
        of the customer ending a wait).
        """
        self.link(source.id, LinkRelation.MERGED_FROM, provenance=provenance, at=at)
        carrier = Provenance(
            tenant_id=provenance.tenant_id,
            actor=Actor.automation(TICKET_MERGE),
            correlation_id=provenance.correlation_id,
            causation_id=causation_id,
        )
        carried = carried_comments(
            MergedSource(
                number=source.number,
                title=source.title,
                description=source.description,
                opened_at=source.created_on,
                opened_by=source.created_by,
                comments=source.comments,
                attachments=source.attachments,
            ),
            cross_customer=cross_customer,
        )
        for comment in carried:
            self._trigger(
                self.CommentAdded,
                carrier,
                at,
                comment_id=uuid4().hex,
                body=comment.body,
                internal=comment.internal,
                is_first_response=False,
                merged_from=str(source.id),
            )

    def link(
        self,
        other_id: UUID,
        relation: LinkRelation,
        *,
        provenance: Provenance,
        at: datetime,
    ) -> bool:
        ensure_allowed(Command.LINK, self.status)
        if other_id == self.id:
            raise InvalidCommand("ticket_id", "a ticket cannot link to itself")
        link = {"ticket_id": str(other_id), "relation": LinkRelation(relation).value}
        if link in self.links:
            return False
        self._trigger(
            self.TicketLinked,
            provenance,
            at,
            linked_ticket_id=link["ticket_id"],
            relation=link["relation"],
        )
        return True

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
    # The workflow. Each command is idempotent: recording what is already
    # recorded (a step run twice after a crash) changes nothing.

    def start_workflow(
        self,
        workflow_type: str,
        steps: list[str],
        *,
        provenance: Provenance,
        at: datetime,
    ) -> bool:
        """Start the workflow of the ticket's type; False if one was started."""
        if self.workflow is not None or self.status == TicketStatus.CLOSED:
            return False
        if not steps or len(set(steps)) != len(steps):
            raise InvalidCommand("steps", "a workflow has distinct, named steps")
        self._trigger(
            self.WorkflowStarted,
            provenance,
            at,
            workflow_type=workflow_type,
            steps=list(steps),
        )
        return True

    def complete_workflow_step(
        self,
        step: str,
        *,
        attempt: int | None,
        data: dict[str, Any],
        message: str,
        next_step: str | None,
        skipped: list[str],
        actions: list[dict[str, Any]],
        provenance: Provenance,
        at: datetime,
    ) -> bool:
        """Record a step's success and move on; False if not the current step.

        ``attempt`` is the run being recorded (None: a person completes a
        waiting step), so a late record of an older run changes nothing.
        """
        flow = self.workflow
        if flow is None or not flow.is_current(step, attempt):
            return False
        if next_step is not None and next_step not in flow.steps:
            raise InvalidCommand("next_step", f"no step {next_step!r}")
        self._trigger(
            self.WorkflowStepCompleted,
            provenance,
            at,
            step=step,
            attempt=flow.attempt,
            data=dict(data),
            message=_valid_text("message", message, REASON_MAX),
            next_step=next_step,
            skipped=list(skipped),
            actions=list(actions),
        )
        if next_step is None:
            self._trigger(
                self.WorkflowCompleted, provenance, at, workflow_type=flow.type
            )
        return True

    def complete_waiting_step(
        self, step: str, *, data: dict[str, Any], provenance: Provenance, at: datetime
    ) -> None:
        """A person completes the step the workflow waits on (with data)."""
        flow = self.workflow
        if flow is None or flow.status != wf.WAITING or flow.current != step:
            state = "no workflow" if flow is None else flow.status
            waiting_on = "" if flow is None else f" (current step: {flow.current})"
            raise CommandRefused(
                f"complete step {step}",
                self.status.value,
                f"the workflow is {state}, not waiting on {step}{waiting_on}",
            )
        self.complete_workflow_step(
            step,
            attempt=None,
            data=data,
            message="completed by a person",
            next_step=flow.step_after(step),
            skipped=[],
            actions=[],
            provenance=provenance,
            at=at,
        )

    def wait_on_workflow_step(
        self,
        step: str,
        *,
        attempt: int,
        message: str,
        data: dict[str, Any],
        wake_at: datetime | None,
        provenance: Provenance,
        at: datetime,
    ) -> bool:
        """The step waits for a person, the ticket to change, or ``wake_at``."""
        flow = self.workflow
        if flow is None or not flow.is_current(step, attempt):
            return False
        message = _valid_text("message", message, REASON_MAX)
        if flow.waits_on(message, data, wake_at):
            return False  # still waiting on the same thing
        self._trigger(
            self.WorkflowStepWaiting,
            provenance,
            at,
            step=step,
            attempt=attempt,
            message=message,
            data=dict(data),
            wake_at=wake_at,
        )
        return True

    def fail_workflow_step(
        self,
        step: str,
        *,
        attempt: int,
        error: str,
        retry_at: datetime | None,
        provenance: Provenance,
        at: datetime,
    ) -> bool:
        """Record a failed run; it is tried again at ``retry_at`` if given."""
        flow = self.workflow
        if flow is None or not flow.is_current(step, attempt):
            return False
        self._trigger(
            self.WorkflowStepFailed,
            provenance,
            at,
            step=step,
            attempt=attempt,
            error=_valid_text("error", error[:REASON_MAX], REASON_MAX),
            retry_at=retry_at,
        )
        return True

    def workflow_step_due(self, *, provenance: Provenance, at: datetime) -> bool:
        """A failed step's retry time or a waiting step's wake-up time came."""
        flow = self.workflow
        due = None if flow is None else flow.step_due(at)
        if flow is None or due is None:
            return False
        self._trigger(
            self.WorkflowStepDue,
            provenance,
            at,
            step=flow.current,
            attempt=due.attempt,
            reason=due.reason,
        )
        return True

    def retry_workflow(self, *, provenance: Provenance, at: datetime) -> None:
        """Run the failed step again now (a person asks, after fixing the cause)."""
        flow = self.workflow
        due = None if flow is None else flow.manual_retry()
        if flow is None or due is None:
            state = "no workflow" if flow is None else f"workflow {flow.status}"
            raise CommandRefused(
                "retry workflow", self.status.value, f"{state}: nothing failed"
            )
        self._trigger(
            self.WorkflowStepDue,
            provenance,
            at,
            step=flow.current,
            attempt=due.attempt,
            reason=due.reason,
        )

    def workflow_wake_time(self) -> datetime | None:
        """When the timers must wake the workflow (a retry or a wait), if ever."""
        return None if self.workflow is None else self.workflow.wake_time()

    def _cancel_workflow(
        self, reason: str, provenance: Provenance, at: datetime
    ) -> None:
        """A closed ticket has nothing left to work on: end an unfinished workflow."""
        flow = self.workflow
        if flow is None or flow.finished:
            return
        self._trigger(
            self.WorkflowCancelled,
            provenance,
            at,
            workflow_type=flow.type,
            step=flow.current,
            reason=reason,
        )

    def _workflow(self) -> WorkflowRun:
        assert self.workflow is not None, "workflow events follow WorkflowStarted"
        return self.workflow

    # ------------------------------------------------------------------
    # SLA clocks: the clocks decide (domain.sla_clocks); the ticket records.

    def recalculate_sla(
        self, policy: SLAPolicy, *, provenance: Provenance, at: datetime
    ) -> list[str]:
        """Re-derive every running clock's due time under ``policy``.

        The start and the recorded pauses stay; only the targets (and the
        policy snapshot) change. Returns the targets whose due time moved.
        """
        # Decided once, before the first SLARecalculated replaces the
        # ticket's snapshot: otherwise only the first running clock would
        # record the new policy and the others would keep explaining the old.
        changes = self._clocks().recalculations(
            policy, priority=self.priority.value, recorded_policy=self.sla_policy
        )
        for change in changes:
            self._trigger(
                self.SLARecalculated,
                self._clock_provenance(provenance),
                at,
                target=change.target,
                target_minutes=change.target_minutes,
                due_at=change.deadline.due_at,
                warning_at=change.deadline.warning_at,
                policy=policy.snapshot(),
                explanation=dict(change.explanation),
            )
        return [change.target for change in changes]

    def check_sla(self, *, provenance: Provenance, at: datetime) -> list[str]:
        """Record the warnings and breaches due by ``at`` (the timers' command).

        Idempotent and safe to call late or early: a clock that stopped (a
        ticket answered in time) or moved its due time later records
        nothing, and each warning and breach is recorded once. Returns the
        names of the events recorded.
        """
        if self.sla_policy is None:
            return []
        calendar = self._policy_or_fail().business_calendar()
        recorded: list[str] = []
        for alert in self._clocks().alerts_due(at, calendar):
            if alert.kind == "warning":
                self._trigger(
                    self.SLAWarning,
                    provenance,
                    at,
                    target=alert.target,
                    due_at=alert.due_at,
                    business_minutes_left=alert.minutes,
                )
                recorded.append("SLAWarning")
            else:
                self._trigger(
                    self.SLABreached,
                    provenance,
                    at,
                    target=alert.target,
                    due_at=alert.due_at,
                    business_minutes_used=alert.minutes,
                )
                recorded.append("SLABreached")
        return recorded

    def sla_report(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Per target: state, due time, business minutes used and left, pauses."""
        policy = self._policy()
        if policy is None:
            return {}
        return self._clocks().report(policy.business_calendar(), now)

    def sla_due_times(self) -> dict[str, datetime | None]:
        """Each running clock's due time (None while paused), for timers."""
        return self._clocks().due_times()

    def _start_clock(
        self,
        target: str,
        policy: SLAPolicy,
        provenance: Provenance,
        at: datetime,
    ) -> None:
        priority = self.priority.value
        deadline = clock_deadline(policy, priority, target, at, [])
        self._trigger(
            self.SLAStarted,
            self._clock_provenance(provenance),
            at,
            target=target,
            target_minutes=policy.minutes(priority, target),
            due_at=deadline.due_at,
            warning_at=deadline.warning_at,
            policy=policy.snapshot(),
            explanation=explain(policy, priority, target, at, []),
        )
        # A clock may start in a status that pauses it (a reopened ticket
        # going straight to pending, say).
        self._follow_sla(provenance, at)

    def _stop_clock(
        self, target: str, provenance: Provenance, at: datetime, *, goal_reached: bool
    ) -> None:
        clock = self._clocks().get(target)
        if clock is None or not clock.running:
            return
        used = clock.minutes_used(self._policy_or_fail().business_calendar(), at)
        self._trigger(
            self.SLAStopped,
            self._clock_provenance(provenance),
            at,
            target=target,
            outcome=clock.outcome_if_stopped(at, goal_reached=goal_reached),
            business_minutes_used=round(used, 3),
        )

    def _follow_sla(self, provenance: Provenance, at: datetime) -> None:
        """Pause or resume each running clock as the new status asks."""
        policy = self._policy()
        if policy is None:
            return
        moves = self._clocks().follow_status(
            policy, status=self.status.value, priority=self.priority.value, at=at
        )
        for move in moves:
            if move.kind == "pause":
                self._trigger(
                    self.SLAPaused,
                    self._clock_provenance(provenance),
                    at,
                    target=move.target,
                    status=self.status.value,
                )
                continue
            assert move.deadline is not None and move.explanation is not None
            self._trigger(
                self.SLAResumed,
                self._clock_provenance(provenance),
                at,
                target=move.target,
                due_at=move.deadline.due_at,
                warning_at=move.deadline.warning_at,
                paused_minutes=move.paused_minutes,
                explanation=dict(move.explanation),
            )

    def _follow_reply(self, provenance: Provenance, at: datetime) -> None:
        """A public comment stops or starts the reply clocks."""
        if provenance.actor.is_agent:
            self._stop_clock(sla.FIRST_RESPONSE, provenance, at, goal_reached=True)
            self._stop_clock(sla.NEXT_REPLY, provenance, at, goal_reached=True)
            return
        policy = self._policy()
        customer_speaks = provenance.actor.id == self.customer_id
        if (
            policy is not None
            and customer_speaks
            and self.status in ACTIVE_STATUSES
            # Before the first reply, the first-response clock covers it.
            and self.first_response_at is not None
            and not self._clocks().is_running(sla.NEXT_REPLY)
        ):
            self._start_clock(sla.NEXT_REPLY, policy, provenance, at)

    def _policy(self) -> SLAPolicy | None:
        return (
            None
            if self.sla_policy is None
            else SLAPolicy.from_snapshot(self.sla_policy)
        )

    def _policy_or_fail(self) -> SLAPolicy:
        policy = self._policy()
        assert policy is not None, "a clock runs only under a policy"
        return policy

    def _clocks(self) -> SlaClocks:
        return self.sla_clocks or SlaClocks()

    def _set_clock(self, target: str, clock: SlaClock) -> None:
        self.sla_clocks = self._clocks().with_clock(target, clock)

    def _requests(self) -> list[dict[str, Any]]:
        if self.escalation_requests is None:
            self.escalation_requests = []
        return self.escalation_requests

    def _decide_request(
        self, event: Ticket.EscalationApproved | Ticket.EscalationRejected, state: str
    ) -> None:
        for request in reversed(self._requests()):
            if request["level"] == event.level and request["state"] == "pending":
                request.update(
                    state=state,
                    decided_at=event.timestamp,
                    decided_by=event.actor["id"],
                    comment=event.comment,
                )
                return

    # ------------------------------------------------------------------
    # Queries on the state.

    def is_visible_to_customer(self, customer_id: str) -> bool:
        return self.customer_id == customer_id

    def public_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if not c["internal"]]

    def find_attachment(self, attachment_id: str) -> dict[str, Any] | None:
        return next((a for a in self.attachments if a["id"] == attachment_id), None)

    # ------------------------------------------------------------------

    def _clock_provenance(self, provenance: Provenance) -> Provenance:
        """SLA clocks start, pause, resume and stop by the system's rules, not
        by the person whose command moved the ticket: their events are the
        ``sla`` automation's, caused by the event just recorded, in the same
        request (correlation id)."""
        if provenance.actor.kind == "automation":
            return provenance
        return Provenance(
            tenant_id=provenance.tenant_id,
            actor=Actor.automation(SLA_CLOCKS),
            correlation_id=provenance.correlation_id,
            causation_id=event_id(self.id, self.version),
        )

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

    def _enter_status(self, status: TicketStatus, at: datetime) -> None:
        """Move to ``status``, pausing the resolution clock while pending."""
        leaving_pending = self.status == TicketStatus.PENDING
        entering_pending = status == TicketStatus.PENDING
        if leaving_pending and not entering_pending and self.resolution_pauses:
            self.resolution_pauses[-1]["end"] = at
        if entering_pending and not leaving_pending:
            self.resolution_pauses.append({"start": at, "end": None})
        self.status = status


# ----------------------------------------------------------------------
# Validation of command arguments (pure functions).


def normalize_tags(tags: list[str]) -> list[str]:
    """Trim, lower-case and de-duplicate tags, keeping their first order."""
    seen: dict[str, None] = {}
    for raw in tags:
        tag = _valid_text("tags", raw, TAG_MAX).lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise InvalidCommand("tags", f"a tag is at most {TAG_MAX} characters")
        seen.setdefault(tag, None)
    if len(seen) > TAGS_MAX:
        raise InvalidCommand("tags", f"at most {TAGS_MAX} tags")
    return list(seen)


def _valid_title(title: str) -> str:
    return _valid_text("title", title, TITLE_MAX, required=True)


def _valid_text(
    field: str,
    value: str,
    max_length: int,
    *,
    required: bool = False,
    strip: bool = True,
) -> str:
    text = value.strip() if strip else value
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL; refuse it before it reaches a stream.
        raise InvalidCommand(field, "must not contain NUL characters")
    if required and not text.strip():
        raise InvalidCommand(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidCommand(field, f"at most {max_length} characters")
    return text


def _optional_text(field: str, value: str | None, max_length: int) -> str | None:
    if value is None:
        return None
    text = _valid_text(field, value, max_length)
    return text or None


def _valid_custom_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if len(fields) > CUSTOM_FIELDS_MAX:
        raise InvalidCommand("custom_fields", f"at most {CUSTOM_FIELDS_MAX} fields")
    for key, value in fields.items():
        if not key or len(key) > CUSTOM_FIELD_KEY_MAX or "\x00" in key:
            raise InvalidCommand(
                "custom_fields",
                f"keys have 1 to {CUSTOM_FIELD_KEY_MAX} characters, none of them NUL",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidCommand(f"custom_fields.{key}", "must be a finite number")
        if isinstance(value, str) and "\x00" in value:
            raise InvalidCommand(f"custom_fields.{key}", "must not contain NUL")
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise InvalidCommand(
                f"custom_fields.{key}", "must be a string, number, boolean or null"
            )
        if isinstance(value, str) and len(value) > CUSTOM_FIELD_VALUE_MAX:
            raise InvalidCommand(
                f"custom_fields.{key}", f"at most {CUSTOM_FIELD_VALUE_MAX} characters"
            )
    return dict(fields)
