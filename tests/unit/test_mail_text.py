"""What a reply says above its quote, and the ticket number of a subject."""

from __future__ import annotations

import pytest

from dotmac.ticketing.domain.mail_text import (
    html_to_text,
    reply_text,
    subject_ticket_number,
)


@pytest.mark.parametrize(
    "quoted",
    [
        "On Tue, 1 Dec 2026 at 10:00, Desk <x@y.example> wrote:\n> old",
        "On Tue, 1 Dec 2026 at 10:00, Desk Support\n<x@y.example> wrote:\n> old",
        "-----Original Message-----\nFrom: Desk\nold",
        "From: Desk <x@y.example>\nSent: Tuesday\nTo: me\nSubject: old\n\nold",
        "Am 01.12.2026 um 10:00 schrieb Desk <x@y.example>:\n> alt",
        "> old\n> older",
    ],
)
def test_the_reply_is_the_text_above_the_quote(quoted: str) -> None:
    assert (
        reply_text(f"It works now.\nThanks!\n\n{quoted}\n") == "It works now.\nThanks!"
    )


def test_a_signature_is_cut_and_nothing_written_is_lost() -> None:
    assert reply_text("Fixed.\n-- \nAda\nACME Corp") == "Fixed."
    assert reply_text("> only a quote\n> here") == "> only a quote\n> here"


def test_html_as_text() -> None:
    text = html_to_text(
        "<ul><li>one</li><li>two &amp; three</li></ul><script>x()</script>"
    )
    assert text.splitlines() == ["- one", "- two & three"]


@pytest.mark.parametrize(
    ("subject", "number"),
    [("Re: [#42] Printer", 42), ("Printer", None), ("[#abc] x", None), ("", None)],
)
def test_subject_ticket_number(subject: str, number: int | None) -> None:
    assert subject_ticket_number(subject) == number
