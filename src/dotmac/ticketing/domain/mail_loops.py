"""Mail no person wrote: auto-replies, lists, bounces (pure).

Such mail never becomes a comment or a ticket, so a desk and an
auto-responder cannot answer each other forever (RFC 3834). A permanent
delivery failure (RFC 3464) is read for the addresses that failed, so the
notifier stops mailing them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser

from dotmac.ticketing.domain.mail_parsing import InboundMessage

_BULK = frozenset({"bulk", "junk", "list"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})


def automatic_reason(
    message: InboundMessage, own_addresses: Collection[str]
) -> str | None:
    """Why ``message`` was sent by a machine, or None for a person's mail."""
    if message.auto_submitted and message.auto_submitted.split(";")[0].strip() != "no":
        return "auto-submitted"
    if message.precedence in _BULK:
        return "precedence-bulk"
    if message.auto_reply_header:
        return "auto-reply-header"
    if message.list_id:
        return "mailing-list"
    if message.sender.partition("@")[0] in _DAEMONS:
        return "mailer-daemon"
    if message.sender in {a.strip().lower() for a in own_addresses}:
        return "own-address"
    return None


@dataclass(frozen=True)
class Bounce:
    recipients: tuple[str, ...]
    status: str | None = None
    diagnostic: str | None = None
    original_message_ids: tuple[str, ...] = ()


def bounce_of(raw: bytes) -> Bounce | None:
    """The permanent failure a delivery-status report tells of, else None."""
    try:
        return _bounce(BytesParser(policy=policy.compat32).parsebytes(raw))
    except Exception:
        return None


def _bounce(message: Message) -> Bounce | None:
    if message.get_content_type() != "multipart/report":
        return None
    recipients: list[str] = []
    status = diagnostic = None
    originals: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in _status_blocks(part):
                action = (block.get("Action") or "").strip().lower()
                code = (block.get("Status") or "").strip()
                recipient = _address(block.get("Final-Recipient") or "")
                if action == "failed" and code.startswith("5") and recipient:
                    recipients.append(recipient)
                    status = status or code
                    diagnostic = diagnostic or _one_line(block.get("Diagnostic-Code"))
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            headers = _original_headers(part)
            if headers is not None:
                for name in ("Message-ID", "In-Reply-To", "References"):
                    originals.extend(str(headers.get(name) or "").split())
    if not recipients:
        return None
    return Bounce(
        tuple(dict.fromkeys(recipients)),
        status,
        diagnostic,
        tuple(o for o in originals if o.startswith("<")),
    )


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    return [
        HeaderParser().parsestr(b) for b in text.replace("\r\n", "\n").split("\n\n")
    ]


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return HeaderParser().parsestr(payload)
    return None


def _address(field: str) -> str | None:
    _, _, address = field.partition(";")
    address = address.strip().strip("<>").lower()
    return address if "@" in address else None


def _one_line(value: object) -> str | None:
    text = " ".join(str(value or "").split())
    return text[:500] or None
