"""Raw inbound e-mail into a value: every input ends as a message or a reason."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotmac.ticketing.domain.mail_parsing import UnreadableMessage, parse_message


def mail(body: str = "Hello.", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Ada Lovelace <Ada@Example.com>")
    message["Subject"] = headers.pop("Subject", "Printer")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def test_a_plain_message() -> None:
    parsed = parse_message(
        mail(Message_ID="<a1@example.com>", In_Reply_To="<x@y> <z@w>").as_bytes()
    )
    assert parsed.sender == "ada@example.com"
    assert parsed.sender_name == "Ada Lovelace"
    assert parsed.subject == "Printer"
    assert parsed.text.strip() == "Hello."
    assert parsed.message_id == "<a1@example.com>"
    assert parsed.in_reply_to == ("<x@y>", "<z@w>")


def test_the_plain_part_of_an_alternative_is_the_text() -> None:
    message = mail("plain words")
    message.add_alternative("<p>html words</p>", subtype="html")
    assert parse_message(message.as_bytes()).text.strip() == "plain words"


def test_html_only_is_plain_text_without_scripts() -> None:
    message = mail()
    message.set_content(
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>Pay <b>now</b></p><script>alert('x')</script>"
        '<a href="https://evil.example/">click</a></body></html>',
        subtype="html",
    )
    text = parse_message(message.as_bytes()).text
    assert "Pay now" in text
    assert "alert" not in text and "color" not in text and "<" not in text
    assert "click (https://evil.example/)" in text


def test_attachments_and_a_forwarded_message() -> None:
    message = mail()
    message.add_attachment(
        b"%PDF", maintype="application", subtype="pdf", filename="../../bill.pdf"
    )
    message.add_attachment(
        b"\x89PNG", maintype="image", subtype="png", filename="Über.png"
    )
    forwarded = mail("inner", Subject="The old one")
    message.add_attachment(forwarded)
    parsed = parse_message(message.as_bytes())
    names = [a.filename for a in parsed.attachments]
    assert names == ["bill.pdf", "Über.png", "The old one.eml"]
    assert parsed.attachments[0].content == b"%PDF"
    assert parsed.attachments[2].content_type == "message/rfc822"
    assert b"inner" in parsed.attachments[2].content


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?utf-8?b?w5xiZXJ3ZWlzdW5n?=", "Überweisung"),
        ("=?iso-8859-1?q?Caf=E9?=", "Café"),
    ],
)
def test_encoded_word_subjects(subject: str, expected: str) -> None:
    raw = f"From: a@example.com\r\nSubject: {subject}\r\n\r\nhi\r\n".encode()
    assert parse_message(raw).subject == expected


def test_raw_8bit_headers_and_an_unknown_charset() -> None:
    raw = (
        "From: Jürgen <j@example.com>\r\nSubject: Grüße\r\n"
        "Content-Type: text/plain; charset=x-unknown\r\n\r\nGrüße aus Köln\r\n"
    ).encode()
    parsed = parse_message(raw)
    assert parsed.subject == "Grüße" and parsed.sender_name == "Jürgen"
    assert "Köln" in parsed.text
    latin = "From: a@example.com\r\nSubject: Caf\xe9\r\n\r\nx".encode("latin-1")
    assert parse_message(latin).subject == "Café"


def test_broken_mime_still_reads() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: broken\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n"
    )
    assert parse_message(raw).sender == "a@example.com"
    unterminated = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nstill here\r\n"
    )
    assert "still here" in parse_message(unterminated).text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"Subject: hi\r\n\r\nbody", "no From"),
        (b"From: nobody\r\n\r\nbody", "no From"),
        (b"From: a@example.com\r\nX-Junk: " + b"x" * 300_000 + b"\r\n\r\n", "header"),
    ],
)
def test_unreadable_messages_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMessage) as refused:
        parse_message(raw)
    assert reason in refused.value.reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2_000))
def test_any_bytes_end_as_a_message_or_a_reason(raw: bytes) -> None:
    try:
        parse_message(b"From: a@example.com\r\n" + raw)
        parse_message(raw)
    except UnreadableMessage as refused:
        assert refused.reason
