"""Merges in the domain: what is carried over, and when a merge is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import Application, project_aggregate
from eventsourcing.persistence import StoredEvent

from dotmac.ticketing.domain.limits import COMMENT_MAX
from dotmac.ticketing.domain.merging import (
    TICKET_MERGE,
    CrossCustomerMerge,
    MergedSource,
    MergePolicy,
    carried_comments,
)
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.ticket import Ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Provenance("acme", Actor("agent-1", "agent"), "req-1")


def customer(customer_id: str = "cust-1") -> Provenance:
    return Provenance("acme", Actor(customer_id, "customer"))


def open_ticket(number: int, customer_id: str = "cust-1", **fields: Any) -> Ticket:
    values: dict[str, Any] = {
        "ticket_id": uuid4(),
        "number": number,
        "title": f"Printer {number}",
        "description": "",
        "category": "general",
        "priority": "normal",
        "channel": "web",
        "customer_id": customer_id,
        "customer_email": None,
        "tags": [],
        "custom_fields": {},
        "provenance": customer(customer_id),
        "at": T0,
        **fields,
    }
    return Ticket.create(**values)


def source_of(**fields: Any) -> MergedSource:
    values: dict[str, Any] = {
        "number": 12,
        "title": "Printer on fire",
        "description": "It smokes.\n\nSince Monday.",
        "opened_at": T0,
        "opened_by": {"id": "cust-1", "role": "customer"},
        "comments": [
            {
                "body": "Any news?",
                "internal": False,
                "author_id": "cust-1",
                "author_role": "customer",
                "created_at": T0 + timedelta(hours=1),
            },
            {
                "body": "Call the vendor",
                "internal": True,
                "author_id": "agent-1",
                "author_role": "agent",
                "created_at": (T0 + timedelta(hours=2)).isoformat(),
            },
        ],
        "attachments": [
            {
                "id": "att-1",
                "filename": "smoke.jpg",
                "size": 2048,
                "content_type": "image/jpeg",
            }
        ],
        **fields,
    }
    return MergedSource(**values)


# -- what is carried ------------------------------------------------------------


def test_public_text_stays_public_and_internal_notes_stay_internal() -> None:
    public, internal = carried_comments(source_of(), cross_customer=False)

    assert public.internal is False
    assert public.body == (
        'Merged from request #12 "Printer on fire":\n\n'
        "Description by cust-1 (customer) at 2026-03-02 09:00 UTC:\n"
        "> It smokes.\n>\n> Since Monday.\n\n"
        "Comment by cust-1 (customer) at 2026-03-02 10:00 UTC:\n"
        "> Any news?\n\n"
        "Attachments (kept on #12):\n"
        "- smoke.jpg (2048 bytes, image/jpeg), id att-1"
    )
    assert internal.internal is True
    assert internal.body == (
        'Internal notes merged from ticket #12 "Printer on fire":\n\n'
        "Internal note by agent-1 (agent) at 2026-03-02 11:00 UTC:\n"
        "> Call the vendor"
    )


def test_across_customers_everything_carried_is_one_internal_note() -> None:
    (note,) = carried_comments(source_of(), cross_customer=True)
    assert note.internal is True
    assert "belongs to another customer" in note.body
    for text in ("It smokes.", "Any news?", "Call the vendor", "smoke.jpg"):
        assert text in note.body


def test_an_empty_source_carries_nothing() -> None:
    empty = source_of(description="  ", comments=[], attachments=[])
    assert carried_comments(empty, cross_customer=False) == []
    # Internal notes only: no public comment.
    notes_only = source_of(
        description="", attachments=[], comments=source_of().comments[1:]
    )
    (note,) = carried_comments(notes_only, cross_customer=False)
    assert note.internal is True


def test_a_long_conversation_is_cut_to_one_comment_saying_so() -> None:
    long = source_of(description="x" * COMMENT_MAX)
    public, _ = carried_comments(long, cross_customer=False)
    assert len(public.body) == COMMENT_MAX
    assert public.body.endswith("[… cut to fit one comment: the full text is on #12]")


# -- when a merge crosses customers ---------------------------------------------


def test_a_merge_across_customers_needs_a_confirmation() -> None:
    policy = MergePolicy()
    same = {"source_customer_id": "a", "target_customer_id": "a", "status": "open"}
    cross = {"source_customer_id": "a", "target_customer_id": "b", "status": "open"}
    assert policy.check(**same, confirmed=False) is False
    with pytest.raises(CrossCustomerMerge) as refused:
        policy.check(**cross, confirmed=False)
    assert refused.value.confirmable is True
    assert "confirm_cross_customer" in str(refused.value)
    assert policy.check(**cross, confirmed=True) is True


def test_a_tenant_may_refuse_merges_across_customers_altogether() -> None:
    policy = MergePolicy.from_config(parse({"merges": {"cross_customer": "refuse"}}))
    with pytest.raises(CrossCustomerMerge) as refused:
        policy.check(
            source_customer_id="a",
            target_customer_id="b",
            status="open",
            confirmed=True,
        )
    assert refused.value.confirmable is False
    # Settings stored before the section existed: confirm.
    assert MergePolicy.from_config(parse({})) == MergePolicy(cross_customer="confirm")


# -- the aggregate ----------------------------------------------------------------


def merged_pair(**merge: Any) -> tuple[Ticket, Ticket]:
    target = open_ticket(1)
    target.assign(assignee_id="agent-2", provenance=AGENT, at=T0)
    source = open_ticket(2, description="It smokes.", **merge.pop("source", {}))
    source.add_comment(
        "Any news?", internal=False, provenance=customer(source.customer_id), at=T0
    )
    source.merge_into(target, provenance=AGENT, at=T0 + timedelta(hours=1), **merge)
    return source, target


def test_a_merge_links_both_ways_and_carries_the_conversation() -> None:
    source, target = merged_pair()

    assert source.status == "closed"
    assert source.merged_into == str(target.id)
    assert source.links == [{"ticket_id": str(target.id), "relation": "merged_into"}]
    assert target.links == [{"ticket_id": str(source.id), "relation": "merged_from"}]
    merged = next(
        e for e in source.collect_events() if isinstance(e, Ticket.TicketMerged)
    )
    assert (merged.into_number, merged.into_assignee_id, merged.cross_customer) == (
        1,
        "agent-2",
        False,
    )
    (carried,) = [c for c in target.comments if c["author_id"] == TICKET_MERGE]
    assert carried["internal"] is False
    assert "> It smokes." in carried["body"]
    assert "> Any news?" in carried["body"]
    # Carried, not answered: the target still owes its first response.
    assert target.first_response_at is None
    event = next(
        e for e in target.collect_events() if isinstance(e, Ticket.CommentAdded)
    )
    assert event.merged_from == str(source.id)
    assert event.actor == Actor.automation(TICKET_MERGE).as_dict()
    assert event.correlation_id == "req-1"
    assert event.causation_id == f"{source.id}:{merged.originator_version}"


def test_a_confirmed_merge_across_customers_carries_internal_notes_only() -> None:
    _, target = merged_pair(
        source={"customer_id": "cust-2"}, confirm_cross_customer=True
    )
    carried = [c for c in target.comments if c["author_id"] == TICKET_MERGE]
    assert [c["internal"] for c in carried] == [True]
    assert target.public_comments() == []


def test_an_unconfirmed_merge_across_customers_records_nothing() -> None:
    target = open_ticket(1)
    source = open_ticket(2, customer_id="cust-2")
    versions = (source.version, target.version)
    with pytest.raises(CrossCustomerMerge):
        source.merge_into(target, provenance=AGENT, at=T0)
    assert (source.version, target.version) == versions
    assert source.status == target.status == "new"


def test_replay_rebuilds_both_merged_tickets() -> None:
    source, target = merged_pair()
    for ticket in (source, target):
        events = list(ticket.collect_events())
        assert vars(project_aggregate(None, events)) == vars(ticket)


def older(event: Ticket.Event, *dropped: str) -> Ticket.Event:
    """The event as stored by an earlier version, without ``dropped``."""
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}
    )
    stored = app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    for name in dropped:
        del state[name]
    loaded = app.mapper.to_domain_event(
        StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state).encode(),
        )
    )
    assert isinstance(loaded, Ticket.Event)
    return loaded


def test_merge_events_stored_before_the_new_fields_still_load() -> None:
    source, target = merged_pair()
    merged = next(
        e for e in source.pending_events if isinstance(e, Ticket.TicketMerged)
    )
    old = older(merged, "into_number", "into_assignee_id", "cross_customer")
    assert isinstance(old, Ticket.TicketMerged)
    assert (old.into_ticket_id, old.into_number) == (str(target.id), None)
    assert (old.into_assignee_id, old.cross_customer) == (None, False)
    comment = next(
        e for e in target.pending_events if isinstance(e, Ticket.CommentAdded)
    )
    old_comment = older(comment, "merged_from")
    assert isinstance(old_comment, Ticket.CommentAdded)
    assert old_comment.merged_from is None
