"""Inbound e-mail end to end: a real IMAP server, the real notifier.

Dovecot (Debian's package, privately configured by ``tests.dovecot``)
holds each tenant's mailbox; messages arrive by IMAP APPEND. The API, the
relay, the workflows, the projections, the notifier (sending to aiosmtpd)
and the mail-in worker all run, so a reply answers the very mail the
notifier sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import psycopg
import pytest

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.entry.processes import (
    start_mail_in,
    start_notifier,
    start_projection_worker,
)
from dotmac.ticketing.store.inbound_mail import MailboxUid
from tests.conftest import fresh_database
from tests.dovecot import DovecotServer
from tests.integration.mailboxes import mailbox, settle
from tests.integration.timers_running import MovableClock, wait_until
from tests.integration.workflow_stack import (
    WorkflowStack,
    new_tenant,
    running_workflow_stack,
    workflow_settings,
)
from tests.notifications.servers import SmtpSink, smtp_sink

SENDER = "Acme Support <support@acme.test>"


@dataclass
class Desk:
    stack: WorkflowStack
    smtp: SmtpSink
    imap: DovecotServer

    def configure(self, tenant: str) -> tuple[str, str]:
        """The tenant's mailbox on Dovecot; its user and password."""
        user, password = self.imap.new_user()
        self.stack.put_settings(
            tenant,
            {
                "inbound_email": {
                    "mailboxes": [
                        {
                            "name": "support",
                            "host": "127.0.0.1",
                            "port": self.imap.port,
                            "security": "plain",
                            "username": user,
                            "password": password,
                        }
                    ]
                }
            },
        )
        return user, password

    def outcome(self, tenant: str, sender: str, count: int = 1) -> list[dict[str, Any]]:
        """The first ``count`` messages from ``sender``, once all are taken."""
        url = self.stack.settings.database_url
        assert url is not None

        def taken() -> list[dict[str, Any]] | None:
            with psycopg.connect(url) as conn:
                cur = conn.execute(
                    "SELECT outcome, ticket_id::text, comment_id, reason"
                    " FROM inbound_messages WHERE tenant_id = %s AND sender = %s"
                    " ORDER BY received_at",
                    (tenant, sender),
                )
                names = [d.name for d in cur.description or ()]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            return rows if len(rows) >= count else None

        return wait_until(taken, what=f"{count} message(s) from {sender} taken")


@pytest.fixture(scope="module")
def desk(postgres_server_url: str, dovecot: DovecotServer) -> Iterator[Desk]:
    with ExitStack() as cleanup:
        database_url = cleanup.enter_context(fresh_database(postgres_server_url))
        broker = cleanup.enter_context(start_dev_broker())
        smtp = cleanup.enter_context(smtp_sink())
        settings = workflow_settings(
            database_url,
            broker,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_from=SENDER,
            mail_in_allow_private=True,
            mail_in_idle_seconds=1.0,
        )
        stack = cleanup.enter_context(
            running_workflow_stack(settings, clock=MovableClock())
        )
        for worker in (
            start_projection_worker(settings),
            start_notifier(settings, config={}, clock=stack.clock),
            start_mail_in(settings, clock=stack.clock),
        ):
            cleanup.callback(worker.stop)
        yield Desk(stack, smtp, dovecot)


def message(sender: str, subject: str, body: str, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "support@acme.test"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


def test_replies_thread_into_their_ticket(desk: Desk) -> None:
    tenant, customer = new_tenant("mailin"), f"ada-{secrets.token_hex(2)}@example.com"
    user, password = desk.configure(tenant)
    desk.imap.append(
        user, password, message(customer, "VPN drops every hour", "Since Monday.")
    )
    (opened,) = desk.outcome(tenant, customer)
    assert opened["outcome"] == "ticket"
    ticket_id = opened["ticket_id"]
    ticket = desk.stack.ticket(tenant, ticket_id)
    assert ticket["channel"] == "email" and ticket["customer_email"] == customer

    # The acknowledgment the notifier mailed; the customer answers it.
    desk.stack.wait_until_completed(tenant, ticket_id)
    settle(desk.stack, tenant, ticket_id)
    sent = wait_until(
        lambda: mailbox(desk.smtp, customer) or None, what="the acknowledgment"
    )
    acknowledgment = sent[0]
    desk.imap.append(
        user,
        password,
        message(
            customer,
            f"Re: {acknowledgment.subject}",
            "It dropped again at 10:00.\n\nOn Mon, Acme wrote:\n> Thanks\n",
            In_Reply_To=acknowledgment.message_id,
        ),
    )
    desk.imap.append(
        user,
        password,
        message(customer, f"[#{ticket['number']}] more", "And at 11:00."),
    )
    replies = desk.outcome(tenant, customer, count=3)[1:]
    assert [r["outcome"] for r in replies] == ["comment", "comment"]
    assert {r["ticket_id"] for r in replies} == {ticket_id}
    bodies = [c["body"] for c in desk.stack.comments(tenant, ticket_id)]
    assert "It dropped again at 10:00." in bodies and "And at 11:00." in bodies
    assert not any("> Thanks" in b for b in bodies)

    stranger = f"eve-{secrets.token_hex(2)}@example.net"
    desk.imap.append(
        user, password, message(stranger, f"Re: [#{ticket['number']}]", "me too")
    )
    (other,) = desk.outcome(tenant, stranger)
    assert other["outcome"] == "ticket" and other["ticket_id"] != ticket_id

    # Everything taken is flagged, so no reader takes it again.
    flagged = desk.imap.messages(user, password)
    assert len(flagged) == 4
    assert all("$Ticketed" in flags for _, flags in flagged)


def test_an_auto_responder_does_not_loop(desk: Desk) -> None:
    tenant, bot = new_tenant("loop"), f"bot-{secrets.token_hex(2)}@example.com"
    user, password = desk.configure(tenant)
    desk.imap.append(user, password, message(bot, "Help", "Please help."))
    (opened,) = desk.outcome(tenant, bot)
    answered: set[str] = set()
    # The responder answers every mail it gets, three rounds.
    for _ in range(3):
        settle(desk.stack, tenant, opened["ticket_id"])
        mails = wait_until(
            lambda: mailbox(desk.smtp, bot) or None, what="mail to the responder"
        )
        for mail in mails:
            if mail.message_id in answered:
                continue
            answered.add(mail.message_id)
            desk.imap.append(
                user,
                password,
                message(
                    bot,
                    f"Out of office: {mail.subject}",
                    "I am away until Monday.",
                    In_Reply_To=mail.message_id,
                    Auto_Submitted="auto-replied",
                ),
            )
        desk.outcome(tenant, bot, count=1 + len(answered))
    taken = desk.outcome(tenant, bot, count=1 + len(answered))
    assert [t["outcome"] for t in taken[1:]] == ["ignored"] * len(answered)
    customer_comments = [
        c
        for c in desk.stack.comments(tenant, opened["ticket_id"])
        if not c["internal"] and "away" in c["body"]
    ]
    assert customer_comments == []
    assert len(mailbox(desk.smtp, bot)) == len(answered)


def test_a_message_stored_but_not_flagged_is_not_taken_twice(desk: Desk) -> None:
    """The worker stopped (SIGKILL) after storing what a message became and
    before flagging it: the next reader flags it and adds nothing."""
    tenant, customer = new_tenant("crash"), f"bob-{secrets.token_hex(2)}@example.com"
    user, password = desk.imap.new_user()
    raw = message(customer, "Invoice wrong", "Twice charged.")
    uid = desk.imap.append(user, password, raw)
    uidvalidity = desk.imap.uidvalidity(user, password)
    # What the killed reader had done: the message is a ticket, not flagged.
    first = desk.stack.ticketing.inbound.receive(
        tenant,
        raw,
        source="imap:support",
        uid=MailboxUid("support", uidvalidity, uid),
    )
    assert first.outcome == "ticket"
    desk.stack.put_settings(
        tenant,
        {
            "inbound_email": {
                "mailboxes": [
                    {
                        "name": "support",
                        "host": "127.0.0.1",
                        "port": desk.imap.port,
                        "security": "plain",
                        "username": user,
                        "password": password,
                    }
                ]
            }
        },
    )
    wait_until(
        lambda: (
            all("$Ticketed" in f for _, f in desk.imap.messages(user, password)) or None
        ),
        what="the restarted reader to flag the message",
    )
    (taken,) = desk.outcome(tenant, customer)
    assert taken["ticket_id"] == str(first.ticket_id)
    ticket = desk.stack.ticket(tenant, str(first.ticket_id))
    assert (
        ticket["version"] == desk.stack.ticket(tenant, str(first.ticket_id))["version"]
    )
    assert [a["filename"] for a in ticket["attachments"]] == ["message.eml"]
