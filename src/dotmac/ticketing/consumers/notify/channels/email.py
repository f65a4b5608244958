"""E-mail over SMTP (aiosmtplib), threaded per ticket, ids derived from the delivery.

Every mail about a ticket carries the thread's ids (``mail_threading``):
its own ``Message-ID`` from the ticket, the event and the recipient, and
``In-Reply-To`` and ``References`` naming the ticket's root; ``Reply-To``
is the tenant's reply address (its ``notifications.reply_to``), else the
sender. A delivery that is not about a ticket event gets a hash of its
key. So the same notification always carries the same id: if the process
dies after the SMTP server accepted a message but before the ledger row
was marked sent, the message is sent again with the same Message-ID, and
mail stores and clients treat messages with one Message-ID as one (and a
test can count distinct ids).
Without ``TICKETING_SMTP_HOST`` the message is written to the log instead
and counts as sent, so development needs no mail server.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib
import structlog

from dotmac.ticketing.consumers.notify.channels import (
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
)
from dotmac.ticketing.domain.mail_threading import mail_domain, thread_headers

log = structlog.get_logger(__name__)

DELIVERY_HEADER = "X-Ticketing-Delivery"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    sender: str = "ticketing@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


def message_id(delivery_key: str, sender: str, domain: str | None = None) -> str:
    """A stable Message-ID for a delivery that is about no ticket event."""
    digest = hashlib.sha256(delivery_key.encode()).hexdigest()[:40]
    return f"<{digest}@{mail_domain(sender, domain)}>"


def build_message(
    delivery: Delivery, sender: str, *, domain: str | None = None
) -> Message:
    """The MIME message: text and (when given) HTML alternatives, UTF-8.

    Built with the ``email.mime`` classes (the compat32 policy): about three
    times cheaper than ``EmailMessage`` here, which matters at the rate a
    dispatcher sends.
    """
    payload = delivery.payload
    # typeshed says str; email.mime takes a Charset too, and only a Charset
    # carries the quoted-printable body encoding.
    text = MIMEText(payload["text"], "plain", _UTF8_QP)  # type: ignore[arg-type]
    message: Message
    if payload.get("html"):
        message = MIMEMultipart("alternative")
        message.attach(text)
        message.attach(MIMEText(payload["html"], "html", _UTF8_QP))  # type: ignore[arg-type]
    else:
        message = text
    message["From"] = _address_header(sender)
    message["To"] = _address_header(delivery.recipient)
    message["Reply-To"] = _address_header(payload.get("reply_to") or sender)
    # A Header object is what compat32 encodes (RFC 2047); typeshed says str.
    message["Subject"] = _text_header(payload["subject"])  # type: ignore[assignment]
    thread = thread_headers(
        delivery.event_id, delivery.recipient, mail_domain(sender, domain)
    )
    if thread is None:
        message["Message-ID"] = message_id(delivery.key, sender, domain)
    else:
        message["Message-ID"] = _Unfolded(thread.message_id)  # type: ignore[assignment]
        if thread.in_reply_to:
            message["In-Reply-To"] = _Unfolded(thread.in_reply_to)  # type: ignore[assignment]
        if thread.references:
            message["References"] = _Unfolded(thread.references)  # type: ignore[assignment]
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message[DELIVERY_HEADER] = delivery.key
    # Automated mail: no out-of-office replies to it (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    return message


class _Unfolded:
    """A header value written on the header's own line, never folded.

    An id such as ``<ticket-{uuid}.{version}.{tag}@{domain}>`` is longer
    than fits after ``Message-ID:`` in 78 columns, so the generator would
    move it to a continuation line, and parsers then read it with leading
    white space; a matcher of replies must get the id exactly. An id is a
    few dozen characters, far below the 998 a line may have.
    """

    def __init__(self, value: str) -> None:
        self.value = value

    def encode(self, linesep: str = "\n", maxlinelen: int | None = None) -> str:
        return self.value

    def __str__(self) -> str:
        return self.value


# Quoted-printable keeps mostly-ASCII text readable in the raw message.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _text_header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def _address_header(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


class EmailChannel:
    def __init__(
        self,
        config: SmtpConfig | None,
        *,
        sender: str | None = None,
        domain: str | None = None,
    ):
        self._config = config
        self._sender = config.sender if config else (sender or "ticketing@localhost")
        self._domain = domain

    async def send(self, delivery: Delivery) -> None:
        message = build_message(delivery, self._sender, domain=self._domain)
        config = self._config
        if config is None:
            log.info(
                "e-mail (no SMTP server configured)",
                to=delivery.recipient,
                subject=delivery.payload["subject"],
                message_id=message["Message-ID"],
                text=delivery.payload["text"],
            )
            return
        sender = parseaddr(self._sender)[1]
        # Internationalised addresses need the server's SMTPUTF8 (RFC 6531).
        utf8 = not (sender.isascii() and delivery.recipient.isascii())
        try:
            await aiosmtplib.send(
                message.as_bytes(),
                sender=sender,
                recipients=[delivery.recipient],
                mail_options=["SMTPUTF8"] if utf8 else None,
                hostname=config.host,
                port=config.port,
                username=config.user,
                password=config.password,
                start_tls=config.starttls,
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            if all(500 <= code < 600 for code in codes):
                raise DeliveryRefused(f"recipient refused: {error}") from error
            raise DeliveryFailed(f"recipient deferred: {error}") from error
        except aiosmtplib.SMTPNotSupported as error:  # e.g. SMTPUTF8
            raise DeliveryRefused(f"SMTP: {error}") from error
        except aiosmtplib.SMTPDataError as error:
            if 500 <= error.code < 600:  # this message is refused (size, content)
                raise DeliveryRefused(f"SMTP {error.code}: {error.message}") from error
            raise DeliveryFailed(f"SMTP {error.code}: {error.message}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            # Connection, TLS, credentials, sender: an operator can fix those,
            # and the message is then still worth sending.
            raise DeliveryFailed(f"SMTP: {error!r}") from error

    async def aclose(self) -> None:
        return None
