"""Triggers: a tenant's rules that act on tickets by themselves.

A trigger waits for an event of a kind (:data:`EVENT_KINDS`: a ticket was
created, a customer commented, an SLA was breached, …) or for a time
condition (:class:`TimeCondition`: "pending for 72 business hours"), then,
if its conditions (the rules' vocabulary, ``domain.rules``) hold for the
ticket as it is then, applies its actions (``domain.macro_actions``).

Every event a trigger's actions record carries a ``causation_id`` naming
the trigger, how deep in a chain of triggers it is, and what caused it
(:func:`trigger_cause`), so the history explains itself and the chain can
be counted without reading anything else: an event caused by a trigger at
depth ``d`` makes the triggers it sets off run at depth ``d + 1``, and one
that would run deeper than :data:`MAX_DEPTH` is cut (recorded, not run). A
trigger never runs on an event its own actions caused.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.enums import TicketStatus
from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.macro_actions import MacroAction, check_template

if TYPE_CHECKING:
    from dotmac.ticketing.domain.tenant_config import TenantConfig
    from dotmac.ticketing.domain.ticket import Ticket

#: The kinds of event a trigger may wait for.
EVENT_KINDS = (
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
)

#: How long a chain of triggers may grow: a trigger set off by the fifth
#: trigger's change in a row is cut.
MAX_DEPTH = 5

TRIGGER_CAUSE = "trigger:"

_CHANGES = frozenset(
    {
        "TicketUpdated",
        "TicketCategorized",
        "PriorityChanged",
        "TicketAssigned",
        "TicketUnassigned",
        "StatusChanged",
    }
)
_OWN_KIND = {
    "TicketCreated": "created",
    "PriorityChanged": "priority_changed",
    "TicketAssigned": "assigned",
    "StatusChanged": "status_changed",
    "TicketEscalated": "escalated",
    "SLAWarning": "sla_warning",
    "SLABreached": "sla_breach",
    "TicketResolved": "resolved",
    "TicketReopened": "reopened",
    "TicketClosed": "closed",
}
_STATUS_EVENTS = frozenset({"TicketResolved", "TicketReopened", "TicketClosed"})


def event_kinds(
    event_name: str, *, actor_role: str, internal: bool = False
) -> frozenset[str]:
    """The kinds a ticket event (``Ticket.CommentAdded`` is ``CommentAdded``)
    is, for the triggers waiting for them; empty for the desk's own
    workings (SLA clocks, workflow steps)."""
    kinds = set()
    if event_name in _OWN_KIND:
        kinds.add(_OWN_KIND[event_name])
    if event_name in _CHANGES:
        kinds.add("updated")
    if event_name in _STATUS_EVENTS:
        kinds.add("status_changed")
    if event_name == "CommentAdded":
        if internal:
            kinds.add("internal_note")
        elif actor_role == "customer":
            kinds.add("customer_comment")
        else:
            kinds.add("agent_comment")
    return frozenset(kinds)


@dataclass(frozen=True)
class TriggerCause:
    """What a ``causation_id`` of a trigger's event says."""

    trigger_id: str
    depth: int
    #: The event (``<ticket>:<version>``) or timer that set the trigger off.
    cause: str


def trigger_cause(trigger_id: object, depth: int, cause: str) -> str:
    """``trigger:<id>:<depth>:<cause>``: the causation of a trigger's events."""
    return f"{TRIGGER_CAUSE}{trigger_id}:{depth}:{cause}"


def parse_cause(causation_id: str | None) -> TriggerCause | None:
    """The trigger behind an event's ``causation_id``; None: not a trigger's."""
    if not causation_id or not causation_id.startswith(TRIGGER_CAUSE):
        return None
    parts = causation_id[len(TRIGGER_CAUSE) :].split(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return TriggerCause(trigger_id=parts[0], depth=int(parts[1]), cause=parts[2])


def depth_after(causation_id: str | None) -> int:
    """The depth a trigger set off by an event with this causation runs at."""
    caused = parse_cause(causation_id)
    return 1 if caused is None else caused.depth + 1


@dataclass(frozen=True)
class TimeCondition:
    """The ticket has been in ``status`` for ``hours`` (business hours of the
    ticket's team, else the tenant's, when ``business_hours``).

    Counted from when the ticket entered the status as its state records
    it: pending from the start of its wait, resolved from ``resolved_at``,
    closed from ``closed_at``; for the other statuses from the last thing a
    person did to the ticket (its creation else), so "open for 8 hours"
    means eight hours without anyone touching it.
    """

    status: TicketStatus
    hours: float
    business_hours: bool = False

    def since(self, ticket: Ticket) -> datetime | None:
        """When the wait began; None when the ticket is not in the status."""
        if ticket.status != self.status:
            return None
        if self.status == TicketStatus.PENDING and ticket.resolution_pauses:
            start = ticket.resolution_pauses[-1]["start"]
            if start is not None:
                return start
        if self.status == TicketStatus.RESOLVED and ticket.resolved_at:
            return ticket.resolved_at
        if self.status == TicketStatus.CLOSED and ticket.closed_at:
            return ticket.closed_at
        return ticket.last_activity_at or ticket.created_on

    def due_at(self, ticket: Ticket, calendar: BusinessCalendar) -> datetime | None:
        """When the condition comes true; None while the ticket is elsewhere."""
        start = self.since(ticket)
        if start is None:
            return None
        if self.business_hours:
            return calendar.add_business_minutes(start, self.hours * 60)
        return start + timedelta(hours=self.hours)

    def as_document(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "hours": self.hours,
            "business_hours": self.business_hours,
        }

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> TimeCondition:
        return cls(
            status=TicketStatus(raw["status"]),
            hours=float(raw["hours"]),
            business_hours=bool(raw.get("business_hours", False)),
        )


@dataclass(frozen=True)
class ApplyMacro:
    """A trigger's action: the tenant's macro's actions, as it is then."""

    macro_id: str
    type: str = "apply_macro"


@dataclass(frozen=True)
class Notify:
    """A trigger's action: an e-mail about the ticket to a team's agents (those
    with an address in the tenant's settings) or to one address."""

    subject: str
    body: str
    team: str | None = None
    address: str | None = None
    type: str = "notify"


@dataclass(frozen=True)
class CallWebhook:
    """A trigger's action: one of the tenant's webhooks is called with the
    trigger's firing (``ticketing.trigger.fired.v1``)."""

    webhook_id: str
    type: str = "call_webhook"


#: What a trigger sends rather than records on the ticket.
Message = Notify | CallWebhook
TriggerAction = MacroAction | ApplyMacro | Message

#: The CloudEvent type of a trigger's webhook call.
FIRED_TYPE = "ticketing.trigger.fired.v1"


def notify_recipients(action: Notify, config: TenantConfig) -> list[str]:
    """Whom the e-mail goes to: the address, or the team's agents who have
    one (sorted, each once)."""
    if action.address is not None:
        return [action.address]
    team = config.team(action.team) if action.team else None
    if team is None:
        return []
    return sorted({a.email for a in team.agents if a.email})


def check_message(action: Message, config: TenantConfig, *, at: str) -> None:
    """Refuse a notification to a team the tenant does not have."""
    if isinstance(action, Notify):
        if (action.team is None) == (action.address is None):
            raise InvalidCommand(at, "notify a team or an address, one of them")
        if action.team is not None and config.team(action.team) is None:
            raise InvalidCommand(f"{at}.team", f"no team {action.team!r}")
        check_template(f"{at}.subject", action.subject)
        check_template(f"{at}.body", action.body)


@dataclass(frozen=True)
class Trigger:
    """A trigger as values: when it runs, on which tickets, to do what."""

    id: str
    tenant_id: str
    name: str
    #: The event kinds it runs on (empty for a time trigger).
    events: frozenset[str]
    #: What it waits for (None for an event trigger).
    time: TimeCondition | None
    conditions: Mapping[str, Any]
    actions: tuple[TriggerAction, ...]

    @property
    def automation(self) -> str:
        """The actor its events are recorded by."""
        return f"{TRIGGER_CAUSE}{self.id}"

    def runs_on(self, kinds: frozenset[str], causation_id: str | None) -> bool:
        """Whether an event of these kinds, so caused, sets it off: never
        an event its own actions caused."""
        caused = parse_cause(causation_id)
        if caused is not None and caused.trigger_id == self.id:
            return False
        return bool(self.events & kinds)
