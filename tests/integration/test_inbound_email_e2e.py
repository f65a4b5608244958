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
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from dotmac.ticketing.entry.processes import (
    start_mail_in,
    start_notifier,
    start_projection_worker,
)
from dotmac.ticketing.store.inbound_mail import MailboxUid
from tests.dovecot import DovecotServer
from tests.integration.mail_desk import MailDesk, running_mail_desk
from tests.integration.mailboxes import mailbox, settle
from tests.integration.timers_running import wait_until
from tests.integration.workflow_stack import new_tenant


@dataclass
class Desk(MailDesk):
    imap: DovecotServer

    def configure(self, tenant: str) -> tuple[str, str]:
        """The tenant's mailbox on Dovecot; its user and password."""
        user, password = self.imap.new_user()
        self.read_mailbox(tenant, self.imap, user, password)
        return user, password


@pytest.fixture(scope="module")
def desk(postgres_server_url: str, dovecot: DovecotServer) -> Iterator[Desk]:
    with running_mail_desk(
        postgres_server_url, mail_in_allow_private=True, mail_in_idle_seconds=1.0
    ) as mail:
        settings = mail.settings
        workers = [
            start_projection_worker(settings),
            start_notifier(settings, config={}, clock=mail.stack.clock),
            start_mail_in(settings, clock=mail.stack.clock),
        ]
        try:
            yield Desk(mail.stack, mail.smtp, dovecot)
        finally:
            for worker in reversed(workers):
                worker.stop()


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
    (opened,) = desk.taken(tenant, customer)
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
    replies = desk.taken(tenant, customer, count=3)[1:]
    assert [r["outcome"] for r in replies] == ["comment", "comment"]
    assert {r["ticket_id"] for r in replies} == {ticket_id}
    bodies = [c["body"] for c in desk.stack.comments(tenant, ticket_id)]
    assert "It dropped again at 10:00." in bodies and "And at 11:00." in bodies
    assert not any("> Thanks" in b for b in bodies)

    stranger = f"eve-{secrets.token_hex(2)}@example.net"
    desk.imap.append(
        user, password, message(stranger, f"Re: [#{ticket['number']}]", "me too")
    )
    (other,) = desk.taken(tenant, stranger)
    assert other["outcome"] == "ticket" and other["ticket_id"] != ticket_id

    # Everything taken is flagged, so no reader takes it again.
    flagged = desk.imap.messages(user, password)
    assert len(flagged) == 4
    assert all("$Ticketed" in flags for _, flags in flagged)


def test_an_auto_responder_does_not_loop(desk: Desk) -> None:
    tenant, bot = new_tenant("loop"), f"bot-{secrets.token_hex(2)}@example.com"
    user, password = desk.configure(tenant)
    desk.imap.append(user, password, message(bot, "Help", "Please help."))
    (opened,) = desk.taken(tenant, bot)
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
        desk.taken(tenant, bot, count=1 + len(answered))
    taken = desk.taken(tenant, bot, count=1 + len(answered))
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
    # Its workflow done, nothing but a second take could change it.
    desk.stack.wait_until_completed(tenant, str(first.ticket_id))
    stored = desk.stack.ticket(tenant, str(first.ticket_id))
    desk.read_mailbox(tenant, desk.imap, user, password)
    wait_until(
        lambda: (
            all("$Ticketed" in f for _, f in desk.imap.messages(user, password)) or None
        ),
        what="the restarted reader to flag the message",
    )
    (taken,) = desk.taken(tenant, customer)
    assert taken["ticket_id"] == str(first.ticket_id)
    ticket = desk.stack.ticket(tenant, str(first.ticket_id))
    assert ticket["version"] == stored["version"]
    assert [a["filename"] for a in ticket["attachments"]] == ["message.eml"]
