"""The ticket use cases: load, decide, save.

Each public method is one thing a caller can ask for. Tenancy and
visibility are enforced on load, so a ticket of another tenant (or, for a
customer, of another customer) simply does not exist for the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from dotmac.ticketing.domain.assignment import (
    check_people,
    choose_assignment,
    find_team,
    matching_rule,
    pick_agent,
    team_strategy,
)
from dotmac.ticketing.domain.customer_replies import (
    DEFAULT_REPLY_POLICY,
    CustomerReplyPolicy,
)
from dotmac.ticketing.domain.deadlines import facts_of
from dotmac.ticketing.domain.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TimeEntryType,
)
from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.lifecycle import Command, ensure_allowed, is_allowed
from dotmac.ticketing.domain.limits import TITLE_MAX
from dotmac.ticketing.domain.merging import MergePolicy
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import SLAPolicy, policy_for
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.tenant_config import parse as parse_config
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.ticket_validation import normalize_tags
from dotmac.ticketing.schemas.tickets import HistoryEntryRead
from dotmac.ticketing.service.assignment import AssignmentDesk
from dotmac.ticketing.service.attachments import BlobStore
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.clock import system_clock as utc_now
from dotmac.ticketing.service.concurrency import retry_on_conflict
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.customers import CustomerDirectory
from dotmac.ticketing.service.errors import (
    AttachmentNotFound,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    NoSuchVersion,
    PermissionDenied,
    PreconditionFailed,
    TicketNotFound,
    TimeEntryNotFound,
)
from dotmac.ticketing.service.numbers import TicketNumbers
from dotmac.ticketing.service.ticket_automations import (
    AUTO_ASSIGNMENT,
    TicketAutomations,
)
from dotmac.ticketing.store import inbound_mail as mail_rows
from dotmac.ticketing.store.application import TicketApplication

T = TypeVar("T")
#: Why an automatic pick chose whom (rule, strategy, loads), when one did.
Why = dict[str, Any] | None
#: ``(version, document)`` of a tenant's settings (the defaults at version 0).
SettingsSource = Callable[[str], tuple[int, dict[str, Any]]]

#: The automations recorded on the events they cause.

# Idempotency keys are scoped to a tenant: the same key from two tenants
# names two different tickets.
IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dotmac-ticketing:idempotency")

_EVENT_BASE_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "tenant_id",
        "actor",
        "correlation_id",
        "causation_id",
    }
)


def follow_up_title(number: int, title: str) -> str:
    """``Re: #12 Printer on fire``, within the title's limit."""
    return f"Re: #{number} {title}"[:TITLE_MAX]


#: The resolution code of a ticket its customer marked solved.
SOLVED_BY_CUSTOMER = "solved_by_customer"


@dataclass(frozen=True)
class CommandResult:
    """The ticket after a command, and where its last event sits in the log.

    ``position`` is None when the command changed nothing (a no-op).
    """

    ticket: Ticket
    position: int | None
    replayed: bool = False


@dataclass(frozen=True)
class SLAReport:
    """A ticket's SLA clocks as of ``at``: per target, ``Ticket.sla_report``."""

    ticket: Ticket
    at: datetime
    targets: dict[str, dict[str, Any]]


class TicketService(TicketAutomations):
    def __init__(
        self,
        app: TicketApplication,
        *,
        numbers: TicketNumbers,
        blobs: BlobStore,
        clock: Clock = utc_now,
        retries: int = 5,
        settings: SettingsSource | None = None,
        desk: AssignmentDesk | None = None,
        customers: CustomerDirectory | None = None,
    ) -> None:
        self._app = app
        self._numbers = numbers
        self._blobs = blobs
        self._clock = clock
        self._retries = retries
        self._settings = settings
        self._configs: dict[str, tuple[int, TenantConfig]] = {}
        self._desk = desk
        # Without a read model only ids derived from addresses are known.
        self._customers = customers or CustomerDirectory()

    # -- creating ----------------------------------------------------------

    def create_ticket(
        self,
        ctx: RequestContext,
        *,
        title: str,
        description: str = "",
        category: TicketCategory = TicketCategory.GENERAL,
        priority: TicketPriority = TicketPriority.NORMAL,
        channel: TicketChannel = TicketChannel.API,
        customer_id: str | None = None,
        customer_email: str | None = None,
        tags: list[str] | None = None,
        custom_fields: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        customer_name: str | None = None,
    ) -> CommandResult:
        """Open a ticket; a retried create with the same key returns it again.

        Customers open tickets for themselves. Staff name the customer by
        ``customer_id``, or by ``customer_email`` alone
        (``CustomerDirectory.customer_for_email`` says whose address it is).
        """
        customer_id = self._customer_of(ctx, customer_id, customer_email)
        ticket_id = (
            uuid5(IDEMPOTENCY_NAMESPACE, f"{ctx.tenant_id}\x00{idempotency_key}")
            if idempotency_key
            else uuid4()
        )
        request = {"title": title.strip(), "customer_id": customer_id}
        for _ in range(2):
            # Only a keyed create can name a ticket that exists already.
            existing = self.find(ticket_id) if idempotency_key else None
            if existing is not None:
                return self._replay(ctx, existing, request)
            version, config = self.tenant_config(ctx.tenant_id)
            facts = TicketFacts(
                category=TicketCategory(category).value,
                priority=TicketPriority(priority).value,
                channel=TicketChannel(channel).value,
                tags=tuple(normalize_tags(list(tags or []))),
                custom_fields=dict(custom_fields or {}),
                title=title,
                description=description,
            )
            fields = {
                "ticket_id": ticket_id,
                "number": self._numbers.next(ctx.tenant_id),
                "title": title,
                "description": description,
                "category": category,
                "priority": priority,
                "channel": channel,
                "customer_id": customer_id,
                "customer_email": customer_email,
                "customer_name": customer_name,
                "tags": list(tags or []),
                "custom_fields": dict(custom_fields or {}),
                "provenance": ctx.provenance(),
                "sla_policy": policy_for(config, version, facts),
            }
            try:
                ticket, position = self._create_assigned(
                    ctx,
                    fields,
                    config,
                    facts,
                )
            except IntegrityError:
                # Another request with the same key won the race: answer
                # with its ticket.
                continue
            return CommandResult(ticket, position)
        raise ConcurrencyConflict("could not create the ticket")

    def _customer_of(
        self, ctx: RequestContext, customer_id: str | None, customer_email: str | None
    ) -> str:
        """The customer a new ticket is for: the caller, or whom staff named."""
        if ctx.is_customer:
            if customer_id not in (None, ctx.user_id):
                raise PermissionDenied("customers open tickets for themselves only")
            return ctx.user_id
        if customer_id:
            return customer_id
        if customer_email:
            return self._customers.customer_for_email(ctx.tenant_id, customer_email)
        raise InvalidCommand(
            "customer_id",
            "staff opening a ticket must name the customer: give customer_id,"
            " or customer_email to open it for the customer with that address",
        )

    @property
    def customers(self) -> CustomerDirectory:
        """Who a customer is by e-mail address (also for inbound e-mail)."""
        return self._customers

    def _create_assigned(
        self,
        ctx: RequestContext,
        fields: dict[str, Any],
        config: TenantConfig,
        facts: TicketFacts,
    ) -> tuple[Ticket, int | None]:
        """Save a new ticket with the assignment its rules choose, if any.

        The assignment is decided and saved in the team's turn, so that
        concurrent creates see each other's loads (``service.assignment``).
        """
        rule = matching_rule(config, facts)
        if rule is None or self._desk is None:
            ticket = Ticket.create(**fields, at=self._clock())
            return ticket, self._app.save_aggregates(ticket)
        team_name = rule.assigned_team
        team = find_team(config, team_name)
        with self._desk.team_turn(ctx.tenant_id, team, team_name) as turn:
            decision = choose_assignment(
                config, facts, loads=turn.loads, turn=turn.turn
            )
            at = self._clock()
            ticket = Ticket.create(**fields, at=at)
            if decision is not None:
                ticket.assign(
                    assignee_id=decision.agent_id,
                    team=decision.team,
                    reason=decision.reason,
                    provenance=_automation(ctx, AUTO_ASSIGNMENT),
                    at=at,
                )
            position = self._app.save_aggregates(ticket)
        return ticket, position

    def create_customer_ticket(
        self, *, tenant_id: str, customer_id: str, **fields: Any
    ) -> CommandResult:
        """Open a ticket as the customer themself (for embedding hosts)."""
        ctx = RequestContext(
            tenant_id=tenant_id, user_id=customer_id, roles=frozenset({"customer"})
        )
        return self.create_ticket(ctx, customer_id=customer_id, **fields)

    def _replay(
        self, ctx: RequestContext, ticket: Ticket, request: dict[str, str]
    ) -> CommandResult:
        if ticket.tenant_id != ctx.tenant_id:
            raise IdempotencyKeyReused("Idempotency-Key belongs to another request")
        first = {"title": ticket.title, "customer_id": ticket.customer_id}
        if first != request:
            raise IdempotencyKeyReused(
                "Idempotency-Key was already used for a different ticket"
            )
        return CommandResult(ticket, None, replayed=True)

    # -- reading -----------------------------------------------------------

    def get_ticket(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        as_of: int | datetime | None = None,
    ) -> Ticket:
        """The ticket now, or as it was at a version or a moment."""
        ticket = self._load(ctx, ticket_id)
        if as_of is None:
            return ticket
        version = as_of if isinstance(as_of, int) else self._version_at(ticket, as_of)
        if version < 1 or version > ticket.version:
            raise NoSuchVersion(ticket_id, as_of, ticket.version)
        if version == ticket.version:
            return ticket
        past: Ticket = self._app.repository.get(ticket_id, version=version)
        return past

    def seen_at(self, ticket: Ticket, as_of: int | datetime | None) -> datetime:
        """The moment a ticket read ``as_of`` describes: the time asked for,
        the time its version was written, or now (never later than now)."""
        now = self._clock()
        if isinstance(as_of, datetime):
            return min(as_of, now)
        if as_of is not None:
            return min(ticket.modified_on, now)
        return now

    def comments(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        as_of: int | datetime | None = None,
    ) -> list[dict[str, Any]]:
        ticket = self.get_ticket(ctx, ticket_id, as_of=as_of)
        return ticket.comments if ctx.is_staff else ticket.public_comments()

    def history(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        as_of: int | datetime | None = None,
    ) -> list[HistoryEntryRead]:
        """Every event of the ticket, oldest first: who, when, what changed
        (up to the version or moment ``as_of``)."""
        upto = self.get_ticket(ctx, ticket_id, as_of=as_of).version
        events = [
            event
            for event in self._app.events.get(ticket_id, lte=upto)
            if isinstance(event, Ticket.Event)
        ]
        if ctx.is_staff:
            return [_history_entry(event) for event in events]
        # A customer never learns another customer's ticket ids (a merge or
        # link across customers): those entries go, or lose the ids.
        unseen = self._unseen(ctx, {i for e in events for i in _tickets_named(e)})
        entries = []
        for event in events:
            if _staff_only(event) or _points_at(event, unseen):
                continue
            entry = _history_entry(event)
            for name in _STAFF_ONLY_FIELDS.get(type(event), ()):
                entry.data.pop(name, None)
            if (
                isinstance(event, Ticket.TicketMerged)
                and event.into_ticket_id in unseen
            ):
                for name in _OTHER_TICKET_FIELDS:
                    entry.data.pop(name, None)
            entries.append(entry)
        return entries

    def hidden_tickets(self, ctx: RequestContext, ticket: Ticket) -> frozenset[str]:
        """The tickets ``ticket`` names (links, merged into) that the caller
        could not open: for a customer, another customer's; for staff, none.
        Views leave them out, so no customer sees another's ticket ids."""
        if ctx.is_staff:
            return frozenset()
        named = {str(link["ticket_id"]) for link in ticket.links}
        if ticket.merged_into:
            named.add(ticket.merged_into)
        return self._unseen(ctx, named)

    def _unseen(self, ctx: RequestContext, ticket_ids: set[str]) -> frozenset[str]:
        """Those of ``ticket_ids`` the caller gets 404 for."""
        return frozenset(i for i in ticket_ids if not self._can_open(ctx, i))

    def _can_open(self, ctx: RequestContext, ticket_id: str) -> bool:
        try:
            self._load(ctx, UUID(ticket_id))
        except (ValueError, TicketNotFound):
            return False
        return True

    def attachment(
        self, ctx: RequestContext, ticket_id: UUID, attachment_id: str
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment's metadata and bytes."""
        ticket = self._load(ctx, ticket_id)
        meta = ticket.find_attachment(attachment_id)
        if meta is None:
            raise AttachmentNotFound(attachment_id)
        content = self._blobs.get(tenant_id=ctx.tenant_id, attachment_id=attachment_id)
        if content is None:
            raise AttachmentNotFound(attachment_id)
        return meta, content

    # -- changing ----------------------------------------------------------

    def update_ticket(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        expected_version: int | None = None,
        title: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        custom_fields: dict[str, Any] | None = None,
        category: TicketCategory | None = None,
        priority: TicketPriority | None = None,
    ) -> CommandResult:
        """A partial update; one event per kind of change, saved together."""
        self._require_staff(ctx)

        def decide(ticket: Ticket) -> None:
            p, at = ctx.provenance(), self._clock()
            ticket.update(
                provenance=p,
                at=at,
                title=title,
                description=description,
                tags=tags,
                custom_fields=custom_fields,
            )
            recategorized = category is not None and ticket.categorize(
                category, provenance=p, at=at
            )
            # The policy is chosen after the new category is in place: a
            # policy may be narrowed by category.
            reprioritized = priority is not None and ticket.change_priority(
                priority, provenance=p, at=at, sla_policy=self.policy_for_ticket(ticket)
            )
            if recategorized and not reprioritized:
                ticket.recalculate_sla(
                    self.policy_for_ticket(ticket), provenance=p, at=at
                )

        return self.execute(ctx, ticket_id, decide, expected_version)

    def add_tags(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        tags: list[str],
        expected_version: int | None = None,
    ) -> CommandResult:
        """Add tags to those the ticket has (``update_ticket`` replaces them)."""
        self._require_staff(ctx)

        def decide(ticket: Ticket) -> None:
            ticket.update(
                provenance=ctx.provenance(),
                at=self._clock(),
                tags=[*ticket.tags, *tags],
            )

        return self.execute(ctx, ticket_id, decide, expected_version)

    def assign(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        assignee_id: str | None = None,
        team: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        self._require_staff(ctx)

        def decide(ticket: Ticket) -> None:
            # After the load: another tenant's ticket stays a 404.
            directory = self.tenant_config(ctx.tenant_id)[1]
            check_people(directory, assignee_id=assignee_id, team=team)
            ticket.assign(
                assignee_id=assignee_id,
                team=team,
                provenance=ctx.provenance(),
                at=self._clock(),
            )

        return self.execute(ctx, ticket_id, decide, expected_version)

    def unassign(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        self._require_staff(ctx)
        return self._apply(ctx, ticket_id, Ticket.unassign, expected_version)

    def change_status(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        status: TicketStatus,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        self._require_staff(ctx)
        return self._apply(
            ctx,
            ticket_id,
            Ticket.change_status,
            expected_version,
            status=status,
            reason=reason,
        )

    def escalate(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        reason: str,
        team: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        self._require_staff(ctx)

        def decide(ticket: Ticket, agent_id: str | None, why: Why) -> None:
            check_people(self.tenant_config(ctx.tenant_id)[1], team=team)
            ticket.escalate(
                reason=reason,
                team=team,
                assignee_id=agent_id,
                assignment=why,
                provenance=ctx.provenance(),
                at=self._clock(),
            )

        return self.execute_handover(
            ctx, ticket_id, lambda _: team, decide, expected_version
        )

    def approve_escalation(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        comment: str = "",
        expected_version: int | None = None,
    ) -> CommandResult:
        """A supervisor approves the escalation a rule asked for."""
        self._require_supervisor(ctx)

        def decide(ticket: Ticket, agent_id: str | None, why: Why) -> None:
            ticket.approve_escalation(
                comment=comment,
                assignee_id=agent_id,
                assignment=why,
                provenance=ctx.provenance(),
                at=self._clock(),
            )

        def requested_team(ticket: Ticket) -> str | None:
            request = ticket.pending_escalation()
            return None if request is None else str(request["team"])

        return self.execute_handover(
            ctx, ticket_id, requested_team, decide, expected_version
        )

    def reject_escalation(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        comment: str = "",
        expected_version: int | None = None,
    ) -> CommandResult:
        """A supervisor rejects it; that level is not asked for again."""
        self._require_supervisor(ctx)
        return self._apply(
            ctx, ticket_id, Ticket.reject_escalation, expected_version, comment=comment
        )

    # -- automations: timers and queues ------------------------------------

    def sla(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        as_of: int | datetime | None = None,
    ) -> SLAReport:
        """Per SLA target: state, due time, business minutes used and left
        (now, or as they stood at the version or moment ``as_of``)."""
        ticket = self.get_ticket(ctx, ticket_id, as_of=as_of)
        at = self.seen_at(ticket, as_of)
        return SLAReport(ticket=ticket, at=at, targets=ticket.sla_report(at))

    def now(self) -> datetime:
        """The service's clock (injected in tests): when "now" is in reports."""
        return self._clock()

    def customer_email_bouncing(self, ticket: Ticket) -> bool:
        """Whether mail to the ticket's customer address bounces now.

        Now, whatever version of the ticket is shown: the notifier skips
        the address from the bounce on until mail from it arrives or an
        admin clears it (``mail_bounces``), and an agent reading the
        ticket should know before writing to it.
        """
        address = ticket.customer_email
        if not address:
            return False
        # Spelled as bounces are recorded (``domain.mail_loops``).
        with self._app.transaction() as cur:
            found = mail_rows.bouncing(cur, ticket.tenant_id, [address.strip().lower()])
        return bool(found)

    def resolve(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        resolution: str,
        resolution_code: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Resolve the ticket; its customer may mark their own ticket solved
        (recorded with the code ``solved_by_customer``, so reports tell the
        two apart), as help centres let requesters do."""
        if ctx.is_customer:
            resolution_code = SOLVED_BY_CUSTOMER
        return self._apply(
            ctx,
            ticket_id,
            Ticket.resolve,
            expected_version,
            resolution=resolution,
            resolution_code=resolution_code,
        )

    def reopen(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Customers may reopen their own tickets; so may staff."""
        return self._apply(
            ctx, ticket_id, Ticket.reopen, expected_version, reason=reason
        )

    def close(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Customers may close their own resolved tickets; so may staff."""
        return self._apply(ctx, ticket_id, Ticket.close, expected_version)

    def add_comment(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        body: str,
        internal: bool = False,
        solution: bool = False,
        expected_version: int | None = None,
        comment_id: str | None = None,
    ) -> CommandResult:
        """A public reply or an internal note; ``solution`` marks an agent's
        public reply as the solution to the problem.

        A ``comment_id`` the caller chose makes the command idempotent: a
        ticket (or its follow-up) that has the comment already is answered
        as it is (``replayed``), for inbound e-mail taken again after a crash.
        """
        if internal and not ctx.is_staff:
            raise PermissionDenied("only staff write internal notes")
        if solution and not ctx.is_staff:
            raise PermissionDenied("only staff mark a reply as the solution")
        if comment_id is not None:
            done = self._load(ctx, ticket_id)
            if _has_comment(done, comment_id):
                return CommandResult(done, None, replayed=True)
        comment_id = comment_id or uuid4().hex
        replies = self._reply_policy(ctx)
        if ctx.is_customer and not internal:
            done = self._load(ctx, ticket_id)
            if replies.needs_follow_up(done.status, done.resolved_at, self._clock()):
                return self._follow_up(
                    ctx, done, body=body, replies=replies, comment_id=comment_id
                )
        return self._apply(
            ctx,
            ticket_id,
            Ticket.add_comment,
            expected_version,
            body=body,
            internal=internal,
            solution=solution,
            comment_id=comment_id,
            replies=replies,
        )

    def _follow_up(
        self,
        ctx: RequestContext,
        done: Ticket,
        *,
        body: str,
        replies: CustomerReplyPolicy,
        comment_id: str | None = None,
    ) -> CommandResult:
        """The customer wrote on a ticket that is done (closed, or resolved
        longer ago than the tenant reopens): a follow-up ticket, linked both
        ways where the old one still takes links, holds the answer.

        One follow-up per old ticket (its id derives from the old one's), so
        a retry or a second answer lands on the same follow-up; once that
        one is done too, the next answer follows it up in turn.
        """
        created = self.create_ticket(
            ctx,
            title=follow_up_title(done.number, done.title),
            description=f"Follow-up to ticket #{done.number}.",
            category=done.category,
            priority=done.priority,
            channel=done.channel,
            customer_id=done.customer_id,
            customer_email=done.customer_email,
            customer_name=done.customer_name,
            idempotency_key=f"follow-up:{done.id}",
        )
        follow_up = created.ticket
        if replies.needs_follow_up(
            follow_up.status, follow_up.resolved_at, self._clock()
        ):
            return self._follow_up(
                ctx, follow_up, body=body, replies=replies, comment_id=comment_id
            )

        def attempt() -> CommandResult:
            new = self._load(ctx, follow_up.id)
            if comment_id is not None and _has_comment(new, comment_id):
                return CommandResult(new, None, replayed=True)
            old = self._load(ctx, done.id)
            p, at = ctx.provenance(), self._clock()
            new.link(old.id, LinkRelation.FOLLOW_UP_OF, provenance=p, at=at)
            new.add_comment(
                body,
                internal=False,
                provenance=p,
                at=at,
                replies=replies,
                comment_id=comment_id,
            )
            changed = [new]
            if is_allowed(Command.LINK, old.status) and old.link(
                new.id, LinkRelation.FOLLOWED_UP_BY, provenance=p, at=at
            ):
                changed.append(old)
            return CommandResult(new, self._app.save_aggregates(*changed))

        return self._with_retries(attempt)

    def add_attachment(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        filename: str,
        content_type: str,
        content: bytes,
        attachment_id: str | None = None,
    ) -> tuple[CommandResult, str]:
        """Store the bytes, then record the attachment on the ticket.

        If the ticket refuses the attachment, the stored bytes are removed
        again, so nothing is left half-written. An ``attachment_id`` the
        caller chose makes it idempotent (the ticket that has it already is
        answered as it is).
        """
        ticket = self._load(ctx, ticket_id)
        if attachment_id is not None and ticket.find_attachment(attachment_id):
            return CommandResult(ticket, None, replayed=True), attachment_id
        ensure_allowed(Command.ATTACH, ticket.status)
        attachment_id = attachment_id or uuid4().hex
        sha256 = hashlib.sha256(content).hexdigest()
        replies = self._reply_policy(ctx)
        self._blobs.put(
            tenant_id=ctx.tenant_id,
            ticket_id=ticket_id,
            attachment_id=attachment_id,
            sha256=sha256,
            content=content,
        )
        try:
            result = self._apply(
                ctx,
                ticket_id,
                Ticket.add_attachment,
                None,
                attachment_id=attachment_id,
                filename=filename,
                content_type=content_type,
                size=len(content),
                sha256=sha256,
                replies=replies,
            )
        except BaseException:
            self._blobs.delete(tenant_id=ctx.tenant_id, attachment_id=attachment_id)
            raise
        return result, attachment_id

    def rate_satisfaction(
        self, ctx: RequestContext, ticket_id: UUID, *, rating: int, comment: str = ""
    ) -> CommandResult:
        """The customer's satisfaction rating of their resolved ticket."""

        def decide(ticket: Ticket) -> None:
            # Checked after the load, so another tenant's ticket stays a 404.
            if not ctx.is_customer:
                raise PermissionDenied("only the ticket's customer rates it")
            ticket.rate_satisfaction(
                rating, comment=comment, provenance=ctx.provenance(), at=self._clock()
            )

        return self.execute(ctx, ticket_id, decide, None)

    def merge(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        into: UUID,
        confirm_cross_customer: bool = False,
    ) -> CommandResult:
        """Close ``ticket_id`` as merged into ``into``: both link, and ``into``
        receives its description and comments (``domain.merging``).

        Two customers' tickets merge only with ``confirm_cross_customer``
        and where the tenant's ``merges.cross_customer`` allows it.
        """
        self._require_staff(ctx)

        def attempt() -> CommandResult:
            source = self._load(ctx, ticket_id)
            target = self._load(ctx, into)
            policy = MergePolicy.from_config(self.tenant_config(ctx.tenant_id)[1])
            source.merge_into(
                target,
                provenance=ctx.provenance(),
                at=self._clock(),
                confirm_cross_customer=confirm_cross_customer,
                policy=policy,
            )
            position = self._app.save_aggregates(source, target)
            return CommandResult(source, position)

        return self._with_retries(attempt)

    def link(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        other_id: UUID,
        relation: LinkRelation,
    ) -> CommandResult:
        """Link two tickets both ways (``blocks`` here is ``blocked_by`` there)."""
        self._require_staff(ctx)

        def attempt() -> CommandResult:
            source = self._load(ctx, ticket_id)
            other = self._load(ctx, other_id)
            p, at = ctx.provenance(), self._clock()
            source.link(other.id, relation, provenance=p, at=at)
            other.link(source.id, LinkRelation(relation).inverse, provenance=p, at=at)
            position = self._app.save_aggregates(source, other)
            return CommandResult(source, position)

        return self._with_retries(attempt)

    # -- time tracking -------------------------------------------------------

    def time_entries(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        as_of: int | datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The ticket's time entries, oldest first (staff only)."""
        # Refused to every customer before any lookup: it reveals nothing.
        self._require_staff(ctx)
        ticket = self.get_ticket(ctx, ticket_id, as_of=as_of)
        return list(ticket.time_entries or [])

    def log_time(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        *,
        minutes: int,
        billable: bool,
        work_type: TimeEntryType,
        note: str = "",
        agent_id: str | None = None,
    ) -> tuple[CommandResult, str]:
        """Record time spent on the ticket; the result and the entry's id."""
        self._require_staff(ctx)
        entry_id = uuid4().hex

        def decide(ticket: Ticket) -> None:
            ticket.log_time(
                minutes=minutes,
                billable=billable,
                work_type=work_type,
                note=note,
                agent_id=agent_id,
                entry_id=entry_id,
                provenance=ctx.provenance(),
                at=self._clock(),
            )

        return self.execute(ctx, ticket_id, decide), entry_id

    def remove_time_entry(
        self, ctx: RequestContext, ticket_id: UUID, entry_id: str
    ) -> CommandResult:
        """Take back a time entry (its agent's, or anyone's by a supervisor)."""
        self._require_staff(ctx)

        def decide(ticket: Ticket) -> None:
            if ticket.find_time_entry(entry_id) is None:
                raise TimeEntryNotFound(entry_id)
            ticket.remove_time_entry(
                entry_id, provenance=ctx.provenance(), at=self._clock()
            )

        return self.execute(ctx, ticket_id, decide)

    # -- settings-driven decisions ------------------------------------------

    def tenant_settings(self, tenant_id: str) -> tuple[int, dict[str, Any]]:
        if self._settings is None:
            from dotmac.ticketing.domain.tenant_config_aggregate import (
                default_settings_document,
            )

            return 0, default_settings_document()
        return self._settings(tenant_id)

    def tenant_config(self, tenant_id: str) -> tuple[int, TenantConfig]:
        """``(version, configuration)``: the tenant's document, typed."""
        return self._parsed(tenant_id, *self.tenant_settings(tenant_id))

    def tenant_document_and_config(
        self, tenant_id: str
    ) -> tuple[int, dict[str, Any], TenantConfig]:
        """``(version, document, configuration)`` of one read: for whoever
        hands the stored document on (a workflow's context) with its typed form."""
        version, document = self.tenant_settings(tenant_id)
        return version, document, self._parsed(tenant_id, version, document)[1]

    def _parsed(
        self, tenant_id: str, version: int, document: Mapping[str, Any]
    ) -> tuple[int, TenantConfig]:
        # Parsed once per (tenant, version): a version's document never changes.
        cached = self._configs.get(tenant_id)
        if cached is None or cached[0] != version:
            cached = self._configs[tenant_id] = (version, parse_config(document))
        return cached

    def _reply_policy(self, ctx: RequestContext) -> CustomerReplyPolicy:
        """What the tenant lets a customer's answer do to a waiting ticket.

        Only a customer's answer ends a wait, so for anybody else the
        settings are not read.
        """
        if not ctx.is_customer:
            return DEFAULT_REPLY_POLICY
        _, config = self.tenant_config(ctx.tenant_id)
        return CustomerReplyPolicy.from_config(config)

    def policy_for_ticket(self, ticket: Ticket) -> SLAPolicy:
        """The tenant's current SLA policy for the ticket as it is now."""
        version, config = self.tenant_config(ticket.tenant_id)
        return policy_for(config, version, facts_of(ticket))

    def execute_handover(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        receiving_team: Callable[[Ticket], str | None],
        decide: Callable[[Ticket, str | None, Why], object],
        expected_version: int | None,
        *,
        config: TenantConfig | None = None,
    ) -> CommandResult:
        """Load, decide, save a command that may hand the ticket to a new team.

        When the team changes, an agent of the new team is picked by its
        rule's strategy and the command is decided and saved within that
        team's turn, exactly like an assignment on create: concurrent
        hand-overs see each other's loads, and a refused command gives the
        turn back (its transaction rolls back).
        """

        def attempt() -> CommandResult:
            ticket = self._load(ctx, ticket_id)
            if expected_version is not None and ticket.version != expected_version:
                raise PreconditionFailed(expected_version, ticket.version)
            team_name = receiving_team(ticket)
            settings = config
            if settings is None and team_name is not None:
                _, settings = self.tenant_config(ticket.tenant_id)
            team = None
            if team_name and team_name != ticket.assigned_team and settings:
                team = find_team(settings, team_name)
            if self._desk is None or team is None or not team.agents:
                decide(ticket, None, None)
                return CommandResult(ticket, self._app.save_aggregates(ticket))
            assert settings is not None and team_name is not None
            strategy = team_strategy(settings, team_name)
            with self._desk.team_turn(ticket.tenant_id, team, team_name) as turn:
                agent_id, why = pick_agent(
                    team, strategy, facts_of(ticket), loads=turn.loads, turn=turn.turn
                )
                decide(
                    ticket, agent_id, {"strategy": strategy, "team": team_name, **why}
                )
                position = self._app.save_aggregates(ticket)
            return CommandResult(ticket, position)

        return self._with_retries(attempt)

    # -- the one load-decide-save loop ------------------------------------

    def execute(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        decide: Callable[[Ticket], object],
        expected_version: int | None = None,
    ) -> CommandResult:
        """Load the ticket as ``ctx`` may see it, decide, save; retry races.

        The one command loop: use cases elsewhere (workflows) run theirs
        through it too.
        """

        def attempt() -> CommandResult:
            ticket = self._load(ctx, ticket_id)
            if expected_version is not None and ticket.version != expected_version:
                raise PreconditionFailed(expected_version, ticket.version)
            decide(ticket)
            position = self._app.save_aggregates(ticket)
            return CommandResult(ticket, position)

        return self._with_retries(attempt)

    def _apply(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        command: Callable[..., object],
        expected_version: int | None,
        **arguments: Any,
    ) -> CommandResult:
        """``execute`` one ``Ticket`` command: ``command(ticket, **arguments)``,
        by the caller (its provenance) at the clock's time."""
        return self.execute(
            ctx,
            ticket_id,
            lambda t: command(
                t, **arguments, provenance=ctx.provenance(), at=self._clock()
            ),
            expected_version,
        )

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        return retry_on_conflict(attempt, retries=self._retries, what="ticket")

    def _load(self, ctx: RequestContext, ticket_id: UUID) -> Ticket:
        ticket = self.find(ticket_id)
        if ticket is None or ticket.tenant_id != ctx.tenant_id:
            raise TicketNotFound(ticket_id)
        if ctx.is_customer and not ticket.is_visible_to_customer(ctx.user_id):
            raise TicketNotFound(ticket_id)
        return ticket

    def find(self, ticket_id: UUID) -> Ticket | None:
        try:
            ticket: Ticket = self._app.repository.get(ticket_id)
        except AggregateNotFoundError:
            return None
        # The application stores other aggregates too (tenant settings).
        return ticket if isinstance(ticket, Ticket) else None

    def _version_at(self, ticket: Ticket, moment: datetime) -> int:
        version = 0
        for event in self._app.events.get(ticket.id):
            if cast(Ticket.Event, event).timestamp > moment:
                break
            version = event.originator_version
        return version

    @staticmethod
    def _require_supervisor(ctx: RequestContext) -> None:
        if not ctx.has_role("supervisor", "admin"):
            raise PermissionDenied("escalation approvals need a supervisor or admin")

    @staticmethod
    def _require_staff(ctx: RequestContext) -> None:
        if not ctx.is_staff:
            raise PermissionDenied("this needs an agent, supervisor, admin or service")


#: Events of the desk's own workings that a customer's history leaves out:
#: SLA clocks carry the policy internals (``GET /sla`` shows customers the
#: states and times), escalation requests are between staff, and workflow
#: steps record what other systems answered.
_STAFF_ONLY_EVENTS: tuple[type[Ticket.Event], ...] = (
    Ticket.SLAStarted,
    Ticket.SLARecalculated,
    Ticket.SLAPaused,
    Ticket.SLAResumed,
    Ticket.SLAStopped,
    Ticket.SLAWarning,
    Ticket.SLABreached,
    Ticket.EscalationRequested,
    Ticket.EscalationApproved,
    Ticket.EscalationRejected,
    # Workflow steps carry integration answers and internal notes' text.
    Ticket.WorkflowStarted,
    Ticket.WorkflowStepCompleted,
    Ticket.WorkflowStepWaiting,
    Ticket.WorkflowStepFailed,
    Ticket.WorkflowStepDue,
    Ticket.WorkflowCompleted,
    Ticket.WorkflowCancelled,
    # Time tracking is the desk's bookkeeping (GET /time-entries: staff).
    Ticket.TimeLogged,
    Ticket.TimeEntryRemoved,
)
#: Fields saying why an automation chose whom (rules, agents' loads).
_STAFF_ONLY_FIELDS: dict[type[Ticket.Event], tuple[str, ...]] = {
    Ticket.TicketAssigned: ("reason",),
    Ticket.TicketEscalated: ("rule", "assignment"),
    # Whom the notifier tells, and whether the other ticket is someone else's.
    Ticket.TicketMerged: ("into_assignee_id", "cross_customer"),
}
#: A merge entry's fields that name the target: a customer who may not see
#: the target reads that the ticket was merged, not into what.
_OTHER_TICKET_FIELDS = ("into_ticket_id", "into_number")


def _has_comment(ticket: Ticket, comment_id: str) -> bool:
    return any(c["id"] == comment_id for c in ticket.comments)


def _tickets_named(event: Ticket.Event) -> tuple[str, ...]:
    """The other tickets an event names."""
    if isinstance(event, Ticket.TicketLinked):
        return (event.linked_ticket_id,)
    if isinstance(event, Ticket.TicketMerged):
        return (event.into_ticket_id,)
    if isinstance(event, Ticket.CommentAdded) and event.merged_from:
        return (event.merged_from,)
    return ()


def _points_at(event: Ticket.Event, unseen: frozenset[str]) -> bool:
    """A link to, or a comment carried from, a ticket the caller may not see."""
    if isinstance(event, Ticket.TicketMerged):
        return False  # kept, without the target (_OTHER_TICKET_FIELDS)
    return any(ticket_id in unseen for ticket_id in _tickets_named(event))


def _staff_only(event: Ticket.Event) -> bool:
    if isinstance(event, Ticket.CommentAdded):
        return event.internal
    return isinstance(event, _STAFF_ONLY_EVENTS)


def _history_entry(event: Ticket.Event) -> HistoryEntryRead:
    data = {
        f.name: getattr(event, f.name)
        for f in fields(event)
        if f.name not in _EVENT_BASE_FIELDS
    }
    return HistoryEntryRead(
        version=event.originator_version,
        event=type(event).__name__,
        at=event.timestamp,
        actor=dict(event.actor),
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        data=data,
    )


def _automation(ctx: RequestContext, name: str) -> Provenance:
    """An automation acting within a person's request (same correlation)."""
    return ctx.provenance().acting_as(name, causation_id=ctx.causation_id)
