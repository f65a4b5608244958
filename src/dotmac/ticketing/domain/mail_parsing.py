"""A raw inbound e-mail as a value: who, what, which thread, what is attached.

Pure, standard library only. :func:`parse_message` never raises anything
but :class:`UnreadableMessage` (with a reason a person can read), whatever
the bytes: broken MIME, 8-bit or encoded-word headers, unknown charsets and
HTML with scripts all end as an :class:`InboundMessage` with plain text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from dotmac.ticketing.domain.mail_text import html_to_text

HEADER_MAX_BYTES = 256 * 1024
SUBJECT_MAX = 300
FILENAME_MAX = 255
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class UnreadableMessage(ValueError):
    """Bytes that are not a message a ticket can be made of."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class InboundMessage:
    sender: str
    subject: str
    text: str
    message_id: str | None = None
    sender_name: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    auto_submitted: str | None = None
    precedence: str | None = None
    list_id: str | None = None
    auto_reply_header: bool = False
    is_report: bool = False
    attachments: tuple[MailAttachment, ...] = ()
    date: datetime | None = None


def parse_message(
    raw: bytes, *, max_header_bytes: int = HEADER_MAX_BYTES
) -> InboundMessage:
    """The message in ``raw``; ``UnreadableMessage`` says why there is none."""
    if not raw.strip():
        raise UnreadableMessage("the message is empty")
    if _header_size(raw) > max_header_bytes:
        raise UnreadableMessage(
            f"the header block is larger than {max_header_bytes // 1024} KiB"
        )
    try:
        return _parse(raw)
    except UnreadableMessage:
        raise
    except Exception as error:  # the email package on hostile input
        raise UnreadableMessage(
            f"the message could not be parsed: {type(error).__name__}"
        ) from error


def _header_size(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def _parse(raw: bytes) -> InboundMessage:
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    name, sender = _sender(message)
    text, attachments = _body(message)
    return InboundMessage(
        sender=sender,
        sender_name=name,
        subject=_clean(_header(message, "Subject"), SUBJECT_MAX),
        text=text,
        message_id=_first_id(_header(message, "Message-ID")),
        in_reply_to=tuple(_MESSAGE_ID.findall(_header(message, "In-Reply-To"))),
        references=tuple(_MESSAGE_ID.findall(_header(message, "References"))),
        auto_submitted=_lower(message, "Auto-Submitted"),
        precedence=_lower(message, "Precedence"),
        list_id=_lower(message, "List-Id"),
        auto_reply_header=any(
            message.get(h) is not None for h in ("X-Autoreply", "X-Autorespond")
        ),
        is_report=message.get_content_type() == "multipart/report",
        attachments=tuple(attachments),
        date=_date(_header(message, "Date")),
    )


def _header(message: Message, name: str) -> str:
    """A header's value decoded (encoded words, undeclared 8-bit), or ""."""
    # The stored value (compat32 keeps undeclared 8-bit bytes as
    # surrogates), not get(), which would turn them into U+FFFD.
    value = next((v for k, v in message.raw_items() if k.lower() == name.lower()), None)
    if value is None:
        return ""
    text = _undeclared_8bit(str(value))
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def _undeclared_8bit(text: str) -> str:
    # compat32 keeps raw 8-bit header bytes as surrogates: UTF-8 if they
    # are, else Latin-1.
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lower(message: Message, name: str) -> str | None:
    value = _header(message, name).strip().lower()
    return value or None


def _sender(message: Message) -> tuple[str | None, str]:
    header = _header(message, "From")
    addresses = [(n, a) for n, a in getaddresses([header]) if "@" in a]
    if not addresses:
        raise UnreadableMessage("the message has no From address")
    name, address = addresses[0]
    address = unicodedata.normalize("NFC", address).strip().lower()
    local, _, domain = address.rpartition("@")
    if (
        not local
        or not domain
        or len(address) > 320
        or any(c.isspace() or not c.isprintable() for c in address)
    ):
        raise UnreadableMessage("the From address is not an e-mail address")
    return (_clean(name, 200) or None), address


def _first_id(header: str) -> str | None:
    found = _MESSAGE_ID.findall(header)
    return found[0] if found else None


def _date(header: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


def _clean(text: str, limit: int) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


# -- the body ----------------------------------------------------------------------


def _body(message: Message) -> tuple[str, list[MailAttachment]]:
    plain: str | None = None
    html: str | None = None
    attachments: list[MailAttachment] = []
    for part in _parts(message):
        kind = _CONTROL.sub("", part.get_content_type())[:255]
        disposition = (
            (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        )
        filename = _filename(part)
        if kind == "message/rfc822":
            attachments.append(_forwarded(part, len(attachments)))
            continue
        is_file = disposition == "attachment" or (
            filename is not None and not kind.startswith("text/")
        )
        if is_file:
            attachments.append(
                MailAttachment(
                    filename or f"attachment-{len(attachments) + 1}.bin",
                    kind,
                    _payload_bytes(part),
                )
            )
        elif kind == "text/plain" and plain is None:
            plain = _decoded(part)
        elif kind == "text/html" and html is None:
            html = _decoded(part)
    if plain is not None and plain.strip():
        text = plain
    elif html is not None:
        text = html_to_text(html)
    else:
        text = plain or ""
    return _text(text), attachments


def _parts(message: Message) -> list[Message]:
    """The leaves, not descending into forwarded messages."""
    if message.get_content_type() == "message/rfc822":
        return [message]
    if not message.is_multipart():
        return [message]
    payload = message.get_payload()
    if not isinstance(payload, list):
        return [message]
    leaves: list[Message] = []
    for part in payload:
        if isinstance(part, Message):
            leaves.extend(_parts(part))
    return leaves


def _forwarded(part: Message, index: int) -> MailAttachment:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        content = inner.as_bytes(policy=policy.compat32)
        subject = _clean(_header(inner, "Subject"), 200)
    else:
        content, subject = _payload_bytes(part), ""
    name = _safe_filename(subject) if subject else f"forwarded-{index + 1}"
    return MailAttachment(f"{name}.eml"[:FILENAME_MAX], "message/rfc822", content)


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return (
        payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    )


def _decoded(part: Message) -> str:
    data = _payload_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1", "replace")


def _text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return None
    return _safe_filename(_undeclared_8bit(str(make_header(decode_header(name)))))


def _safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _clean(name, FILENAME_MAX).strip(". ")
    return name or "attachment"


__all__ = [
    "InboundMessage",
    "MailAttachment",
    "UnreadableMessage",
    "parse_message",
]
