"""Mail as machines send it to a desk, for the tests of inbound e-mail."""

from __future__ import annotations

import uuid


def bounce_report(address: str, ticket_id: str | None = None) -> bytes:
    """A delivery-status report: mail to ``address`` failed for good; the
    mail was about the ticket (its id as the notifier writes it), if any."""
    original = f"ticket-{ticket_id}.2.abcdef01" if ticket_id else uuid.uuid4()
    return (
        "From: MAILER-DAEMON@mx.example.com\r\n"
        "To: support@desk.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4()}@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
        "\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original}@desk.example>\r\n"
        "Subject: We got your request\r\n"
        "\r\n--b--\r\n"
    ).encode()
