"""Triggers: admins keep them; the timers' processes run them.

A trigger (``domain.triggers``) is a row of ``triggers``. The trigger
consumer (``consumers/timers/triggers.py``) hands every ticket event to
:meth:`TriggerService.run_on_event`; the timers' firing loop hands a time
trigger's due deadline to :meth:`TriggerService.run_at_time`. Either way
the trigger's actions (its own and those of the macros it applies) are
decided on one load of the ticket and saved in one save, by the automation
``trigger:<id>``, each event's ``causation_id`` naming the trigger, its
depth in the chain and its cause (``domain.triggers.trigger_cause``).

Each run is a row of ``trigger_runs``, keyed by trigger and cause, so an
event delivered twice, or a deadline fired twice, runs a trigger once:
``fired`` (what it recorded), ``cut`` (the chain was deeper than
``MAX_DEPTH``: nothing done) or ``refused`` (the ticket's state or the
tenant's directory refused an action: nothing saved). A run that changed
nothing and matched nothing leaves no row.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import structlog
from psycopg import sql
from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.deadlines import facts_of
from dotmac.ticketing.domain.errors import DomainError, InvalidCommand
from dotmac.ticketing.domain.escalation_rules import escalation_calendar
from dotmac.ticketing.domain.macro_actions import (
    MacroAction,
    action_document,
    action_from,
    apply_actions,
    check_action,
    placeholder_values,
    render,
)
from dotmac.ticketing.domain.mail_threading import with_ticket_tag
from dotmac.ticketing.domain.rules import matches
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.triggers import (
    FIRED_TYPE,
    MAX_DEPTH,
    ApplyMacro,
    CallWebhook,
    Notify,
    TimeCondition,
    Trigger,
    TriggerAction,
    check_message,
    depth_after,
    notify_recipients,
    trigger_cause,
)
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import MacroNotFound, TriggerNotFound
from dotmac.ticketing.service.macros import Macro, MacroService
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.store.notification_ledger import WAKE_CHANNEL

log = structlog.get_logger(__name__)

Row = dict[str, Any]
_COLUMNS = (
    "id, name, description, enabled, trigger_when AS when, conditions, actions,"
    " created_by, created_at, updated_at"
)
_RUN_COLUMNS = "id, ticket_id, cause, depth, outcome, events, detail, at"
#: The comments a trigger posts are named by trigger, cause and action, so
#: a run repeated after a crash posts each once.
_COMMENTS = uuid5(NAMESPACE_URL, "urn:dotmac-ticketing:trigger-comments")
#: Runs listed by the API, latest first.
RUNS_LISTED = 100


class _NothingToDo(Exception):
    """The trigger does not apply to the ticket as it is now."""


def trigger_action(raw: Mapping[str, Any]) -> TriggerAction:
    kind = raw.get("type")
    if kind == "apply_macro":
        return ApplyMacro(str(raw["macro_id"]))
    if kind == "notify":
        return Notify(
            subject=str(raw["subject"]),
            body=str(raw["body"]),
            team=raw.get("team"),
            address=raw.get("address"),
        )
    if kind == "call_webhook":
        return CallWebhook(str(raw["webhook_id"]))
    return action_from(raw)


def trigger_action_document(action: TriggerAction) -> dict[str, Any]:
    if isinstance(action, ApplyMacro):
        return {"type": action.type, "macro_id": action.macro_id}
    if isinstance(action, Notify):
        recipient = (
            {"team": action.team} if action.team else {"address": action.address}
        )
        return {
            "type": action.type,
            **recipient,
            "subject": action.subject,
            "body": action.body,
        }
    if isinstance(action, CallWebhook):
        return {"type": action.type, "webhook_id": action.webhook_id}
    return action_document(action)


def trigger_of(tenant_id: str, row: Row) -> Trigger:
    when = row["when"]
    return Trigger(
        id=str(row["id"]),
        tenant_id=tenant_id,
        name=row["name"],
        events=frozenset(when.get("events", ()))
        if when["type"] == "event"
        else frozenset(),
        time=TimeCondition.from_document(when) if when["type"] == "time" else None,
        conditions=row["conditions"],
        actions=tuple(trigger_action(a) for a in row["actions"]),
    )


class TriggerService:
    """Trigger CRUD (admins), their runs, and running them (the workers)."""

    def __init__(
        self, tickets: TicketService, macros: MacroService, datastore: Any
    ) -> None:
        self._tickets = tickets
        self._macros = macros
        self._datastore = datastore

    # -- the triggers ----------------------------------------------------------

    def create(self, ctx: RequestContext, document: Mapping[str, Any]) -> Row:
        actions = self._checked(ctx, document["actions"])
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "INSERT INTO triggers (id, tenant_id, name, description, enabled,"
                " trigger_when, conditions, actions, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (
                    uuid4(),
                    ctx.tenant_id,
                    document["name"],
                    document.get("description", ""),
                    document.get("enabled", True),
                    Jsonb(document["when"]),
                    Jsonb(document.get("conditions") or {}),
                    Jsonb(actions),
                    ctx.user_id,
                ),
            )
            row: Row = cur.fetchone()
        return row

    def replace(
        self, ctx: RequestContext, trigger_id: UUID, document: Mapping[str, Any]
    ) -> Row:
        actions = self._checked(ctx, document["actions"])
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "UPDATE triggers SET name = %s, description = %s, enabled = %s,"
                " trigger_when = %s, conditions = %s, actions = %s,"
                " updated_at = now() WHERE id = %s AND tenant_id = %s"
                f" RETURNING {_COLUMNS}",
                (
                    document["name"],
                    document.get("description", ""),
                    document.get("enabled", True),
                    Jsonb(document["when"]),
                    Jsonb(document.get("conditions") or {}),
                    Jsonb(actions),
                    trigger_id,
                    ctx.tenant_id,
                ),
            )
            row: Row | None = cur.fetchone()
        if row is None:
            raise TriggerNotFound(trigger_id)
        return row

    def list(self, ctx: RequestContext) -> list[Row]:
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM triggers WHERE tenant_id = %s"
                " ORDER BY created_at, id",
                (ctx.tenant_id,),
            )
            rows: list[Row] = cur.fetchall()
        return rows

    def get(self, ctx: RequestContext, trigger_id: UUID) -> Row:
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM triggers WHERE id = %s AND tenant_id = %s",
                (trigger_id, ctx.tenant_id),
            )
            row: Row | None = cur.fetchone()
        if row is None:
            raise TriggerNotFound(trigger_id)
        return row

    def delete(self, ctx: RequestContext, trigger_id: UUID) -> None:
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "DELETE FROM triggers WHERE id = %s AND tenant_id = %s",
                (trigger_id, ctx.tenant_id),
            )
            deleted = cur.rowcount
        if not deleted:
            raise TriggerNotFound(trigger_id)

    def runs(self, ctx: RequestContext, trigger_id: UUID) -> Sequence[Row]:
        """The trigger's latest runs, latest first."""
        self.get(ctx, trigger_id)
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_RUN_COLUMNS} FROM trigger_runs"
                " WHERE trigger_id = %s AND tenant_id = %s ORDER BY id DESC LIMIT %s",
                (trigger_id, ctx.tenant_id, RUNS_LISTED),
            )
            rows: list[Row] = cur.fetchall()
        return rows

    def enabled(self, tenant_id: str) -> Sequence[Trigger]:
        """The tenant's enabled triggers, oldest first (the order they run in)."""
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM triggers WHERE tenant_id = %s AND enabled"
                " ORDER BY created_at, id",
                (tenant_id,),
            )
            rows: list[Row] = cur.fetchall()
        return [trigger_of(tenant_id, row) for row in rows]

    def _checked(
        self, ctx: RequestContext, actions: Sequence[Mapping[str, Any]]
    ) -> Sequence[dict[str, Any]]:
        """The actions' stored form, checked against the tenant: its
        directory, and its macros (a macro of another tenant is missing)."""
        config = self._tickets.tenant_config(ctx.tenant_id)[1]
        parsed = [trigger_action(a) for a in actions]
        for index, action in enumerate(parsed):
            at = f"actions[{index}]"
            if isinstance(action, ApplyMacro):
                try:
                    self._macros.macro(ctx.tenant_id, UUID(action.macro_id))
                except MacroNotFound:
                    raise InvalidCommand(
                        f"{at}.macro_id", f"no macro {action.macro_id}"
                    ) from None
            elif isinstance(action, CallWebhook):
                if self._webhook(ctx.tenant_id, action.webhook_id) is None:
                    raise InvalidCommand(
                        f"{at}.webhook_id", f"no webhook {action.webhook_id}"
                    )
            elif isinstance(action, Notify):
                check_message(action, config, at=at)
            else:
                check_action(action, config, at=at)
        return [trigger_action_document(a) for a in parsed]

    # -- running them ------------------------------------------------------------

    def run_on_event(
        self,
        tenant_id: str,
        ticket_id: UUID,
        *,
        event_id: str,
        kinds: frozenset[str],
        causation_id: str | None,
        triggers: Sequence[Trigger],
    ) -> Sequence[str]:
        """Run each of ``triggers`` the event sets off; their outcomes.

        Which ones is decided on one load of the ticket, before any runs:
        a trigger whose conditions an earlier one's change made true is
        set off by that change's event, one level deeper, not by this one.
        """
        ticket = self._tickets.find(ticket_id)
        if ticket is None or ticket.tenant_id != tenant_id:
            return []
        facts = facts_of(ticket)
        depth = depth_after(causation_id)
        return [
            self._run(trigger, ticket_id, event_id, depth)
            for trigger in triggers
            if trigger.runs_on(kinds, causation_id)
            and matches(trigger.conditions, facts)
        ]

    def run_at_time(
        self, tenant_id: str, ticket_id: UUID, trigger_id: str, *, cause: str
    ) -> str:
        """Run a time trigger whose deadline fell due (if it still holds)."""
        trigger = next((t for t in self.enabled(tenant_id) if t.id == trigger_id), None)
        if trigger is None or trigger.time is None:
            return "gone"  # deleted, disabled or changed since it was set
        return self._run(trigger, ticket_id, cause, 1)

    def _run(self, trigger: Trigger, ticket_id: UUID, cause: str, depth: int) -> str:
        if self._has_run(trigger, cause):
            return "done"
        now = self._tickets.now()
        if depth > MAX_DEPTH:
            log.warning(
                "trigger chain cut",
                trigger_id=trigger.id,
                ticket_id=str(ticket_id),
                cause=cause,
                depth=depth,
            )
            detail = f"a chain of more than {MAX_DEPTH} triggers is cut"
            self._record(trigger, ticket_id, cause, depth, "cut", 0, detail, now)
            return "cut"
        try:
            macros = [
                self._macros.macro(trigger.tenant_id, UUID(a.macro_id))
                for a in trigger.actions
                if isinstance(a, ApplyMacro)
            ]
        except MacroNotFound as missing:
            self._record(
                trigger, ticket_id, cause, depth, "refused", 0, str(missing), now
            )
            return "refused"
        actions = _expanded(trigger.actions, macros)
        messages = [a for a in trigger.actions if isinstance(a, Notify | CallWebhook)]
        ctx = RequestContext.for_automation(
            trigger.tenant_id,
            trigger.automation,
            causation_id=trigger_cause(trigger.id, depth, cause),
        )
        recorded = 0

        def decide(ticket: Ticket) -> None:
            nonlocal recorded
            _, config = self._tickets.tenant_config(trigger.tenant_id)
            if trigger.time is not None:
                # A time trigger's conditions and wait must hold now.
                if not matches(trigger.conditions, facts_of(ticket)):
                    raise _NothingToDo
                due = trigger.time.due_at(
                    ticket, escalation_calendar(config, ticket.assigned_team)
                )
                if due is None or due > self._tickets.now():
                    raise _NothingToDo  # the ticket moved on since
            for index, action in enumerate(actions):
                check_action(action, config, at=f"actions[{index}]")
            recorded = apply_actions(
                ticket,
                actions,
                provenance=ctx.provenance(),
                at=self._tickets.now(),
                policy_for=self._tickets.policy_for_ticket,
                comment_id=lambda index: (
                    uuid5(_COMMENTS, f"{trigger.id}|{cause}|{index}").hex
                ),
            )

        try:
            result = self._tickets.execute(ctx, ticket_id, decide)
        except _NothingToDo:
            return "skipped"
        except DomainError as refused:
            self._record(
                trigger, ticket_id, cause, depth, "refused", 0, str(refused), now
            )
            return "refused"
        if result.position is None and not messages:
            return "unchanged"
        deliveries = self._deliveries(trigger, result.ticket, cause, depth, messages)
        self._record(
            trigger, ticket_id, cause, depth, "fired", recorded, "", now, deliveries
        )
        applier = RequestContext.for_automation(trigger.tenant_id, trigger.automation)
        for macro in macros:
            self._macros.count(applier, macro, result.ticket, recorded, now)
        return "fired"

    def _deliveries(
        self,
        trigger: Trigger,
        ticket: Ticket,
        cause: str,
        depth: int,
        messages: Sequence[Notify | CallWebhook],
    ) -> builtins.list[Delivery]:
        """The e-mail and webhook calls the trigger's messages make, as rows
        for the notifier's dispatcher (it sends, retries and records them)."""
        _, config = self._tickets.tenant_config(trigger.tenant_id)
        values = placeholder_values(ticket, trigger.automation)
        made: builtins.list[Delivery] = []
        for message in messages:
            if isinstance(message, Notify):
                subject = with_ticket_tag(
                    render(message.subject, values), ticket.number
                )
                text = render(message.body, values)
                made += [
                    Delivery(
                        "email",
                        address,
                        {
                            "kind": "trigger",
                            "audience": "team" if message.team else "address",
                            "subject": subject,
                            "text": text,
                            "html": None,
                            "reply_to": None,
                        },
                    )
                    for address in notify_recipients(message, config)
                ]
            else:
                webhook = self._webhook(trigger.tenant_id, message.webhook_id)
                if webhook is None:  # removed since the trigger was saved
                    log.warning(
                        "trigger's webhook is gone",
                        trigger_id=trigger.id,
                        webhook_id=message.webhook_id,
                    )
                    continue
                body = fired_event(trigger, ticket, cause, depth, self._tickets.now())
                made.append(
                    Delivery(
                        "webhook",
                        webhook,
                        {
                            "webhook_id": message.webhook_id,
                            "url": webhook,
                            "body": json.dumps(body, separators=(",", ":")),
                        },
                    )
                )
        return made

    def _webhook(self, tenant_id: str, webhook_id: str) -> str | None:
        """The URL of the tenant's webhook, None if it has none by that id."""
        try:
            wanted = UUID(webhook_id)
        except ValueError:
            return None
        with self._datastore.transaction() as cur:
            cur.execute(
                "SELECT url FROM webhooks WHERE tenant_id = %s AND id = %s",
                (tenant_id, wanted),
            )
            row = cur.fetchone()
        return None if row is None else str(row["url"])

    def _has_run(self, trigger: Trigger, cause: str) -> bool:
        with self._datastore.transaction() as cur:
            cur.execute(
                "SELECT 1 FROM trigger_runs WHERE trigger_id = %s AND cause = %s",
                (trigger.id, cause),
            )
            return cur.fetchone() is not None

    def _record(
        self,
        trigger: Trigger,
        ticket_id: UUID,
        cause: str,
        depth: int,
        outcome: str,
        events: int,
        detail: str,
        at: datetime,
        deliveries: Sequence[Delivery] = (),
    ) -> None:
        """The run, and what it sends, in one transaction: a run repeated
        after a crash sends nothing twice (its deliveries' keys are the
        run's)."""
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "INSERT INTO trigger_runs (tenant_id, trigger_id, ticket_id, cause,"
                " depth, outcome, events, detail, at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (trigger_id, cause) DO NOTHING",
                (
                    trigger.tenant_id,
                    trigger.id,
                    ticket_id,
                    cause,
                    depth,
                    outcome,
                    events,
                    detail[:500],
                    at,
                ),
            )
            if not deliveries:
                return
            run = f"trigger:{trigger.id}:{cause}"
            for delivery in deliveries:
                cur.execute(
                    "INSERT INTO notification_deliveries (delivery_key, tenant_id,"
                    " event_id, event_type, ticket_id, channel, recipient, payload)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (delivery_key) DO NOTHING",
                    (
                        f"{run}|{delivery.channel}|{delivery.recipient}",
                        trigger.tenant_id,
                        run,
                        FIRED_TYPE,
                        ticket_id,
                        delivery.channel,
                        delivery.recipient,
                        Jsonb(delivery.payload),
                    ),
                )
            # The dispatcher waits on this channel (store.notification_ledger).
            cur.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(WAKE_CHANNEL)))


@dataclass(frozen=True)
class Delivery:
    """One e-mail or webhook call a trigger's run makes."""

    channel: str
    recipient: str
    payload: dict[str, Any]


def fired_event(
    trigger: Trigger, ticket: Ticket, cause: str, depth: int, at: datetime
) -> dict[str, Any]:
    """The CloudEvent a trigger's webhook call carries: facts only (no
    personal data, which only the ticket's own events carry, sealed)."""
    return {
        "specversion": "1.0",
        "id": f"trigger:{trigger.id}:{cause}",
        "source": "/ticketing",
        "type": FIRED_TYPE,
        "subject": str(ticket.id),
        "time": at.isoformat(),
        "tenantid": trigger.tenant_id,
        "datacontenttype": "application/json",
        "data": {
            "trigger_id": trigger.id,
            "trigger_name": trigger.name,
            "ticket_id": str(ticket.id),
            "number": ticket.number,
            "status": ticket.status.value,
            "priority": ticket.priority.value,
            "category": ticket.category.value,
            "assigned_team": ticket.assigned_team,
            "assignee_id": ticket.assignee_id,
            "cause": cause,
            "depth": depth,
        },
    }


def _expanded(
    actions: Sequence[TriggerAction], macros: Sequence[Macro]
) -> list[MacroAction]:
    """The trigger's ticket actions with each macro's put in its place, in
    order (messages are sent, not recorded: see ``_deliveries``)."""
    found = iter(macros)
    expanded: list[MacroAction] = []
    for action in actions:
        if isinstance(action, ApplyMacro):
            expanded.extend(next(found).actions)
        elif not isinstance(action, Notify | CallWebhook):
            expanded.append(action)
    return expanded
