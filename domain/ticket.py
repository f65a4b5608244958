"""The Ticket aggregate: one event stream per ticket.

Public command methods validate and decide; each event's ``apply`` only
records the decided outcome, because it runs again on every replay. Events
therefore carry results (the new status, the resulting assignee), not
inputs to rules that may change. Every event has an explicit, stable topic.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from domain.errors import CommandRefused, InvalidCommand
from domain.lifecycle import (
    Command,
    ensure_allowed,
    ensure_status_change,
    status_after_assignment,
)
from domain.limits import (
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
from domain.provenance import Provenance

_TOPIC = "ticketing.ticket"


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
    # A default for tickets snapshotted before ratings existed.
    satisfaction: dict[str, Any] | None = None

    def __init__(self) -> None:
        # The state above is set by TicketCreated.apply; an explicit __init__
        # keeps the library from turning the annotations into constructor
        # arguments.
        pass

    class Event(Aggregate.Event):
        """Every ticket event says which tenant and who or what caused it."""

        tenant_id: str
        actor: dict[str, str]
        correlation_id: str | None
        causation_id: str | None

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

    # The library defines a ``Created`` class unless the aggregate has one.
    Created = TicketCreated

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

        def apply(self, aggregate: Ticket) -> None:
            aggregate._enter_status(TicketStatus(self.status), self.timestamp)

    class CommentAdded(Event):
        TOPIC = f"{_TOPIC}:CommentAdded.v1"
        comment_id: str
        body: str
        internal: bool
        is_first_response: bool

        def apply(self, aggregate: Ticket) -> None:
            aggregate.comments.append(
                {
                    "id": self.comment_id,
                    "body": self.body,
                    "internal": self.internal,
                    "author_id": self.actor["id"],
                    "author_role": self.actor["role"],
                    "created_at": self.timestamp,
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

        def apply(self, aggregate: Ticket) -> None:
            aggregate.escalation_level = self.level
            aggregate.assigned_team = self.team
            aggregate.assignee_id = self.assignee_id

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
    ) -> Ticket:
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
    ) -> bool:
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
        return True

    def change_priority(
        self,
        priority: TicketPriority,
        *,
        provenance: Provenance,
        at: datetime,
        reason: str | None = None,
    ) -> bool:
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
        return True

    def assign(
        self,
        *,
        provenance: Provenance,
        at: datetime,
        assignee_id: str | None = None,
        team: str | None = None,
    ) -> bool:
        """Assign to a person, a team, or both; a new ticket becomes open."""
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
        )
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
        return True

    def add_comment(
        self,
        body: str,
        *,
        internal: bool,
        provenance: Provenance,
        at: datetime,
        comment_id: str | None = None,
    ) -> str:
        """Add a comment; the first public agent reply is the first response."""
        ensure_allowed(Command.COMMENT, self.status)
        body = _valid_text("body", body, COMMENT_MAX, required=True, strip=False)
        if internal and provenance.actor.role == "customer":
            raise InvalidCommand("internal", "customers cannot write internal notes")
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
        )
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
    ) -> None:
        """Record a stored file's metadata (the bytes live outside the stream)."""
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

    def escalate(
        self,
        *,
        reason: str,
        provenance: Provenance,
        at: datetime,
        team: str | None = None,
    ) -> int:
        """Raise the escalation level; a new team takes the ticket over."""
        ensure_allowed(Command.ESCALATE, self.status)
        reason = _valid_text("reason", reason, REASON_MAX, required=True)
        team = _optional_text("team", team, TEAM_MAX)
        new_team = team or self.assigned_team
        # A person of the old team cannot keep a ticket handed to another team.
        assignee = self.assignee_id if new_team == self.assigned_team else None
        level = self.escalation_level + 1
        self._trigger(
            self.TicketEscalated,
            provenance,
            at,
            level=level,
            team=new_team,
            reason=reason,
            assignee_id=assignee,
        )
        return level

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

    def reopen(self, *, reason: str, provenance: Provenance, at: datetime) -> None:
        ensure_allowed(Command.REOPEN, self.status)
        self._trigger(
            self.TicketReopened,
            provenance,
            at,
            reason=_valid_text("reason", reason, REASON_MAX),
        )

    def close(self, *, provenance: Provenance, at: datetime) -> None:
        ensure_allowed(Command.CLOSE, self.status)
        self._trigger(self.TicketClosed, provenance, at, reason="closed")

    def merge_into(
        self, target: Ticket, *, provenance: Provenance, at: datetime
    ) -> None:
        """Fold this ticket into ``target``: this one closes, both link."""
        ensure_allowed(Command.MERGE, self.status)
        ensure_allowed(Command.MERGE, target.status)
        if target.id == self.id:
            raise InvalidCommand("into", "a ticket cannot be merged into itself")
        if target.tenant_id != self.tenant_id:
            raise CommandRefused(Command.MERGE.value, self.status.value, "unknown")
        self._trigger(self.TicketMerged, provenance, at, into_ticket_id=str(target.id))
        self._trigger(self.TicketClosed, provenance, at, reason="merged")
        target.link(self.id, LinkRelation.MERGED_FROM, provenance=provenance, at=at)

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
