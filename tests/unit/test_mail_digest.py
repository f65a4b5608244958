"""Whether an e-mail joins the one held for its recipient, and its subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dotmac.ticketing.consumers.notify.mail_digest import (
    OpenDigest,
    heading,
    headline,
    hold_until,
    joins,
    merge_key,
)

T0 = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)


def test_a_window_opens_with_the_first_update_and_lasts_its_seconds() -> None:
    assert hold_until(T0, 30) == T0 + timedelta(seconds=30)
    assert hold_until(T0, 0) is None  # 0: every mail at once


def test_updates_within_the_window_join_and_later_ones_do_not() -> None:
    held = OpenDigest(key="k", hold_until=T0 + timedelta(seconds=30))
    assert joins(held, T0)
    assert joins(held, T0 + timedelta(seconds=29, microseconds=999_999))
    assert not joins(held, T0 + timedelta(seconds=30))
    assert not joins(None, T0)


def test_a_mail_that_was_tried_is_never_changed() -> None:
    tried = OpenDigest(key="k", hold_until=T0 + timedelta(seconds=30), attempts=1)
    assert not joins(tried, T0)


def test_only_one_persons_mail_about_one_ticket_merges() -> None:
    assert merge_key("acme", "t-1", "Ada@Example.test") == merge_key(
        "acme", "t-1", "ada@example.test"
    )
    assert merge_key("acme", "t-1", "a@x") != merge_key("acme", "t-2", "a@x")
    assert merge_key("acme", "t-1", "a@x") != merge_key("globex", "t-1", "a@x")


def test_the_subject_is_the_acknowledgments_else_the_latest_updates() -> None:
    reply = {"kind": "comment_reply", "subject": "[#7] New reply: Login"}
    resolved = {"kind": "ticket_resolved", "subject": "[#7] Resolved: Login"}
    created = {"kind": "ticket_created", "subject": "[#7] We received your request"}
    assert headline([reply, resolved]) is resolved
    assert headline([created, reply]) is created
    assert heading("[#7] Resolved: Login", 7) == "Resolved: Login"
    assert heading("Resolved: Login", 7) == "Resolved: Login"
