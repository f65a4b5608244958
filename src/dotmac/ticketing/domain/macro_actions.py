"""What a macro (or a trigger) does to a ticket: actions as values.

A macro is a tenant's named list of actions: set the priority, the
category, tags, custom fields, assign to a team or an agent, change the
status, post a public reply or an internal note from a template. Applied,
each action is one of the ticket's own commands, issued in order on one
loaded ticket, so the caller's single save records them all or none, and
SLA clocks, notifications and projections follow as for any command.

Templates take placeholders, ``{{ ticket.number }}`` or
``{{ customer.name }}`` (:data:`PLACEHOLDERS`), and nothing else: a
template is filled in by substitution, never executed, so a tenant's text
cannot loop or grow. Any other ``{{ … }}`` or ``{% … %}`` is refused when
the macro is saved (:func:`check_template`).

Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dotmac.ticketing.domain.assignment import check_people
from dotmac.ticketing.domain.enums import TicketCategory, TicketPriority, TicketStatus
from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.lifecycle import STATUS_CHANGE_TARGETS
from dotmac.ticketing.domain.limits import TEMPLATE_PATTERN, TEMPLATE_PLACEHOLDERS
from dotmac.ticketing.domain.provenance import Provenance
from dotmac.ticketing.domain.tenant_config import TenantConfig

if TYPE_CHECKING:
    from dotmac.ticketing.domain.sla import SLAPolicy
    from dotmac.ticketing.domain.ticket import Ticket

#: The placeholders a reply or note template may use, and what they say.
PLACEHOLDERS: Mapping[str, str] = {
    "ticket.number": "The ticket's number (#12 is 12).",
    "ticket.title": "The ticket's title.",
    "ticket.status": "The ticket's status when the action runs.",
    "ticket.priority": "The ticket's priority when the action runs.",
    "ticket.category": "The ticket's category when the action runs.",
    "ticket.assignee_id": "Who the ticket is assigned to (empty: nobody).",
    "ticket.team": "The ticket's team (empty: none).",
    "customer.id": "The customer's id.",
    "customer.name": "The customer's name as the ticket was opened with it.",
    "customer.email": "The customer's e-mail address (empty: none).",
    "actor.id": "Who applies the macro (a person, or the trigger's name).",
}
assert tuple(PLACEHOLDERS) == TEMPLATE_PLACEHOLDERS

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_TEMPLATE = re.compile(TEMPLATE_PATTERN)


def check_template(where: str, template: str) -> None:
    """Refuse what :data:`TEMPLATE_PATTERN` refuses (the contract's rule),
    naming an unknown placeholder when that is why."""
    if _TEMPLATE.fullmatch(template):
        return
    if not template.strip():
        raise InvalidCommand(where, "must not be empty")
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in PLACEHOLDERS:
            known = ", ".join(PLACEHOLDERS)
            raise InvalidCommand(
                where, f"no placeholder {match.group(1)!r}; the placeholders: {known}"
            )
    raise InvalidCommand(
        where, "templates take placeholders such as {{ ticket.number }} only"
    )


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each placeholder replaced by its value."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def placeholder_values(ticket: Ticket, actor_id: str) -> dict[str, str]:
    """What each placeholder says of the ticket as it is now."""
    return {
        "ticket.number": str(ticket.number),
        "ticket.title": ticket.title,
        "ticket.status": ticket.status.value,
        "ticket.priority": ticket.priority.value,
        "ticket.category": ticket.category.value,
        "ticket.assignee_id": ticket.assignee_id or "",
        "ticket.team": ticket.assigned_team or "",
        "customer.id": ticket.customer_id,
        "customer.name": ticket.customer_name or "",
        "customer.email": ticket.customer_email or "",
        "actor.id": actor_id,
    }


# -- the actions -------------------------------------------------------------------


@dataclass(frozen=True)
class SetPriority:
    priority: TicketPriority
    type: str = field(default="set_priority", init=False)


@dataclass(frozen=True)
class SetCategory:
    category: TicketCategory
    type: str = field(default="set_category", init=False)


@dataclass(frozen=True)
class SetTags:
    """Tags added and removed (the ticket's others are kept)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    type: str = field(default="set_tags", init=False)


@dataclass(frozen=True)
class SetCustomFields:
    """Custom fields set to these values; a None value removes the field."""

    values: Mapping[str, Any]
    type: str = field(default="set_custom_fields", init=False)


@dataclass(frozen=True)
class Assign:
    """To a team, an agent, or an agent of a team (the tenant's directory)."""

    team: str | None = None
    assignee_id: str | None = None
    type: str = field(default="assign", init=False)


@dataclass(frozen=True)
class SetStatus:
    """open, in_progress, pending or on_hold (resolving takes a resolution)."""

    status: TicketStatus
    type: str = field(default="set_status", init=False)


@dataclass(frozen=True)
class Reply:
    """A comment from a template: public (the customer reads it) or internal."""

    body: str
    internal: bool = False

    @property
    def type(self) -> str:
        return "internal_note" if self.internal else "public_reply"


MacroAction = (
    SetPriority | SetCategory | SetTags | SetCustomFields | Assign | SetStatus | Reply
)

#: How many actions one macro may have.
ACTIONS_MAX = 20


def action_from(raw: Mapping[str, Any]) -> MacroAction:
    """An action from its stored (or validated request) form."""
    kind = raw.get("type")
    if kind == "set_priority":
        return SetPriority(TicketPriority(raw["priority"]))
    if kind == "set_category":
        return SetCategory(TicketCategory(raw["category"]))
    if kind == "set_tags":
        return SetTags(tuple(raw.get("add") or ()), tuple(raw.get("remove") or ()))
    if kind == "set_custom_fields":
        return SetCustomFields(dict(raw["values"]))
    if kind == "assign":
        return Assign(team=raw.get("team"), assignee_id=raw.get("assignee_id"))
    if kind == "set_status":
        return SetStatus(TicketStatus(raw["status"]))
    if kind in ("public_reply", "internal_note"):
        return Reply(str(raw["body"]), internal=kind == "internal_note")
    raise InvalidCommand("type", f"no action {kind!r}")


def action_document(action: MacroAction) -> dict[str, Any]:
    """The stored form of an action (what :func:`action_from` reads)."""
    match action:
        case SetPriority(priority=priority):
            return {"type": action.type, "priority": priority.value}
        case SetCategory(category=category):
            return {"type": action.type, "category": category.value}
        case SetTags(add=add, remove=remove):
            return {"type": action.type, "add": list(add), "remove": list(remove)}
        case SetCustomFields(values=values):
            return {"type": action.type, "values": dict(values)}
        case Assign(team=team, assignee_id=assignee_id):
            return {"type": action.type, "team": team, "assignee_id": assignee_id}
        case SetStatus(status=status):
            return {"type": action.type, "status": status.value}
        case Reply(body=body):
            return {"type": action.type, "body": body}
    raise TypeError(f"not an action: {action!r}")


def check_actions(
    actions: Sequence[MacroAction], config: TenantConfig, *, where: str = "actions"
) -> None:
    """Refuse actions that cannot run for the tenant, naming the one at fault.

    A team or agent the tenant's directory lacks, a status a plain change
    cannot reach, a template with an unknown placeholder: each is an
    :class:`InvalidCommand` whose field is ``actions[<i>].<field>``.
    """
    if not actions:
        raise InvalidCommand(where, "a macro has at least one action")
    if len(actions) > ACTIONS_MAX:
        raise InvalidCommand(where, f"at most {ACTIONS_MAX} actions")
    for index, action in enumerate(actions):
        check_action(action, config, at=f"{where}[{index}]")


def check_action(action: MacroAction, config: TenantConfig, *, at: str) -> None:
    """One action of :func:`check_actions`; ``at`` names it in the refusal."""
    match action:
        case Assign(team=team, assignee_id=assignee_id):
            if team is None and assignee_id is None:
                raise InvalidCommand(f"{at}.team", "give a team, an agent or both")
            try:
                check_people(config, assignee_id=assignee_id, team=team)
            except InvalidCommand as error:
                raise InvalidCommand(
                    f"{at}.{error.field}", str(error).split(": ", 1)[-1]
                ) from None
        case SetStatus(status=status):
            if status not in STATUS_CHANGE_TARGETS:
                targets = sorted(s.value for s in STATUS_CHANGE_TARGETS)
                raise InvalidCommand(f"{at}.status", f"a macro sets one of {targets}")
        case Reply(body=body):
            check_template(f"{at}.body", body)


# -- applying ------------------------------------------------------------------------

#: The tenant's SLA policy for the ticket as it is (after a category change).
PolicyFor = Callable[["Ticket"], "SLAPolicy | None"]


def apply_actions(
    ticket: Ticket,
    actions: Sequence[MacroAction],
    *,
    provenance: Provenance,
    at: datetime,
    policy_for: PolicyFor,
    comment_id: Callable[[int], str | None] = lambda index: None,
) -> int:
    """Issue each action's command on ``ticket``, in order; nothing is saved.

    Returns how many events the actions recorded (SLA events included). A
    refused action raises and leaves the ticket with unsaved events: the
    caller saves nothing. ``comment_id(i)`` names the comment of action
    ``i`` (an automation retrying an action finds its comment there already
    and posts it once).
    """
    before = len(ticket.pending_events)
    recategorized = False
    for index, action in enumerate(actions):
        match action:
            case SetPriority(priority=priority):
                if ticket.change_priority(
                    priority,
                    provenance=provenance,
                    at=at,
                    sla_policy=policy_for(ticket),
                ):
                    recategorized = False  # the new policy is in place
            case SetCategory(category=category):
                recategorized |= ticket.categorize(
                    category, provenance=provenance, at=at
                )
            case SetTags(add=add, remove=remove):
                removed = {t.strip().lower() for t in remove}
                kept = [t for t in ticket.tags if t not in removed]
                ticket.update(
                    provenance=provenance,
                    at=at,
                    tags=kept + [t for t in add if t.strip().lower() not in removed],
                )
            case SetCustomFields(values=values):
                merged = {**ticket.custom_fields, **values}
                ticket.update(
                    provenance=provenance,
                    at=at,
                    custom_fields={k: v for k, v in merged.items() if v is not None},
                )
            case Assign(team=team, assignee_id=assignee_id):
                ticket.assign(
                    provenance=provenance, at=at, assignee_id=assignee_id, team=team
                )
            case SetStatus(status=status):
                ticket.change_status(status, provenance=provenance, at=at)
            case Reply(body=body, internal=internal):
                wanted = comment_id(index)
                if wanted is not None and any(
                    c["id"] == wanted for c in ticket.comments
                ):
                    continue
                text = render(body, placeholder_values(ticket, provenance.actor.id))
                ticket.add_comment(
                    text,
                    internal=internal,
                    provenance=provenance,
                    at=at,
                    comment_id=wanted,
                )
    if recategorized:
        policy = policy_for(ticket)
        if policy is not None:
            ticket.recalculate_sla(policy, provenance=provenance, at=at)
    return len(ticket.pending_events) - before


#: What a preview compares before and after.
PREVIEWED_FIELDS = (
    "status",
    "priority",
    "category",
    "tags",
    "custom_fields",
    "assignee_id",
    "assigned_team",
)


def ticket_state(ticket: Ticket) -> dict[str, Any]:
    """The fields a macro may change, as plain values."""
    state: dict[str, Any] = {}
    for name in PREVIEWED_FIELDS:
        value = getattr(ticket, name)
        if isinstance(value, TicketStatus | TicketPriority | TicketCategory):
            value = value.value
        elif isinstance(value, list):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        state[name] = value
    return state


def changes_between(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{field: {"from": …, "to": …}}`` of the fields that differ."""
    return {
        name: {"from": before[name], "to": after[name]}
        for name in before
        if before[name] != after[name]
    }
