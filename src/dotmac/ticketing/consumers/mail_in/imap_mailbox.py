"""One IMAP mailbox, as the mail-in worker uses it (synchronous; run in a thread).

``$Ticketed`` marks a message taken: the search for new mail is for
messages without it, so a person reading the mailbox (and setting
``\\Seen``) changes nothing. Fetches use ``BODY.PEEK[]`` for the same
reason.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from typing import Any, Literal

from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]

PROCESSED_KEYWORD = "$Ticketed"


class MailboxError(Exception):
    """The mailbox cannot be read (connection, login, protocol)."""


@dataclass(frozen=True)
class MailboxAddress:
    host: str
    port: int
    security: Literal["tls", "starttls", "plain"]
    username: str
    password: str
    folder: str = "INBOX"
    processed_folder: str | None = None
    ca_file: str | None = None
    timeout: float = 30.0

    def __repr__(self) -> str:  # never the password
        return f"MailboxAddress({self.username}@{self.host}:{self.port}/{self.folder})"


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes


class ImapMailbox:
    def __init__(self, address: MailboxAddress) -> None:
        self._address = address
        self._client: Any = None
        self._uidvalidity = 0
        self._idle = False

    @property
    def uidvalidity(self) -> int:
        return self._uidvalidity

    @property
    def supports_idle(self) -> bool:
        return self._idle

    def open(self) -> int:
        """Connect, log in and select the folder; its UIDVALIDITY."""
        a = self._address
        try:
            context = ssl.create_default_context(cafile=a.ca_file)
            client = IMAPClient(
                a.host,
                port=a.port,
                ssl=a.security == "tls",
                ssl_context=context,
                timeout=a.timeout,
            )
            self._client = client
            if a.security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise MailboxError(f"{self._where()} offers no STARTTLS")
                client.starttls(context)
            client.login(a.username, a.password)
            if a.processed_folder and not client.folder_exists(a.processed_folder):
                client.create_folder(a.processed_folder)
            selected = client.select_folder(a.folder)
            self._uidvalidity = int(selected[b"UIDVALIDITY"])
            self._idle = bool(client.has_capability("IDLE"))
        except MailboxError:
            raise
        except (IMAPClientError, OSError, ssl.SSLError, KeyError) as error:
            raise MailboxError(
                f"{self._where()}: {_without_secret(error, a)}"
            ) from error
        return self._uidvalidity

    def unprocessed(self, limit: int = 50) -> list[int]:
        def search(client: Any) -> Any:
            # A SEARCH alone does not take in mail delivered since the last
            # sync of the selected folder (Dovecot syncs on NOOP and IDLE):
            # without it a server with no IDLE would never show new mail.
            client.noop()
            return client.search(["UNKEYWORD", PROCESSED_KEYWORD, "NOT", "DELETED"])

        uids = self._call(search)
        return sorted(int(u) for u in uids)[:limit]

    def fetch(self, uid: int) -> FetchedMessage | None:
        found = self._call(lambda c: c.fetch([uid], ["BODY.PEEK[]"]))
        data = found.get(uid)
        if not data:
            return None
        raw = data.get(b"BODY[]")
        return None if raw is None else FetchedMessage(uid, bytes(raw))

    def mark_processed(self, uid: int) -> None:
        self._call(
            lambda c: c.add_flags([uid], [b"\\Seen", PROCESSED_KEYWORD.encode()])
        )
        target = self._address.processed_folder
        if target:
            if self._call(lambda c: c.has_capability("MOVE")):
                self._call(lambda c: c.move([uid], target))
            else:
                self._call(lambda c: c.copy([uid], target))
                self._call(lambda c: c.delete_messages([uid]))
                self._call(lambda c: c.uid_expunge([uid]))

    def wait_for_new(self, timeout: float) -> bool:
        """Whether the server announced new mail within ``timeout`` seconds."""
        if not self._idle:
            self._call(lambda c: c.noop())
            return False

        def idle(client: Any) -> bool:
            client.idle()
            try:
                responses = client.idle_check(timeout=timeout)
            finally:
                client.idle_done()
            return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)

        return bool(self._call(idle))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    def _call(self, action: Any) -> Any:
        if self._client is None:
            raise MailboxError(f"{self._where()}: not open")
        try:
            return action(self._client)
        except (IMAPClientError, OSError, ssl.SSLError) as error:
            raise MailboxError(
                f"{self._where()}: {_without_secret(error, self._address)}"
            ) from error

    def _where(self) -> str:
        a = self._address
        return f"{a.host}:{a.port} folder {a.folder}"


def _without_secret(error: BaseException, address: MailboxAddress) -> str:
    return (
        str(error).replace(address.password, "•••") if address.password else str(error)
    )


__all__ = ["FetchedMessage", "ImapMailbox", "MailboxAddress", "MailboxError"]
