"""How the e-mail about one ticket threads: its Message-ID, In-Reply-To, References.

Pure. Every mail about a ticket belongs to one thread whose root is
``<ticket-{ticket id}@{mail domain}>``:

- the mail of the ticket's first event (version 1: the acknowledgment of
  a new ticket) carries the root as its own ``Message-ID``;
- every other mail carries ``<ticket-{ticket id}.{version}.{tag}@{mail
  domain}>``, where ``version`` is the ticket's version after the event it
  tells of (the first update, for a mail that lists several) and ``tag``
  is the first 8 hex digits of the SHA-256 of the recipient's address,
  lower-cased: one event can be mailed to several people (the customer and
  the assignee) and each message needs an id of its own. It names the
  root in ``In-Reply-To`` and ``References``.

So a mail program shows a ticket's mail as one conversation, and a reply
to any of them names the ticket in its own ``In-Reply-To`` or
``References`` (:func:`ticket_of`, for the inbound side). The ids are
derived from the delivery alone: a mail sent again after a crash carries
the same id, which mail stores recognise as the same message.
docs/notifications.md states the format; change both together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.utils import parseaddr
from uuid import UUID

FALLBACK_DOMAIN = "ticketing.invalid"

_MESSAGE_ID = re.compile(
    r"<ticket-(?P<ticket>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?:\.(?P<version>[0-9]+)(?:\.[0-9a-f]+)?)?@[^<>@\s]+>",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ThreadHeaders:
    message_id: str
    in_reply_to: str | None = None
    references: str | None = None


def mail_domain(sender: str, configured: str | None = None) -> str:
    """The domain of the ids: the configured one, else the sender's."""
    if configured and configured.strip():
        return configured.strip().lower()
    _, address = parseaddr(sender)
    _, at, domain = address.rpartition("@")
    return domain.strip().lower() if at and domain.strip() else FALLBACK_DOMAIN


def root_message_id(ticket_id: str, domain: str) -> str:
    """The id every mail about the ticket refers to."""
    return f"<ticket-{ticket_id}@{domain}>"


def recipient_tag(recipient: str) -> str:
    return hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:8]


def thread_headers(event_id: str, recipient: str, domain: str) -> ThreadHeaders | None:
    """The ids of the mail about event ``<ticket id>:<version>`` to ``recipient``.

    None when ``event_id`` names no ticket event (the caller falls back to
    an id of its own).
    """
    ticket_id, _, version_text = event_id.rpartition(":")
    try:
        ticket = str(UUID(ticket_id))
        version = int(version_text)
    except ValueError:
        return None
    if version < 1:
        return None
    root = root_message_id(ticket, domain)
    if version == 1:
        return ThreadHeaders(message_id=root)
    own = f"<ticket-{ticket}.{version}.{recipient_tag(recipient)}@{domain}>"
    return ThreadHeaders(message_id=own, in_reply_to=root, references=root)


def ticket_of(header: str) -> tuple[str, int | None] | None:
    """The ticket (and version) the first of our ids in a header names.

    For ``In-Reply-To`` or ``References`` of an incoming reply; None when
    the header holds none of ours.
    """
    match = _MESSAGE_ID.search(header or "")
    if match is None:
        return None
    version = match.group("version")
    return str(UUID(match.group("ticket"))), int(version) if version else None


def with_ticket_tag(subject: str, number: int) -> str:
    """The subject with ``[#N]`` in it (first, unless it is there already)."""
    tag = f"[#{number}]"
    return subject if tag in subject else f"{tag} {subject}".strip()
