"""Mail no person wrote is recognised; permanent bounces are read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dotmac.ticketing.domain.mail_loops import automatic_reason, bounce_of
from dotmac.ticketing.domain.mail_parsing import parse_message

OWN = ("support@desk.example",)


def parsed(*headers: str, sender: str = "ada@example.com") -> object:
    raw = "\r\n".join([f"From: {sender}", "Subject: x", *headers, "", "hi"])
    return parse_message(raw.encode())


#: Mail of each kind a machine sends, and the reason it is ignored for.
MACHINE_MAIL = [
    (("Auto-Submitted: auto-replied",), "ada@example.com", "auto-submitted"),
    (("Precedence: bulk",), "ada@example.com", "precedence-bulk"),
    (("X-Autoreply: yes",), "ada@example.com", "auto-reply-header"),
    (("List-Id: <x.lists.example>",), "ada@example.com", "mailing-list"),
    ((), "MAILER-DAEMON@mx.example", "mailer-daemon"),
    ((), "Support@Desk.example", "own-address"),
]
INBOUND_DOC = Path(__file__).resolve().parents[2] / "docs" / "inbound-email.md"


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        *MACHINE_MAIL,
        (("Auto-Submitted: no",), "ada@example.com", None),
        ((), "ada@example.com", None),
    ],
)
def test_automatic_reason(
    headers: tuple[str, ...], sender: str, reason: str | None
) -> None:
    message = parsed(*headers, sender=sender)
    assert automatic_reason(message, OWN) == reason  # type: ignore[arg-type]


def test_every_reason_is_documented_and_nothing_else() -> None:
    """docs/inbound-email.md lists what each ``ignored`` reason means."""
    rows = re.findall(
        r"^\| `machine mail: ([a-z-]+)` \|", INBOUND_DOC.read_text(), re.M
    )
    assert set(rows) == {reason for _, _, reason in MACHINE_MAIL}


def dsn(action: str, status: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; Gone@Example.com\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 no such user\r\n"
        "\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        "Message-ID: <ticket-0b5e0000-0000-4000-8000-000000000001@desk.example>\r\n"
        "Subject: We got your request\r\n\r\nbody\r\n"
        "--b--\r\n"
    ).encode()


def test_a_permanent_failure_is_a_bounce() -> None:
    bounce = bounce_of(dsn("failed", "5.1.1"))
    assert bounce is not None
    assert bounce.recipients == ("gone@example.com",)
    assert bounce.status == "5.1.1"
    assert bounce.diagnostic == "smtp; 550 no such user"
    assert bounce.original_message_ids == (
        "<ticket-0b5e0000-0000-4000-8000-000000000001@desk.example>",
    )


@pytest.mark.parametrize(
    ("action", "status"), [("delayed", "4.4.1"), ("failed", "4.2.2")]
)
def test_delays_and_transient_failures_are_not_bounces(
    action: str, status: str
) -> None:
    assert bounce_of(dsn(action, status)) is None


def test_garbage_is_no_bounce() -> None:
    assert bounce_of(b"\x00\xff garbage") is None
    assert bounce_of(b"From: a@b.example\r\n\r\nhello") is None
