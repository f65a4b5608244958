"""The notifier: ticket events in, deliveries out (group ``ticketing-notifier``).

A :class:`~consumers.kafka.consumer_loop.Handler` of the shared consumer: ``handle``
runs inside the transaction that also claims the CloudEvent id and records
the partition's offset, so per event, exactly once:

1. the notifier's own view of the ticket (``notifier_tickets``) follows
   the event: who the customer is, who is assigned, the title;
2. the rules decide the notifications (``consumers/notify/rules.py``)
   and the templates render them (a new ticket's acknowledgment with the
   reply time its first-response clock promises, ``reply_promises``);
3. each becomes a row of the ``notification_deliveries`` ledger keyed by
   ``<event id>|<channel>|<recipient>`` (``ON CONFLICT DO NOTHING``): in-app
   notifications are complete right here (the row in
   ``inapp_notifications`` is the delivery, so the ledger row is ``sent``);
   e-mail, SMS and webhook rows are ``pending`` for the dispatcher, which
   is woken with ``NOTIFY``. A tenant template that failed (and was
   replaced by the built-in one) is recorded on the row,
   ``template_fallback``, for the tenant's admins;
4. e-mail to one person about one ticket is held for the tenant's window
   and what happens within it is merged into that one mail
   (``consumers/notify/mail_digest.py``). A resolution mail carries signed
   one-click rating links (``service/satisfaction_links.py``).

Rendering runs off the event loop: a tenant's template may use its whole
time budget (``consumers/notify/template_sandbox.py``).

Nothing leaves PostgreSQL from here: an event processed twice, or a crash
before the commit, sends nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import structlog
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from dotmac.ticketing.consumers.kafka.consumer_loop import Record
from dotmac.ticketing.consumers.notify.dispatcher import CLAIM_LOCKS
from dotmac.ticketing.consumers.notify.inapp_rows import insert_inapp
from dotmac.ticketing.consumers.notify.mail_digest import (
    OpenDigest,
    hold_until,
    joins,
    merge_key,
)
from dotmac.ticketing.consumers.notify.rendering import (
    NotificationTemplates,
    RenderedNotification,
    TemplateFallback,
    template_context,
)
from dotmac.ticketing.consumers.notify.rules import (
    EMAIL_DIGEST,
    TICKET_CREATED,
    TICKET_RESOLVED,
    MailPreferences,
    Notification,
    TenantDirectory,
    TicketContext,
    Webhook,
    decide_notifications,
    event_name,
)
from dotmac.ticketing.domain.mail_threading import with_ticket_tag
from dotmac.ticketing.domain.personal_data import ERASED
from dotmac.ticketing.schemas.locales import readable_moment
from dotmac.ticketing.service.privacy import address_digest, scrub_statements
from dotmac.ticketing.service.satisfaction_links import (
    SatisfactionClaims,
    expiry,
    sign,
)
from dotmac.ticketing.store.notification_ledger import WAKE_CHANNEL

log = structlog.get_logger(__name__)

NOTIFIER_NAME = "ticketing-notifier"

# How each event changes the notifier's view of its ticket: column ← data field.
_TICKET_CHANGES: Mapping[str, Mapping[str, str | None]] = {
    "ticket_assigned": {
        "assignee_id": "assignee_id",
        "assigned_team": "team",
        "status": "status",
    },
    "ticket_unassigned": {"assignee_id": None},
    "status_changed": {"status": "status"},
    "ticket_escalated": {"assigned_team": "team", "assignee_id": "assignee_id"},
    # The customer's data is gone (service.privacy): nobody to write to.
    "subject_erased": {"customer_email": None, "customer_name": None},
}
_STATUS_AFTER = {
    "ticket_resolved": "resolved",
    "ticket_reopened": "open",
    "ticket_closed": "closed",
}


class ReplyPromises(Protocol):
    """When an agent will reply to a new ticket (``consumers.reply_promises``)."""

    async def reply_by(self, ticket_id: str, at: datetime) -> datetime | None:
        """The promised time as of ``at``; None when none can be promised."""
        ...


@dataclass(frozen=True)
class SatisfactionLinks:
    """How resolution mail signs its rating links: the key and for how long."""

    secret: bytes
    days: int = 30

    def token(self, ticket: TicketContext, at: datetime) -> str:
        claims = SatisfactionClaims(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.ticket_id,
            customer_id=ticket.customer_id,
            expires_at=expiry(at, self.days),
        )
        return sign(claims, self.secret)


@dataclass(frozen=True)
class _Email:
    """One e-mail to write: its notification, message and render context."""

    notification: Notification
    message: RenderedNotification
    context: Mapping[str, Any]


class Notifier:
    """Maps ticket events to notifications, in the consumer's transaction."""

    def __init__(
        self,
        *,
        directory: TenantDirectory,
        templates: NotificationTemplates,
        public_url: str,
        reply_promises: ReplyPromises | None = None,
        satisfaction_links: SatisfactionLinks | None = None,
    ) -> None:
        self._directory = directory
        self._templates = templates
        self._public_url = public_url
        self._reply_promises = reply_promises
        self._links = satisfaction_links

    async def handle(self, record: Record, cur: AsyncCursor[DictRow]) -> None:
        event = record.event
        name = event_name(str(event.get("type", "")))
        if name is None:
            log.debug("ignoring a non-ticket event", type=event.get("type"))
            return
        data: Mapping[str, Any] = event.get("data") or {}
        tenant_id = str(event.get("tenantid") or data["tenant_id"])
        cur = cur.connection.cursor(row_factory=dict_row)
        ticket = await self._follow_ticket(cur, event, name, data)
        webhooks = await self._webhooks(cur, tenant_id)
        await self._directory.refresh(tenant_id)
        notifications = await _without_bouncing(
            cur,
            tenant_id,
            decide_notifications(event, ticket, self._directory, webhooks),
        )
        reply_by = await self._reply_by(event, name, ticket, notifications)
        preferences = self._directory.preferences(tenant_id)
        rendered: dict[
            tuple[str, str | None], tuple[RenderedNotification, dict[str, Any]]
        ] = {}
        pending = inapp = 0
        for notification in notifications:
            if notification.channel == "webhook":
                hook = next(w for w in webhooks if w.id == notification.recipient)
                payload: dict[str, Any] = {
                    "webhook_id": hook.id,
                    "url": hook.url,
                    # The CloudEvent exactly as published: what every
                    # attempt sends (and signs).
                    "body": record.value.decode(),
                }
                fallbacks: tuple[TemplateFallback, ...] = ()
            else:
                assert ticket is not None
                key = (notification.kind, notification.person_id)
                if key not in rendered:
                    context = template_context(
                        event,
                        ticket,
                        audience=notification.audience,
                        person_id=notification.person_id,
                        public_url=self._public_url,
                        reply_by=reply_by,
                        directory=self._directory,
                        preferences=preferences,
                        satisfaction_token=self._satisfaction_token(
                            event, ticket, notification
                        ),
                    )
                    message = await asyncio.to_thread(
                        self._templates.render, notification.kind, tenant_id, context
                    )
                    rendered[key] = (message, context)
                message, context = rendered[key]
                payload = _payload(notification, message, ticket, preferences)
                fallbacks = message.fallbacks
                if notification.channel == "email":
                    email = _Email(notification, message, context)
                    if await self._record_email(
                        cur, event, tenant_id, ticket, email, payload, preferences
                    ):
                        pending += 1
                    continue
            inserted = await self._record(
                cur, event, tenant_id, ticket, notification, payload, fallbacks
            )
            if inserted and notification.channel == "in_app":
                inapp += 1
            elif inserted:
                pending += 1
        if pending:
            await cur.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))
        log.debug(
            "event notified",
            event_id=event.get("id"),
            type=event.get("type"),
            pending=pending,
            inapp=inapp,
        )

    def _satisfaction_token(
        self,
        event: Mapping[str, Any],
        ticket: TicketContext,
        notification: Notification,
    ) -> str | None:
        """A signed rating link for the customer's resolution mail."""
        if (
            self._links is None
            or notification.kind != TICKET_RESOLVED
            or notification.audience != "customer"
        ):
            return None
        return self._links.token(ticket, _event_time(event))

    async def _record_email(
        self,
        cur: AsyncCursor[DictRow],
        event: Mapping[str, Any],
        tenant_id: str,
        ticket: TicketContext | None,
        email: _Email,
        payload: dict[str, Any],
        preferences: MailPreferences,
    ) -> bool:
        """Write an e-mail's ledger row: at once, held, or merged into the
        held mail of its window. True if a row was written."""
        notification, message = email.notification, email.message
        failures = (
            Jsonb([f.as_record() for f in message.fallbacks])
            if message.fallbacks
            else None
        )
        at = _event_time(event)
        hold = hold_until(at, preferences.coalesce_seconds)
        if ticket is None or hold is None:
            return await self._insert_email(
                cur, event, tenant_id, ticket, notification, payload, failures
            )
        group = merge_key(tenant_id, ticket.ticket_id, notification.recipient)
        update = {
            "kind": notification.kind,
            "event_id": str(event["id"]),
            "subject": payload["subject"],
            "text_body": message.text_body,
            "html_body": message.html_body,
            "at": readable_moment(
                at, timezone=preferences.timezone, locale=preferences.locale
            ),
        }
        digest = await _open_digest(cur, group)
        if digest is not None and joins(digest[0], at):
            held, held_payload = digest
            inserted = await self._insert_email(
                cur,
                event,
                tenant_id,
                ticket,
                notification,
                payload,
                failures,
                merged_into=held.key,
            )
            if inserted:
                await self._merge(cur, tenant_id, held.key, held_payload, update, email)
            return inserted
        return await self._insert_email(
            cur,
            event,
            tenant_id,
            ticket,
            notification,
            payload | {"updates": [update]},
            failures,
            hold=(hold, group),
        )

    async def _merge(
        self,
        cur: AsyncCursor[DictRow],
        tenant_id: str,
        held_key: str,
        held: Mapping[str, Any],
        update: Mapping[str, Any],
        email: _Email,
    ) -> None:
        """Add an update to the held mail, whose message is rendered again."""
        updates = [*(held.get("updates") or []), dict(update)]
        digest = await asyncio.to_thread(
            self._templates.render_digest, tenant_id, email.context, updates
        )
        merged = dict(held) | {
            "kind": EMAIL_DIGEST,
            "subject": with_ticket_tag(
                digest.subject, int(email.context["ticket"]["number"])
            ),
            "text": digest.text,
            "html": digest.html,
            "updates": updates,
        }
        await cur.execute(
            "UPDATE notification_deliveries SET payload = %s WHERE delivery_key = %s",
            (Jsonb(merged), held_key),
        )

    async def _insert_email(
        self,
        cur: AsyncCursor[DictRow],
        event: Mapping[str, Any],
        tenant_id: str,
        ticket: TicketContext | None,
        notification: Notification,
        payload: Mapping[str, Any],
        failures: Jsonb | None,
        *,
        hold: tuple[datetime, str] | None = None,
        merged_into: str | None = None,
    ) -> bool:
        event_id = str(event["id"])
        await cur.execute(
            _INSERT_EMAIL,
            (
                notification.delivery_key(event_id),
                tenant_id,
                event_id,
                event["type"],
                ticket.ticket_id if ticket else event.get("subject"),
                notification.recipient,
                Jsonb(payload),
                failures,
                hold[0] if hold else None,
                hold[1] if hold else None,
                merged_into,
            ),
        )
        return await cur.fetchone() is not None

    async def _reply_by(
        self,
        event: Mapping[str, Any],
        name: str,
        ticket: TicketContext | None,
        notifications: list[Notification],
    ) -> datetime | None:
        """The reply time the acknowledgment of a new ticket promises.

        The customer's one acknowledgment says when an agent will reply:
        the due time of the first-response clock the ticket opened with,
        which the created event itself does not carry.
        """
        if (
            name != "ticket_created"
            or ticket is None
            or self._reply_promises is None
            or not any(n.kind == TICKET_CREATED for n in notifications)
        ):
            return None
        return await self._reply_promises.reply_by(ticket.ticket_id, _event_time(event))

    async def _follow_ticket(
        self,
        cur: AsyncCursor[DictRow],
        event: Mapping[str, Any],
        name: str,
        data: Mapping[str, Any],
    ) -> TicketContext | None:
        ticket_id = str(event.get("subject") or data["ticket_id"])
        version = int(data.get("version") or 0)
        if name == "ticket_created":
            await cur.execute(
                "INSERT INTO notifier_tickets (ticket_id, tenant_id, number, title,"
                " customer_id, customer_email, customer_name, status, version)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'new', %s)"
                " ON CONFLICT (ticket_id) DO NOTHING RETURNING *",
                (
                    ticket_id,
                    data["tenant_id"],
                    data["number"],
                    data["title"],
                    data["customer_id"],
                    data.get("customer_email"),
                    data.get("customer_name"),
                    version,
                ),
            )
        else:
            changes = {
                column: (data.get(field) if field else None)
                for column, field in _TICKET_CHANGES.get(name, {}).items()
            }
            if name in _STATUS_AFTER:
                changes["status"] = _STATUS_AFTER[name]
            if name == "ticket_updated" and "title" in (data.get("changes") or {}):
                changes["title"] = data["changes"]["title"]
            if name == "subject_erased":
                changes["title"] = ERASED
                await _scrub_erased(cur, data["tenant_id"], ticket_id)
            assignments = "".join(f", {column} = %s" for column in changes)
            # Only forward: a stale event (older than what we know) is news
            # to nobody's view of the ticket.
            await cur.execute(
                f"UPDATE notifier_tickets SET version = %s{assignments}"
                " WHERE ticket_id = %s AND version < %s RETURNING *",
                (version, *changes.values(), ticket_id, version),
            )
        row = await cur.fetchone()
        if row is None:  # known already, or an event older than what we know
            await cur.execute(
                "SELECT * FROM notifier_tickets WHERE ticket_id = %s", (ticket_id,)
            )
            row = await cur.fetchone()
        if row is None:
            log.warning(
                "event for a ticket the notifier never saw created",
                ticket_id=ticket_id,
                type=event.get("type"),
            )
            return None
        return TicketContext.from_row(row)

    async def _webhooks(
        self, cur: AsyncCursor[DictRow], tenant_id: str
    ) -> list[Webhook]:
        await cur.execute(
            "SELECT id, url, event_types FROM webhooks WHERE tenant_id = %s"
            " ORDER BY created_at, id",
            (tenant_id,),
        )
        return [
            Webhook(id=str(r["id"]), url=r["url"], event_types=tuple(r["event_types"]))
            for r in await cur.fetchall()
        ]

    async def _record(
        self,
        cur: AsyncCursor[DictRow],
        event: Mapping[str, Any],
        tenant_id: str,
        ticket: TicketContext | None,
        notification: Notification,
        payload: Mapping[str, Any],
        fallbacks: tuple[TemplateFallback, ...],
    ) -> bool:
        """Write the ledger row (and the in-app row); False if it was there.

        One statement per delivery: for in-app, the ledger row, the
        notification row and its announcement (for live streams) together.
        """
        event_id = str(event["id"])
        key = notification.delivery_key(event_id)
        ticket_id = ticket.ticket_id if ticket else event.get("subject")
        failures = Jsonb([f.as_record() for f in fallbacks]) if fallbacks else None
        ledger = (
            key,
            tenant_id,
            event_id,
            event["type"],
            ticket_id,
            notification.channel,
            notification.recipient,
            Jsonb(payload),
            failures,
        )
        if notification.channel != "in_app":
            await cur.execute(_INSERT_PENDING, ledger)
            return await cur.fetchone() is not None
        return await insert_inapp(
            cur,
            key=key,
            tenant_id=tenant_id,
            event_id=event_id,
            event_type=str(event["type"]),
            ticket_id=ticket_id,
            user_id=notification.recipient,
            payload=payload,
            template_fallback=failures,
        )


_LEDGER_INSERT = """
INSERT INTO notification_deliveries (delivery_key, tenant_id, event_id,
    event_type, ticket_id, channel, recipient, payload, template_fallback,
    status, sent_at)
"""
_INSERT_PENDING = (
    _LEDGER_INSERT
    + """VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', NULL)
ON CONFLICT (delivery_key) DO NOTHING RETURNING delivery_key
"""
)


_INSERT_EMAIL = """
INSERT INTO notification_deliveries (delivery_key, tenant_id, event_id,
    event_type, ticket_id, channel, recipient, payload, template_fallback,
    status, hold_until, merge_key, merged_into)
VALUES (%s, %s, %s, %s, %s, 'email', %s, %s, %s, 'pending', %s, %s, %s)
ON CONFLICT (delivery_key) DO NOTHING RETURNING delivery_key
"""

# The held mail of a person's window on a ticket, if one is open; locked,
# and only if no dispatcher holds it (its claim lock): a mail being sent
# is not changed, the update opens a window of its own.
_OPEN_DIGEST = """
SELECT delivery_key, hold_until, attempts, payload
  FROM notification_deliveries
 WHERE merge_key = %s AND status = 'pending' AND merged_into IS NULL
   AND hold_until IS NOT NULL
 ORDER BY hold_until DESC
 LIMIT 1
   FOR UPDATE
"""


async def _open_digest(
    cur: AsyncCursor[DictRow], group: str
) -> tuple[OpenDigest, Mapping[str, Any]] | None:
    await cur.execute(_OPEN_DIGEST, (group,))
    row = await cur.fetchone()
    if row is None:
        return None
    await cur.execute(
        "SELECT pg_try_advisory_xact_lock(%s::int, hashtext(%s)) AS free",
        (CLAIM_LOCKS, row["delivery_key"]),
    )
    free = await cur.fetchone()
    if free is None or not free["free"]:
        return None
    digest = OpenDigest(
        key=row["delivery_key"], hold_until=row["hold_until"], attempts=row["attempts"]
    )
    return digest, row["payload"]


async def _without_bouncing(
    cur: AsyncCursor[DictRow], tenant_id: str, notifications: list[Notification]
) -> list[Notification]:
    """Leave out e-mail to addresses whose mail bounces (``mail_bounces``,
    written by inbound e-mail) until mail from them arrives again, and to
    the addresses of erased customers (``service.privacy``), for good."""
    addresses = sorted(
        {n.recipient.strip().lower() for n in notifications if n.channel == "email"}
    )
    if not addresses:
        return notifications
    digests = {address_digest(a): a for a in addresses}
    await cur.execute(
        "SELECT address FROM mail_bounces WHERE tenant_id = %s AND address = ANY(%s)"
        " UNION SELECT address_sha256 FROM privacy_suppressed_addresses"
        " WHERE tenant_id = %s AND address_sha256 = ANY(%s)",
        (tenant_id, addresses, tenant_id, list(digests)),
    )
    bouncing = {
        digests.get(row["address"], row["address"]) for row in await cur.fetchall()
    }
    if not bouncing:
        return notifications
    log.info("e-mail to bouncing or erased addresses left out", count=len(bouncing))
    return [
        n
        for n in notifications
        if n.channel != "email" or n.recipient.strip().lower() not in bouncing
    ]


async def _scrub_erased(
    cur: AsyncCursor[DictRow], tenant_id: str, ticket_id: str
) -> None:
    """Clear what this worker wrote for the erased ticket from events it read
    before the erasure's (the erasure cleared what was there then)."""
    for _, statement, params in scrub_statements(tenant_id, [UUID(ticket_id)], []):
        await cur.execute(statement, params)


def _event_time(event: Mapping[str, Any]) -> datetime:
    """When the event happened, on the service clock (the CloudEvent's time)."""
    moment = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _payload(
    notification: Notification,
    message: RenderedNotification,
    ticket: TicketContext | None,
    preferences: MailPreferences,
) -> dict[str, Any]:
    """What the ledger keeps for the sender: the rendered message."""
    base = {"kind": notification.kind, "audience": notification.audience}
    if notification.channel == "email":
        subject = message.subject
        if ticket is not None:
            # The ticket number threads replies by subject, too: a tenant's
            # own subject template cannot leave it out.
            subject = with_ticket_tag(subject, ticket.number)
        return base | {
            "subject": subject,
            "text": message.text,
            "html": message.html,
            "reply_to": preferences.reply_to,
        }
    if notification.channel == "sms":
        return base | {"body": message.sms}
    return base | {"title": message.subject, "body": message.text}
