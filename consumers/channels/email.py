"""E-mail over SMTP (aiosmtplib), with a Message-ID derived from the delivery.

The Message-ID is a hash of the delivery key, so the same notification
always carries the same id. If the process dies after the SMTP server
accepted a message but before the ledger row was marked sent, the message
is sent again with the same Message-ID: mail stores and clients treat
messages with one Message-ID as one (and a test can count distinct ids).
Without ``TICKETING_SMTP_HOST`` the message is written to the log instead
and counts as sent, so development needs no mail server.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib
import structlog

from consumers.channels import Delivery, DeliveryFailed, DeliveryRefused
from service.settings import Settings

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


def message_id(delivery_key: str, sender: str) -> str:
    """A stable Message-ID for the delivery (RFC 5322 §3.6.4)."""
    digest = hashlib.sha256(delivery_key.encode()).hexdigest()[:40]
    _, address = parseaddr(sender)
    domain = address.rpartition("@")[2] or "ticketing.invalid"
    return f"<{digest}@{domain}>"


def build_message(delivery: Delivery, sender: str) -> EmailMessage:
    payload = delivery.payload
    message = EmailMessage()
    message["From"] = sender
    message["To"] = delivery.recipient
    message["Subject"] = payload["subject"]
    message["Message-ID"] = message_id(delivery.key, sender)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message[DELIVERY_HEADER] = delivery.key
    # Automated mail: no out-of-office replies to it (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(payload["text"])
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    return message


class EmailChannel:
    def __init__(self, config: SmtpConfig | None, *, sender: str | None = None):
        self._config = config
        self._sender = config.sender if config else (sender or "ticketing@localhost")

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel:
        if not settings.smtp_host:
            return cls(None, sender=settings.smtp_from)
        return cls(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                user=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
        )

    async def send(self, delivery: Delivery) -> None:
        message = build_message(delivery, self._sender)
        config = self._config
        if config is None:
            log.info(
                "e-mail (no SMTP server configured)",
                to=delivery.recipient,
                subject=message["Subject"],
                message_id=message["Message-ID"],
                text=delivery.payload["text"],
            )
            return
        try:
            await aiosmtplib.send(
                message,
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
