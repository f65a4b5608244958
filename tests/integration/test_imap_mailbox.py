"""The mail-in worker's IMAP mailbox against a real server (a private Dovecot).

Each test has a user (and so a mailbox) of its own. Messages arrive by IMAP
APPEND from another connection, as a mail server would deliver them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]

from dotmac.ticketing.consumers.mail_in.imap_mailbox import (
    PROCESSED_KEYWORD,
    FetchedMessage,
    ImapMailbox,
    MailboxAddress,
    MailboxError,
)
from tests.dovecot import DovecotServer

Security = Literal["tls", "starttls", "plain"]
Open = Callable[..., ImapMailbox]


def message(n: int) -> bytes:
    """A message with 8-bit text, to see it come back byte for byte."""
    return (
        f"From: Kunde {n} <kunde{n}@example.com>\r\n"
        "To: support@example.com\r\n"
        f"Subject: Drucker {n} druckt nicht\r\n"
        f"Message-ID: <m{n}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"Grüße, Nummer {n}.\r\n"
    ).encode()


class Account:
    def __init__(self, server: DovecotServer) -> None:
        self.server = server
        self.user, self.password = server.new_user()

    def append(self, raw: bytes, folder: str = "INBOX") -> int:
        return self.server.append(self.user, self.password, raw, folder)

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        return dict(self.server.messages(self.user, self.password, folder))

    def address(self, security: Security = "plain", **fields: Any) -> MailboxAddress:
        tls = security == "tls"
        return MailboxAddress(
            # A name for TLS (the certificate's DNS name), an address
            # otherwise (its IP address entry, for STARTTLS).
            host="localhost" if tls else self.server.host,
            port=self.server.tls_port if tls else self.server.port,
            security=security,
            **{
                "username": self.user,
                "password": self.password,
                "ca_file": self.server.ca_file,
                "timeout": 10.0,
                **fields,
            },
        )


@pytest.fixture
def account(dovecot: DovecotServer) -> Account:
    return Account(dovecot)


@pytest.fixture
def opened() -> Iterator[Open]:
    """Opens mailboxes; closes them all at the end."""
    mailboxes: list[ImapMailbox] = []

    def open_(address: MailboxAddress) -> ImapMailbox:
        mailbox = ImapMailbox(address)
        mailboxes.append(mailbox)
        mailbox.open()
        return mailbox

    yield open_
    for mailbox in mailboxes:
        mailbox.close()


@pytest.mark.parametrize("security", ["plain", "starttls", "tls"])
def test_lists_fetches_and_marks_messages(
    account: Account, opened: Open, security: Security
) -> None:
    uids = [account.append(message(n)) for n in range(3)]
    mailbox = opened(account.address(security))

    assert mailbox.unprocessed() == uids
    for n, uid in enumerate(uids):
        assert mailbox.fetch(uid) == FetchedMessage(uid, message(n))
    assert all("\\Seen" not in f for f in account.flags().values())  # peeked

    mailbox.mark_processed(uids[1])
    assert mailbox.unprocessed() == [uids[0], uids[2]]
    flags = account.flags()
    assert {"\\Seen", PROCESSED_KEYWORD} <= flags[uids[1]]
    assert "\\Seen" not in flags[uids[0]] and "\\Seen" not in flags[uids[2]]


def test_unprocessed_is_ascending_and_limited(account: Account, opened: Open) -> None:
    uids = [account.append(message(n)) for n in range(5)]
    mailbox = opened(account.address())

    assert mailbox.unprocessed(limit=2) == uids[:2]
    mailbox.mark_processed(uids[0])
    assert mailbox.unprocessed(limit=2) == uids[1:3]


def test_read_flags_and_deleted_messages(account: Account, opened: Open) -> None:
    """A person reading the mailbox changes nothing; a deleted one is gone."""
    uids = [account.append(message(n)) for n in range(3)]
    reader = IMAPClient(account.server.host, account.server.port, ssl=False)
    try:
        reader.login(account.user, account.password)
        reader.select_folder("INBOX")
        reader.add_flags([uids[0]], [b"\\Seen"])
        reader.add_flags([uids[1]], [b"\\Deleted"])
    finally:
        reader.logout()

    assert opened(account.address()).unprocessed() == [uids[0], uids[2]]


def test_moves_processed_messages(account: Account, opened: Open) -> None:
    uids = [account.append(message(n)) for n in range(2)]
    mailbox = opened(account.address(processed_folder="Ticketed"))
    assert account.flags("Ticketed") == {}  # made by open()

    mailbox.mark_processed(uids[0])

    assert mailbox.unprocessed() == [uids[1]]
    assert list(account.flags()) == [uids[1]]
    [flags] = account.flags("Ticketed").values()
    assert {"\\Seen", PROCESSED_KEYWORD} <= flags
    assert mailbox.fetch(uids[0]) is None  # no longer in the folder


def test_moves_without_the_move_extension(
    account: Account, opened: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COPY, \\Deleted and UID EXPUNGE of that message only."""
    has_capability = IMAPClient.has_capability

    def without_move(client: IMAPClient, capability: str) -> bool:
        return capability.upper() != "MOVE" and bool(has_capability(client, capability))

    monkeypatch.setattr(IMAPClient, "has_capability", without_move)
    uids = [account.append(message(n)) for n in range(3)]
    mailbox = opened(account.address(processed_folder="Done"))

    mailbox.mark_processed(uids[1])

    assert list(account.flags()) == [uids[0], uids[2]]
    [flags] = account.flags("Done").values()
    assert {"\\Seen", PROCESSED_KEYWORD} <= flags
    assert mailbox.unprocessed() == [uids[0], uids[2]]


def test_fetch_of_a_missing_message(account: Account, opened: Open) -> None:
    uid = account.append(message(1))
    assert opened(account.address()).fetch(uid + 100) is None


def test_uidvalidity_is_stable_across_connections(
    account: Account, opened: Open
) -> None:
    account.append(message(1))
    first = ImapMailbox(account.address())
    uidvalidity = first.open()
    first.close()

    assert opened(account.address("tls")).uidvalidity == uidvalidity
    assert opened(account.address("starttls")).uidvalidity == uidvalidity
    assert uidvalidity == account.server.uidvalidity(account.user, account.password)


def test_wrong_password(account: Account) -> None:
    secret = "not-the-password-1234"
    mailbox = ImapMailbox(account.address(password=secret))

    with pytest.raises(MailboxError) as raised:
        mailbox.open()

    text = str(raised.value)
    assert secret not in text
    assert f"{account.server.host}:{account.server.port}" in text
    assert "INBOX" in text
    mailbox.close()  # never raises


def test_tls_certificates_are_verified(account: Account) -> None:
    """Without the private CA the self-signed certificate is refused."""
    for security in ("tls", "starttls"):
        mailbox = ImapMailbox(account.address(security, ca_file=None))
        with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
            mailbox.open()
        mailbox.close()


def test_starttls_refused_when_the_server_lacks_it(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    has_capability = IMAPClient.has_capability

    def without_starttls(client: IMAPClient, capability: str) -> bool:
        return capability.upper() != "STARTTLS" and bool(
            has_capability(client, capability)
        )

    monkeypatch.setattr(IMAPClient, "has_capability", without_starttls)
    mailbox = ImapMailbox(account.address("starttls"))
    with pytest.raises(MailboxError, match="STARTTLS"):
        mailbox.open()
    mailbox.close()


def test_idle_wakes_on_new_mail(account: Account, opened: Open) -> None:
    mailbox = opened(account.address())
    assert mailbox.supports_idle
    assert mailbox.unprocessed() == []
    delivered: list[int] = []
    later = threading.Timer(0.3, lambda: delivered.append(account.append(message(1))))

    started = time.monotonic()
    later.start()
    try:
        woken = mailbox.wait_for_new(10.0)
    finally:
        later.join()
    elapsed = time.monotonic() - started

    assert woken
    assert elapsed < 3.0
    assert mailbox.unprocessed() == delivered  # out of IDLE, usable


def test_idle_times_out_when_nothing_arrives(account: Account, opened: Open) -> None:
    mailbox = opened(account.address())

    started = time.monotonic()
    assert mailbox.wait_for_new(0.5) is False
    elapsed = time.monotonic() - started

    assert 0.4 <= elapsed < 3.0
    uid = account.append(message(1))
    assert mailbox.unprocessed() == [uid]  # out of IDLE, usable


def test_without_idle_it_only_polls(
    account: Account, opened: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    has_capability = IMAPClient.has_capability

    def without_idle(client: IMAPClient, capability: str) -> bool:
        return capability.upper() != "IDLE" and bool(has_capability(client, capability))

    monkeypatch.setattr(IMAPClient, "has_capability", without_idle)
    mailbox = opened(account.address())
    assert not mailbox.supports_idle

    started = time.monotonic()
    assert mailbox.wait_for_new(5.0) is False
    assert time.monotonic() - started < 1.0  # no sleeping: the caller polls
    uid = account.append(message(1))
    assert mailbox.unprocessed() == [uid]


def test_close_never_raises(account: Account) -> None:
    ImapMailbox(account.address()).close()  # never opened
    mailbox = ImapMailbox(account.address())
    mailbox.open()
    mailbox.close()
    mailbox.close()
