"""Inbound e-mail: a message becomes a ticket, a comment, or nothing — once.

One use case, :meth:`InboundMail.receive`, for both sources (the mail-in
worker reading IMAP mailboxes and ``POST /api/v1/inbound/email``):

1. A message already taken (by its key, or by its mailbox UID) is answered
   with what it became. Its key is ``mid:`` + a digest of its
   ``Message-ID``, else ``sha256:`` + the digest of its bytes.
2. One that cannot be read becomes a dead letter (kept with the reason).
3. A bounce marks the failed addresses (the notifier stops mailing them);
   machine mail (auto-replies, lists, our own) is ignored, so nothing loops.
4. A sender over the tenant's pace is held back (kept, released later).
5. A reply is matched to its ticket by the ids the notifier sends
   (``In-Reply-To``/``References``), else by ``[#N]`` in the subject when
   the sender is the ticket's customer or one of the tenant's agents; the
   text above the quote becomes a public comment. Anything else opens a
   ticket (channel ``email``).

Every ticket event a message causes has an id derived from its key (the
ticket from an idempotency key, comments and attachments from the key), so
a message taken twice — a crash between storing and flagging, a redelivered
webhook — changes nothing the second time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from uuid import UUID

import structlog

from dotmac.ticketing.domain.categorization import categorize
from dotmac.ticketing.domain.customers import normalize_email
from dotmac.ticketing.domain.enums import TicketCategory, TicketChannel
from dotmac.ticketing.domain.errors import DomainError
from dotmac.ticketing.domain.limits import COMMENT_MAX, DESCRIPTION_MAX, TITLE_MAX
from dotmac.ticketing.domain.mail_loops import Bounce, automatic_reason, bounce_of
from dotmac.ticketing.domain.mail_parsing import (
    InboundMessage,
    MailAttachment,
    UnreadableMessage,
    parse_message,
)
from dotmac.ticketing.domain.mail_text import reply_text, subject_ticket_number
from dotmac.ticketing.domain.mail_threading import ticket_of
from dotmac.ticketing.domain.tenant_config import TenantConfig
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.schemas.tenant_config import InboundEmailConfig
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.clock import system_clock as utc_now
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, TicketNotFound
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.store import inbound_mail as rows
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.inbound_mail import PACE_WINDOW, MailboxUid, MessageRecord

log = structlog.get_logger(__name__)

#: The automation recorded on the notes inbound e-mail writes.
INBOUND_EMAIL = "inbound-email"
NO_SUBJECT = "(no subject)"
CUT_NOTE = "\n\n[The message was longer; all of it is in the attached message.eml.]"


@dataclass(frozen=True)
class Receipt:
    """What a message became (the 202 answer, the worker's log line)."""

    outcome: str
    message_key: str
    ticket_id: UUID | None = None
    ticket_number: int | None = None
    comment_id: str | None = None
    reason: str | None = None
    replayed: bool = False

    @classmethod
    def of(cls, record: MessageRecord, *, replayed: bool) -> Receipt:
        return cls(
            outcome=record.outcome,
            message_key=record.message_key,
            ticket_id=record.ticket_id,
            ticket_number=record.ticket_number,
            comment_id=record.comment_id,
            reason=record.reason,
            replayed=replayed,
        )


def message_key(message: InboundMessage | None, raw: bytes) -> str:
    """What names a message for exactly-once (bounded, whatever its id)."""
    if message is not None and message.message_id:
        digest = hashlib.sha256(message.message_id.encode("utf-8", "replace"))
        return "mid:" + digest.hexdigest()[:40]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def derived_id(key: str, what: str) -> str:
    """A comment's or attachment's id, the same each time the message is taken."""
    return hashlib.sha256(f"{key}\x00{what}".encode()).hexdigest()[:32]


class InboundMail:
    """Turns raw messages into ticket commands (see the module)."""

    def __init__(
        self,
        tickets: TicketService,
        app: TicketApplication,
        *,
        own_addresses: Collection[str] = (),
        attachment_max_bytes: int = 10 * 1024 * 1024,
        clock: Clock = utc_now,
    ) -> None:
        self._tickets = tickets
        self._app = app
        self._own = {normalize_email(a) for a in own_addresses if a and "@" in a}
        self._max_bytes = attachment_max_bytes
        self._clock = clock

    # -- the one use case --------------------------------------------------------

    def receive(
        self,
        tenant_id: str,
        raw: bytes,
        *,
        source: str,
        uid: MailboxUid | None = None,
        releasing: bool = False,
    ) -> Receipt:
        """Take one message for the tenant; what it became.

        ``releasing``: the message is a held one whose turn has come.
        Raises ``ProjectionNotReady`` (retry later) while customers cannot
        be looked up by address.
        """
        if uid is not None:
            with self._app.transaction() as cur:
                taken = rows.message_at_uid(cur, tenant_id, uid)
            if taken is not None:
                return Receipt.of(taken, replayed=True)
        try:
            message: InboundMessage | None = parse_message(raw)
        except UnreadableMessage as unreadable:
            message = None
            reason = unreadable.reason
        key = message_key(message, raw)
        with self._app.transaction() as cur:
            known = rows.find_message(cur, tenant_id, key)
        if known is not None and (known.outcome != "held" or not releasing):
            if uid is not None:
                with self._app.transaction() as cur:
                    rows.remember_uid(cur, tenant_id, uid, key)
            return Receipt.of(known, replayed=True)
        record = MessageRecord(
            tenant_id=tenant_id,
            message_key=key,
            source=source,
            sender=None if message is None else message.sender,
            subject=None if message is None else message.subject,
            outcome="dead-letter",
            received_at=known.received_at if known is not None else self._clock(),
            reason=None,
            size=len(raw),
        )
        if message is None:
            return self._finish(record, uid, raw=raw, reason=reason)
        try:
            return self._take(tenant_id, message, raw, record, uid, releasing)
        except (DomainError, TicketNotFound, PermissionDenied) as refused:
            log.warning(
                "inbound message refused", tenant_id=tenant_id, error=str(refused)
            )
            return self._finish(record, uid, raw=raw, reason=str(refused))

    def dead_letter(
        self,
        tenant_id: str,
        raw: bytes,
        *,
        source: str,
        reason: str,
        uid: MailboxUid | None = None,
    ) -> Receipt:
        """Keep a message that could not be taken (the reader gave up on it)."""
        try:
            message: InboundMessage | None = parse_message(raw)
        except UnreadableMessage:
            message = None
        record = MessageRecord(
            tenant_id=tenant_id,
            message_key=message_key(message, raw),
            source=source,
            sender=None if message is None else message.sender,
            subject=None if message is None else message.subject,
            outcome="dead-letter",
            received_at=self._clock(),
            size=len(raw),
        )
        return self._finish(record, uid, raw=raw, reason=reason)

    def release_held(self, *, limit: int = 100) -> int:
        """Take the held messages whose sender is within their pace again."""
        with self._app.transaction() as cur:
            held = rows.held_messages(cur, limit=limit)
        released = 0
        for row in held:
            receipt = self.receive(
                row["tenant_id"],
                bytes(row["raw"]),
                source=row["source"],
                releasing=True,
            )
            released += receipt.outcome != "held"
        return released

    # -- the steps ---------------------------------------------------------------

    def _take(
        self,
        tenant_id: str,
        message: InboundMessage,
        raw: bytes,
        record: MessageRecord,
        uid: MailboxUid | None,
        releasing: bool,
    ) -> Receipt:
        _, document = self._tickets.tenant_settings(tenant_id)
        options = InboundEmailConfig.model_validate(document.get("inbound_email") or {})
        bounce = bounce_of(raw) if message.is_report else None
        if bounce is not None and bounce.recipients:
            return self._bounced(tenant_id, message, record, uid, bounce)
        own = self._own | {normalize_email(a) for a in options.own_addresses}
        machine = automatic_reason(message, own)
        if machine is not None:
            return self._finish(
                record, uid, outcome="ignored", reason=f"machine mail: {machine}"
            )
        with self._app.transaction() as cur:
            taken, held = rows.sender_pace(
                cur, tenant_id, message.sender, since=self._clock() - PACE_WINDOW
            )
        limit = options.max_messages_per_sender_per_minute
        if taken >= limit or (held and not releasing):
            return self._finish(
                record,
                uid,
                raw=raw,
                outcome="held",
                reason=f"more than {limit} messages a minute from the sender",
            )
        with self._app.transaction() as cur:
            rows.clear_bounce(cur, tenant_id, message.sender)
        config = self._tickets.tenant_config(tenant_id)[1]
        reply = self._reply_target(tenant_id, message, config)
        if reply is not None:
            ticket, ctx = reply
            return self._comment(ticket, ctx, message, raw, record, uid)
        return self._open_ticket(tenant_id, message, raw, record, uid, config)

    def _reply_target(
        self, tenant_id: str, message: InboundMessage, config: TenantConfig
    ) -> tuple[Ticket, RequestContext] | None:
        """The ticket the message answers and who speaks, if it answers one."""
        for header in (*message.in_reply_to, *message.references):
            named = ticket_of(header)
            if named is None:
                continue
            ticket = self._tickets.find(UUID(named[0]))
            if ticket is not None and ticket.tenant_id == tenant_id:
                return self._speaking(ticket, message, config)
        number = subject_ticket_number(message.subject)
        if number is None:
            return None
        with self._app.transaction() as cur:
            ticket_id = rows.ticket_by_number(cur, tenant_id, number)
        ticket = None if ticket_id is None else self._tickets.find(ticket_id)
        if ticket is None or ticket.tenant_id != tenant_id:
            return None
        return self._speaking(ticket, message, config)

    def _speaking(
        self, ticket: Ticket, message: InboundMessage, config: TenantConfig
    ) -> tuple[Ticket, RequestContext] | None:
        """Who writes on ``ticket``: its customer or an agent; else nobody
        (a stranger who has the ids or the number gets a ticket of their own)."""
        sender = message.sender
        agent = next(
            (
                a
                for team in config.teams
                for a in team.agents
                if a.email and normalize_email(a.email) == sender
            ),
            None,
        )
        if agent is not None:
            ctx = RequestContext(
                tenant_id=ticket.tenant_id,
                user_id=agent.id,
                roles=frozenset(
                    {"supervisor" if agent.role == "supervisor" else "agent"}
                ),
            )
            return ticket, ctx
        customer_email = ticket.customer_email
        is_customer = (
            customer_email is not None and normalize_email(customer_email) == sender
        ) or self._tickets.customers.customer_for_email(
            ticket.tenant_id, sender
        ) == ticket.customer_id
        if not is_customer:
            return None
        ctx = RequestContext(
            tenant_id=ticket.tenant_id,
            user_id=ticket.customer_id,
            roles=frozenset({"customer"}),
        )
        return ticket, ctx

    def _comment(
        self,
        ticket: Ticket,
        ctx: RequestContext,
        message: InboundMessage,
        raw: bytes,
        record: MessageRecord,
        uid: MailboxUid | None,
    ) -> Receipt:
        key = record.message_key
        body = _bounded(
            reply_text(message.text) or message.subject or NO_SUBJECT, COMMENT_MAX
        )
        result = self._tickets.add_comment(
            ctx, ticket.id, body=body, comment_id=derived_id(key, "comment")
        )
        target = result.ticket
        self._attach(ctx, target, message, raw, key)
        outcome = "comment" if target.id == ticket.id else "follow-up"
        return self._finish(
            record,
            uid,
            outcome=outcome,
            ticket=target,
            comment_id=derived_id(key, "comment"),
        )

    def _open_ticket(
        self,
        tenant_id: str,
        message: InboundMessage,
        raw: bytes,
        record: MessageRecord,
        uid: MailboxUid | None,
        config: TenantConfig,
    ) -> Receipt:
        key = record.message_key
        title = (message.subject or NO_SUBJECT)[:TITLE_MAX]
        description = _bounded(message.text, DESCRIPTION_MAX)
        found = categorize(config.categorization_rules, title, description)
        customer_id = self._tickets.customers.customer_for_email(
            tenant_id, message.sender
        )
        ctx = RequestContext(
            tenant_id=tenant_id, user_id=customer_id, roles=frozenset({"customer"})
        )
        created = self._tickets.create_ticket(
            ctx,
            title=title,
            description=description,
            category=TicketCategory(found.category)
            if found
            else TicketCategory.GENERAL,
            channel=TicketChannel.EMAIL,
            customer_email=message.sender,
            customer_name=message.sender_name,
            idempotency_key=f"email:{key}",
        )
        ticket = created.ticket
        self._attach(ctx, ticket, message, raw, key)
        return self._finish(record, uid, outcome="ticket", ticket=ticket)

    def _attach(
        self,
        ctx: RequestContext,
        ticket: Ticket,
        message: InboundMessage,
        raw: bytes,
        key: str,
    ) -> None:
        """The message's attachments and the message itself (``message.eml``);
        what is over the size limit is left out with a note on the ticket."""
        files = [
            *message.attachments,
            MailAttachment("message.eml", "message/rfc822", raw),
        ]
        dropped = []
        for index, file in enumerate(files):
            if len(file.content) > self._max_bytes:
                dropped.append(file)
                continue
            self._tickets.add_attachment(
                ctx,
                ticket.id,
                filename=file.filename,
                content_type=file.content_type,
                content=file.content,
                attachment_id=derived_id(key, f"attachment:{index}"),
            )
        if dropped:
            listed = ", ".join(
                f"{f.filename} ({len(f.content):,} bytes)" for f in dropped
            )
            self._note(
                ticket,
                f"Left out of the e-mail, over the {self._max_bytes:,}-byte"
                f" limit of an attachment: {listed}.",
                comment_id=derived_id(key, "dropped"),
            )

    def _bounced(
        self,
        tenant_id: str,
        message: InboundMessage,
        record: MessageRecord,
        uid: MailboxUid | None,
        bounce: Bounce,
    ) -> Receipt:
        ticket = None
        for header in bounce.original_message_ids:
            named = ticket_of(header)
            found = None if named is None else self._tickets.find(UUID(named[0]))
            if found is not None and found.tenant_id == tenant_id:
                ticket = found
                break
        with self._app.transaction() as cur:
            for address in bounce.recipients:
                rows.record_bounce(
                    cur,
                    tenant_id,
                    address,
                    status=bounce.status,
                    diagnostic=bounce.diagnostic,
                    ticket_id=None if ticket is None else ticket.id,
                    at=self._clock(),
                )
        if ticket is not None:
            detail = " ".join(p for p in (bounce.status, bounce.diagnostic) if p)
            self._note(
                ticket,
                f"E-mail to {', '.join(bounce.recipients)} bounced"
                f"{f' ({detail})' if detail else ''}. No more e-mail goes to"
                " this address until mail from it arrives or an admin clears it.",
                comment_id=derived_id(record.message_key, "bounce"),
            )
        log.info("bounce recorded", tenant_id=tenant_id, recipients=bounce.recipients)
        return self._finish(
            record,
            uid,
            outcome="bounce",
            ticket=ticket,
            reason=f"bounced: {', '.join(bounce.recipients)}",
        )

    def _note(self, ticket: Ticket, body: str, *, comment_id: str) -> None:
        """An internal note of inbound e-mail's own on ``ticket``; the
        derived ``comment_id`` keeps a message taken twice to one note."""
        self._tickets.add_comment(
            RequestContext.for_automation(ticket.tenant_id, INBOUND_EMAIL),
            ticket.id,
            body=body,
            internal=True,
            comment_id=comment_id,
        )

    def _finish(
        self,
        record: MessageRecord,
        uid: MailboxUid | None,
        *,
        outcome: str = "dead-letter",
        raw: bytes | None = None,
        reason: str | None = None,
        ticket: Ticket | None = None,
        comment_id: str | None = None,
    ) -> Receipt:
        done = MessageRecord(
            **{
                **record.__dict__,
                "outcome": outcome,
                "reason": reason,
                "ticket_id": None if ticket is None else ticket.id,
                "ticket_number": None if ticket is None else ticket.number,
                "comment_id": comment_id,
            }
        )
        keep = raw if outcome in ("held", "dead-letter") else None
        with self._app.transaction() as cur:
            rows.record_message(cur, done, raw=keep, uid=uid)
        log.info(
            "inbound message taken",
            tenant_id=record.tenant_id,
            source=record.source,
            outcome=outcome,
            reason=reason,
            ticket_number=done.ticket_number,
        )
        return Receipt.of(done, replayed=False)


def _bounded(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT_NOTE)].rstrip() + CUT_NOTE
