"""The ids that thread a ticket's e-mail (docs/notifications.md states them)."""

from __future__ import annotations

import pytest

from dotmac.ticketing.domain.mail_threading import (
    mail_domain,
    root_message_id,
    thread_headers,
    ticket_of,
    with_ticket_tag,
)

TICKET = "3f0c6a8e-8d0f-4a53-9a55-2f4a1c0f6a11"


def test_the_domain_is_the_configured_one_else_the_senders() -> None:
    assert mail_domain("Acme Support <support@Acme.test>") == "acme.test"
    assert mail_domain("support@acme.test", "Mail.Acme.test") == "mail.acme.test"
    assert mail_domain("no address") == "ticketing.invalid"


def test_the_first_mail_about_a_ticket_is_the_threads_root() -> None:
    first = thread_headers(f"{TICKET}:1", "ada@example.test", "acme.test")
    assert first is not None
    assert first.message_id == f"<ticket-{TICKET}@acme.test>"
    assert first.message_id == root_message_id(TICKET, "acme.test")
    assert first.in_reply_to is None and first.references is None


def test_every_later_mail_names_the_root() -> None:
    later = thread_headers(f"{TICKET}:7", "Ada@Example.test", "acme.test")
    assert later is not None
    root = f"<ticket-{TICKET}@acme.test>"
    assert later.in_reply_to == root
    assert later.references == root
    assert later.message_id.startswith(f"<ticket-{TICKET}.7.")
    assert later.message_id.endswith("@acme.test>")
    # Stable (a re-send carries the same id), one per recipient, per event.
    assert later == thread_headers(f"{TICKET}:7", "ada@example.test", "acme.test")
    other = thread_headers(f"{TICKET}:7", "grace@example.test", "acme.test")
    assert other is not None and other.message_id != later.message_id
    eighth = thread_headers(f"{TICKET}:8", "ada@example.test", "acme.test")
    assert eighth is not None and eighth.message_id != later.message_id


@pytest.mark.parametrize("event_id", ["no-colon", "not-a-uuid:3", f"{TICKET}:x", ""])
def test_what_is_not_a_ticket_event_gets_no_thread(event_id: str) -> None:
    assert thread_headers(event_id, "ada@example.test", "acme.test") is None


def test_a_reply_names_its_ticket_in_its_headers() -> None:
    later = thread_headers(f"{TICKET}:7", "ada@example.test", "acme.test")
    assert later is not None
    assert ticket_of(later.message_id) == (TICKET, 7)
    assert ticket_of(f"<x@y> <ticket-{TICKET}@acme.test>") == (TICKET, None)
    assert ticket_of("<CAF0x@mail.gmail.com>") is None
    assert ticket_of("") is None


def test_the_subject_always_carries_the_ticket_number() -> None:
    assert with_ticket_tag("Resolved: Login", 42) == "[#42] Resolved: Login"
    assert with_ticket_tag("[#42] Resolved: Login", 42) == "[#42] Resolved: Login"
    assert with_ticket_tag("Re: ticket [#42]", 42) == "Re: ticket [#42]"
