"""Who is told what about a ticket event: the notifier's rules, as pure functions.

Input: a CloudEvent of the ticket topic, the ticket as the notifier knows it
(its ``notifier_tickets`` row, after the event), the tenant's directory of
agents and teams, and the tenant's webhooks. Output: notifications, each one
delivery on one channel to one recipient, with the key that makes it
exactly-once (``<event id>|<channel>|<recipient>``).

The rules (docs/architecture.md, "Kafka side effects"):

- created → acknowledgment to the customer: the one acknowledgment of the
  ticket, with the time an agent will reply by; a workflow's own
  acknowledgment comment (``acknowledgment`` on the comment) is not sent
  again, to anyone;
- assigned → notice to the new assignee (to the team when only a team was
  given);
- comment → the other side: a customer's comment to the assignee (or the
  team when nobody is assigned); an agent's public comment to the customer
  and, when someone else wrote it, to the assignee; an internal note to the
  assignee only — internal notes never reach customers. An automation's
  comment (a workflow step, the SLA timers, any actor of kind
  ``automation``) reaches no agent: the desk's own bots are not news to
  it; a public one still reaches the customer (it usually asks them
  something);
- escalated → the target team's members (skipped when the directory knows
  none) and the assignee who keeps it;
- escalation requested (a rule that needs approval fired) → the
  supervisors of the ticket's team and of the target team (the target
  team's members when no supervisor is listed);
- SLA warning / breach → the assignee (the team when nobody is assigned);
- resolved → the customer, with a satisfaction link;
- merged → the merged ticket's customer (their request was combined with
  another one; where to follow it only when that one is theirs too), the
  assignee of the ticket it was merged into and its own assignee; the
  comments the merge carried over are not sent again;
- reopened (by the customer, their answer, or a colleague) → the assignee
  (the team when nobody is assigned).

People are never told about their own actions, except a customer's
acknowledgment of the ticket they opened. Agents are addressed by id (the
token's ``sub``) and named by the directory's name for them: every agent
notification is an in-app row, plus e-mail and SMS where the directory has
an address or number. Customers get an
in-app row keyed by their id, plus e-mail when the ticket has an address.
Every event whose type a tenant's webhook subscribes to (no types: all)
goes to that webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dotmac.ticketing.domain.defaults import DEFAULT_COALESCE_SECONDS, DEFAULT_LOCALE
from dotmac.ticketing.domain.tenant_config import AgentConfig, TenantConfig
from dotmac.ticketing.domain.tenant_config import parse as parse_config

Channel = Literal["email", "sms", "in_app", "webhook"]
Audience = Literal["agent", "customer", "webhook"]

EVENT_TYPE_PREFIX = "ticketing.ticket."

# Notification kinds: one template each (consumers/notify/templates/<kind>/).
TICKET_CREATED = "ticket_created"
TICKET_ASSIGNED = "ticket_assigned"
COMMENT_ADDED = "comment_added"  # to agents: a customer wrote, or a colleague
COMMENT_REPLY = "comment_reply"  # to the customer: an agent's public answer
TICKET_ESCALATED = "ticket_escalated"
ESCALATION_REQUESTED = "escalation_requested"
SLA_WARNING = "sla_warning"
SLA_BREACHED = "sla_breached"
TICKET_RESOLVED = "ticket_resolved"
REQUEST_MERGED = "request_merged"  # to the customer: combined with another
TICKET_MERGED = "ticket_merged"  # to agents: which ticket went into which
TICKET_REOPENED = "ticket_reopened"
# One e-mail listing several updates (consumers/notify/mail_digest.py).
EMAIL_DIGEST = "email_digest"
WEBHOOK = "webhook"

KINDS = (
    TICKET_CREATED,
    TICKET_ASSIGNED,
    COMMENT_ADDED,
    COMMENT_REPLY,
    TICKET_ESCALATED,
    ESCALATION_REQUESTED,
    SLA_WARNING,
    SLA_BREACHED,
    TICKET_RESOLVED,
    REQUEST_MERGED,
    TICKET_MERGED,
    TICKET_REOPENED,
    EMAIL_DIGEST,
)


# ----------------------------------------------------------------------
# The tenant directory: who the agents are and how to reach them.


@dataclass(frozen=True)
class Agent:
    id: str
    email: str | None = None
    phone: str | None = None
    role: str = "agent"
    name: str | None = None


@dataclass(frozen=True)
class MailPreferences:
    """How a tenant's e-mail reads (settings sections ``notifications`` and
    ``business_hours``): the locale and zone of its times, where replies
    go (None: the sender) and the window e-mails are merged in (0: none)."""

    locale: str = DEFAULT_LOCALE
    timezone: str = "UTC"
    reply_to: str | None = None
    coalesce_seconds: int = DEFAULT_COALESCE_SECONDS

    @classmethod
    def from_config(cls, config: TenantConfig) -> MailPreferences:
        """From a tenant's configuration (or a config tenant of that shape)."""
        section = config.notifications
        hours = config.business_hours.config
        timezone = hours.get("timezone") if isinstance(hours, Mapping) else None
        return cls(
            locale=section.locale,
            timezone=str(timezone or "UTC"),
            reply_to=section.reply_to,
            coalesce_seconds=section.email_coalesce_seconds,
        )


@dataclass(frozen=True)
class SlaAlerts:
    """A tenant's choice of who hears of SLA warnings and breaches.

    The assignee hears first, else the ticket's team. A breach also reaches
    the team's supervisors (``supervisors_on_breach``); a ticket with
    neither assignee nor team reaches the tenant's ``admins``.
    """

    supervisors_on_breach: bool = True
    admins: tuple[Agent, ...] = ()


class TenantDirectory(Protocol):
    async def refresh(self, tenant_id: str) -> None:
        """Bring the tenant's entries up to date (before an event is decided)."""

    def agent(self, tenant_id: str, agent_id: str) -> Agent | None:
        """The agent's contact details, or None when the tenant lists none."""

    def team_members(self, tenant_id: str, team: str) -> list[Agent]:
        """The team's agents (empty when the team is unknown)."""

    def sla_alerts(self, tenant_id: str) -> SlaAlerts:
        """Who else the tenant wants told of SLA warnings and breaches."""

    def preferences(self, tenant_id: str) -> MailPreferences:
        """How the tenant's e-mail reads (locale, zone, reply address, pace)."""


class ConfigTenantDirectory:
    """A directory read from configuration, in the tenant settings' shape.

    ``{"tenants": {"acme": {"teams": [{"name": "Support", "agents":
    [{"id": "a-1", "email": "a1@acme.test", "phone": "+15550001"}]}]}}}``.
    Team names match case-insensitively; an agent in several teams has the
    contact details of their first listing that gives them.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._teams: dict[tuple[str, str], list[Agent]] = {}
        self._agents: dict[tuple[str, str], Agent] = {}
        self._alerts: dict[str, SlaAlerts] = {}
        self._preferences: dict[str, MailPreferences] = {}
        tenants = (config or {}).get("tenants") or {}
        for tenant_id, tenant in tenants.items():
            self._add(str(tenant_id), parse_config(tenant or {}))

    @classmethod
    def of_tenant(cls, tenant_id: str, config: TenantConfig) -> ConfigTenantDirectory:
        """The directory of one tenant's (already typed) configuration."""
        directory = cls(None)
        directory._add(tenant_id, config)
        return directory

    def _add(self, tenant_id: str, config: TenantConfig) -> None:
        self._preferences[tenant_id] = MailPreferences.from_config(config)
        self._alerts[tenant_id] = SlaAlerts(
            supervisors_on_breach=config.sla_alerts.supervisors_on_breach,
            admins=tuple(_agent(admin) for admin in config.sla_alerts.admins),
        )
        for team in config.teams:
            members = [_agent(agent) for agent in team.agents]
            key = (tenant_id, _team_key(team.name))
            self._teams.setdefault(key, []).extend(members)
            for member in members:
                self._remember(tenant_id, member)

    def _remember(self, tenant_id: str, agent: Agent) -> None:
        known = self._agents.get((tenant_id, agent.id))
        if known is None:
            self._agents[(tenant_id, agent.id)] = agent
        else:
            self._agents[(tenant_id, agent.id)] = Agent(
                id=agent.id,
                email=known.email or agent.email,
                phone=known.phone or agent.phone,
                role="supervisor"
                if "supervisor" in (known.role, agent.role)
                else "agent",
                name=known.name or agent.name,
            )

    async def refresh(self, tenant_id: str) -> None:
        """Nothing to do: the configuration is read once."""

    def agent(self, tenant_id: str, agent_id: str) -> Agent | None:
        return self._agents.get((tenant_id, agent_id))

    def team_members(self, tenant_id: str, team: str) -> list[Agent]:
        members = self._teams.get((tenant_id, _team_key(team)), [])
        return [self._agents.get((tenant_id, m.id), m) for m in members]

    def sla_alerts(self, tenant_id: str) -> SlaAlerts:
        return self._alerts.get(tenant_id, SlaAlerts())

    def preferences(self, tenant_id: str) -> MailPreferences:
        return self._preferences.get(tenant_id, MailPreferences())


def _agent(configured: AgentConfig) -> Agent:
    return Agent(
        id=configured.id,
        email=configured.email,
        phone=configured.phone,
        role=configured.role,
        name=configured.name,
    )


def _team_key(name: str) -> str:
    return name.strip().casefold()


# ----------------------------------------------------------------------
# Inputs and outputs.


@dataclass(frozen=True)
class TicketContext:
    """What the notifier knows about a ticket (a ``notifier_tickets`` row)."""

    ticket_id: str
    tenant_id: str
    number: int
    title: str
    customer_id: str
    customer_email: str | None
    assignee_id: str | None
    assigned_team: str | None
    status: str
    customer_name: str | None = None
    version: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TicketContext:
        return cls(
            ticket_id=str(row["ticket_id"]),
            tenant_id=row["tenant_id"],
            number=int(row["number"]),
            title=row["title"],
            customer_id=row["customer_id"],
            customer_email=row["customer_email"],
            assignee_id=row["assignee_id"],
            assigned_team=row["assigned_team"],
            status=row["status"],
            customer_name=row.get("customer_name"),
            version=int(row.get("version") or 0),
        )


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    event_types: tuple[str, ...] = ()

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


@dataclass(frozen=True)
class Recipient:
    """A person to tell: an agent (by id) or the ticket's customer."""

    audience: Literal["agent", "customer"]
    id: str
    email: str | None = None
    phone: str | None = None
    role: str = "agent"
    name: str | None = None


@dataclass(frozen=True)
class Notice:
    """One person to tell about one event, in the words of one template."""

    kind: str
    recipient: Recipient


@dataclass(frozen=True)
class Notification:
    """One delivery: a notice (or webhook call) on one channel."""

    kind: str
    channel: Channel
    recipient: str  # e-mail address, phone number, user id or webhook id
    audience: Audience
    person_id: str | None  # the agent or customer id (None for webhooks)

    def delivery_key(self, event_id: str) -> str:
        return delivery_key(event_id, self.channel, self.recipient)


def delivery_key(event_id: str, channel: str, recipient: str) -> str:
    """The ledger key: one row per event, channel and recipient."""
    return f"{event_id}|{channel}|{recipient}"


def event_name(event_type: str) -> str | None:
    """``ticketing.ticket.comment_added.v1`` → ``comment_added``."""
    if not event_type.startswith(EVENT_TYPE_PREFIX):
        return None
    name, _, version = event_type[len(EVENT_TYPE_PREFIX) :].rpartition(".")
    if not name or not version.startswith("v"):
        return None
    return name


def ticket_url(public_url: str, ticket_id: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/tickets/{ticket_id}"


# ----------------------------------------------------------------------
# The rules.


def decide_notifications(
    event: Mapping[str, Any],
    ticket: TicketContext | None,
    directory: TenantDirectory,
    webhooks: Sequence[Webhook] = (),
) -> list[Notification]:
    """Every delivery the event calls for, each (channel, recipient) once."""
    notices = decide_notices(event, ticket, directory) if ticket else []
    deliveries = [n for notice in notices for n in channels_for(notice)]
    deliveries += webhook_notifications(event, webhooks)
    unique: dict[tuple[str, str], Notification] = {}
    for notification in deliveries:
        unique.setdefault((notification.channel, notification.recipient), notification)
    return list(unique.values())


def decide_notices(
    event: Mapping[str, Any], ticket: TicketContext, directory: TenantDirectory
) -> list[Notice]:
    """Who is told about the event, and with which template."""
    name = event_name(str(event.get("type", "")))
    data: Mapping[str, Any] = event.get("data") or {}
    actor: Mapping[str, Any] = data.get("actor") or {}
    actor_id = actor.get("id")
    tenant = ticket.tenant_id

    def agents(*ids: str | None) -> list[Recipient]:
        return [_agent_recipient(directory, tenant, i) for i in ids if i]

    def team(name: str | None) -> list[Recipient]:
        if not name:
            return []
        return [_as_recipient(a) for a in directory.team_members(tenant, name)]

    customer = Recipient(
        "customer",
        ticket.customer_id,
        email=ticket.customer_email,
        name=ticket.customer_name,
    )
    told: list[tuple[str, list[Recipient]]] = []

    if name == "ticket_created":
        told.append((TICKET_CREATED, [customer]))
    elif name == "ticket_assigned":
        assignee = data.get("assignee_id")
        if assignee and assignee != data.get("previous_assignee_id"):
            told.append((TICKET_ASSIGNED, agents(assignee)))
        elif not assignee and data.get("team") != data.get("previous_team"):
            told.append((TICKET_ASSIGNED, team(data.get("team"))))
    elif name == "comment_added":
        internal = bool(data.get("internal"))
        if data.get("acknowledgment"):
            pass  # the customer had the acknowledgment when the ticket opened
        elif data.get("merged_from"):
            pass  # carried over by a merge: the merge's notices tell people
        elif is_automation(actor):
            # A bot's words are the desk's own: news to the customer only.
            if not internal:
                told.append((COMMENT_REPLY, [customer]))
        elif actor.get("role") == "customer":
            people = agents(ticket.assignee_id) or team(ticket.assigned_team)
            told.append((COMMENT_ADDED, people))
        elif internal:
            told.append((COMMENT_ADDED, agents(ticket.assignee_id)))
        else:
            told.append((COMMENT_REPLY, [customer]))
            told.append((COMMENT_ADDED, agents(ticket.assignee_id)))
    elif name == "ticket_escalated":
        told.append(
            (TICKET_ESCALATED, team(data.get("team")) + agents(data.get("assignee_id")))
        )
    elif name == ESCALATION_REQUESTED:
        teams = [ticket.assigned_team, data.get("team")]
        members = [m for t in teams for m in team(t)]
        supervisors = [m for m in members if m.role == "supervisor"]
        told.append((ESCALATION_REQUESTED, supervisors or team(data.get("team"))))
    elif name in (SLA_WARNING, SLA_BREACHED):
        told.append((name, _sla_alerted(name, ticket, directory, agents, team)))
    elif name == "ticket_resolved":
        told.append((TICKET_RESOLVED, [customer]))
    elif name == "ticket_merged":
        told.append((REQUEST_MERGED, [customer]))
        # The target's assignee (in the event: the notifier knows this
        # ticket's row only), then this ticket's own.
        told.append(
            (TICKET_MERGED, agents(data.get("into_assignee_id"), ticket.assignee_id))
        )
    elif name == "ticket_reopened":
        people = agents(ticket.assignee_id) or team(ticket.assigned_team)
        told.append((TICKET_REOPENED, people))

    notices: list[Notice] = []
    seen: set[tuple[str, str]] = set()
    for kind, people in told:
        for person in people:
            if person.audience == "agent" and person.id == actor_id:
                continue  # nobody is told about their own action
            if (person.audience, person.id) in seen:
                continue
            seen.add((person.audience, person.id))
            notices.append(Notice(kind, person))
    return notices


def _sla_alerted(
    kind: str,
    ticket: TicketContext,
    directory: TenantDirectory,
    agents: Callable[[str | None], list[Recipient]],
    team: Callable[[str | None], list[Recipient]],
) -> list[Recipient]:
    """The assignee, else the team (its queue); a breach also the team's
    supervisors; with no team, the tenant's admins (see :class:`SlaAlerts`)."""
    alerts = directory.sla_alerts(ticket.tenant_id)
    members = team(ticket.assigned_team)
    people = agents(ticket.assignee_id) or members
    if kind == SLA_BREACHED and alerts.supervisors_on_breach:
        people = people + [m for m in members if m.role == "supervisor"]
    if not ticket.assigned_team:
        people = people + [_as_recipient(a) for a in alerts.admins]
    return people


def is_automation(actor: Mapping[str, Any]) -> bool:
    """A workflow step, a timer or another automation rather than a person."""
    return actor.get("kind") == "automation" or actor.get("role") in (
        "automation",
        "system",
    )


def channels_for(notice: Notice) -> Iterable[Notification]:
    """In-app always; e-mail and SMS where there is an address or number."""
    person = notice.recipient

    def on(channel: Channel, recipient: str) -> Notification:
        return Notification(
            kind=notice.kind,
            channel=channel,
            recipient=recipient,
            audience=person.audience,
            person_id=person.id,
        )

    yield on("in_app", person.id)
    if person.email:
        yield on("email", person.email)
    if person.phone:
        yield on("sms", person.phone)


def webhook_notifications(
    event: Mapping[str, Any], webhooks: Sequence[Webhook]
) -> list[Notification]:
    event_type = str(event.get("type", ""))
    return [
        Notification(
            kind=WEBHOOK,
            channel="webhook",
            recipient=hook.id,
            audience="webhook",
            person_id=None,
        )
        for hook in webhooks
        if hook.wants(event_type)
    ]


def _agent_recipient(
    directory: TenantDirectory, tenant_id: str, agent_id: str
) -> Recipient:
    known = directory.agent(tenant_id, agent_id)
    return _as_recipient(known or Agent(id=agent_id))


def _as_recipient(agent: Agent) -> Recipient:
    return Recipient(
        "agent",
        agent.id,
        email=agent.email,
        phone=agent.phone,
        role=agent.role,
        name=agent.name,
    )
