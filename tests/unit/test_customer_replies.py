"""A customer's answer ends a wait on them: policy and aggregate (no database).

The tickets here run on the default settings (24x7 calendar): a ``high``
ticket owes its resolution 1440 minutes after creation, and the resolution
clock pauses while the ticket is ``pending``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import Application, project_aggregate
from eventsourcing.persistence import StoredEvent

from dotmac.ticketing.domain.customer_replies import (
    CUSTOMER_REPLY,
    CustomerReplyPolicy,
    is_customer_answer,
)
from dotmac.ticketing.domain.enums import TicketStatus
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import SLAPolicy, policy_for
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document
from dotmac.ticketing.domain.ticket import Ticket

TENANT = "acme"
AGENT = Provenance(TENANT, Actor("agent-1", "agent"), correlation_id="req-agent")
CUSTOMER = Provenance(TENANT, Actor("cust-1", "customer"), correlation_id="req-cust")
MONDAY_9 = datetime(2026, 3, 2, 9, tzinfo=UTC)
PENDING_AT = MONDAY_9 + timedelta(hours=1)
ANSWERED_AT = MONDAY_9 + timedelta(days=1, hours=1)
ON_HOLD_TOO = CustomerReplyPolicy(reopen_pending=True, reopen_on_hold=True)
NEVER = CustomerReplyPolicy(
    reopen_pending=False, reopen_on_hold=False, reopen_resolved=False
)


def policy(pause_on: dict[str, list[str]] | None = None) -> SLAPolicy:
    document = default_settings_document()
    if pause_on is not None:
        document["sla_config"]["pause_on"] = pause_on
    facts = TicketFacts("general", "high", "email", (), {}, "VPN down", "")
    return policy_for(parse(document), 1, facts)


def waiting_ticket(
    status: str = "pending", sla_policy: SLAPolicy | None = None
) -> Ticket:
    """Answered by an agent at 09:30, put in ``status`` at 10:00."""
    ticket = Ticket.create(
        ticket_id=uuid4(),
        number=1,
        title="VPN down",
        description="",
        category="general",  # type: ignore[arg-type]
        priority="high",  # type: ignore[arg-type]
        channel="email",  # type: ignore[arg-type]
        customer_id="cust-1",
        customer_email="c@example.com",
        tags=[],
        custom_fields={},
        provenance=AGENT,
        at=MONDAY_9,
        sla_policy=sla_policy or policy(),
    )
    ticket.add_comment(
        "Which client?",
        internal=False,
        provenance=AGENT,
        at=MONDAY_9 + timedelta(minutes=30),
    )
    ticket.change_status(
        TicketStatus(status), provenance=AGENT, at=PENDING_AT, reason="asked"
    )
    return ticket


def new_events(ticket: Ticket, since: int) -> list[Any]:
    return list(ticket.pending_events[since:])


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


# -- the policy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replies", "status", "after"),
    [
        (CustomerReplyPolicy(), "pending", "open"),
        (CustomerReplyPolicy(), "on_hold", None),
        (ON_HOLD_TOO, "on_hold", "open"),
        (ON_HOLD_TOO, "pending", "open"),
        (NEVER, "pending", None),
        (
            CustomerReplyPolicy(reopen_pending=False, reopen_on_hold=True),
            "pending",
            None,
        ),
        *[
            (ON_HOLD_TOO, status, None)
            for status in ("new", "open", "in_progress", "resolved", "closed")
        ],
    ],
)
def test_an_answer_ends_only_the_waits_the_policy_names(
    replies: CustomerReplyPolicy, status: str, after: str | None
) -> None:
    assert replies.status_after_answer(TicketStatus(status)) == after


def test_the_policy_comes_from_the_settings_with_defaults_for_older_documents() -> None:
    document = default_settings_document()
    assert document["customer_replies"] == {
        "reopen_pending": True,
        "reopen_on_hold": False,
        "reopen_resolved": True,
        "reopen_resolved_within_days": 7,
    }
    assert CustomerReplyPolicy.from_config(parse(document)) == CustomerReplyPolicy()
    older = {k: v for k, v in document.items() if k != "customer_replies"}
    assert CustomerReplyPolicy.from_config(parse(older)) == CustomerReplyPolicy()
    document["customer_replies"] = {"reopen_pending": False, "reopen_on_hold": True}
    assert CustomerReplyPolicy.from_config(parse(document)) == CustomerReplyPolicy(
        reopen_pending=False, reopen_on_hold=True
    )


@pytest.mark.parametrize(
    ("actor", "answers"),
    [
        (Actor("cust-1", "customer"), True),
        (Actor("cust-2", "customer"), False),
        (Actor("cust-1", "agent"), False),
        (Actor("cust-1", "customer", kind="automation"), False),
        (Actor.automation("cust-1"), False),
    ],
)
def test_only_the_tickets_customer_answers(actor: Actor, answers: bool) -> None:
    assert is_customer_answer(actor, "cust-1") is answers


# -- on the ticket ---------------------------------------------------------------


def test_the_customers_comment_reopens_a_pending_ticket_and_resumes_the_clock() -> None:
    ticket = waiting_ticket()
    paused = ticket.sla_report(PENDING_AT)["resolution"]
    assert (paused["state"], paused["due_at"]) == ("paused", None)
    mark = len(ticket.pending_events)

    comment_id = ticket.add_comment(
        "Version 5.2", internal=False, provenance=CUSTOMER, at=ANSWERED_AT
    )

    events = new_events(ticket, mark)
    # The answer, the reopen it caused and the clock it resumed; then the
    # answer starts the next-reply clock (the response target by default).
    assert names(events) == [
        "CommentAdded",
        "StatusChanged",
        "SLAResumed",
        "SLAStarted",
    ]
    comment, changed, resumed, started = events
    assert ticket.status == TicketStatus.OPEN
    assert (changed.status, changed.previous_status) == ("open", "pending")
    assert changed.actor == {
        "id": CUSTOMER_REPLY,
        "role": "automation",
        "kind": "automation",
    }
    assert changed.cause == {
        "event": "CommentAdded",
        "comment_id": comment_id,
        "version": comment.originator_version,
        "customer_id": "cust-1",
    }
    assert changed.reason == "the customer answered"
    # Caused by the comment (its CloudEvent id), within the customer's request.
    assert changed.causation_id == f"{ticket.id}:{comment.originator_version}"
    assert changed.correlation_id == "req-cust"
    assert changed.timestamp == ANSWERED_AT
    # 1440 minutes from Monday 09:00, pushed out by the 24 hours it waited.
    expected_due = MONDAY_9 + timedelta(minutes=1440) + timedelta(hours=24)
    assert (resumed.target, resumed.due_at) == ("resolution", expected_due)
    assert resumed.paused_minutes == 24 * 60
    assert resumed.actor["id"] == CUSTOMER_REPLY
    report = ticket.sla_report(ANSWERED_AT)["resolution"]
    assert (report["state"], report["due_at"]) == ("running", expected_due)
    assert report["pauses"] == [{"start": PENDING_AT, "end": ANSWERED_AT}]
    assert started.target == "next_reply"
    next_reply = ticket.sla_report(ANSWERED_AT)["next_reply"]
    assert (next_reply["state"], next_reply["due_at"]) == (
        "running",
        ANSWERED_AT + timedelta(minutes=240),
    )
    # The customer acted; the automation that followed is not activity.
    assert ticket.last_activity_at == ANSWERED_AT


def test_the_customers_attachment_reopens_a_pending_ticket_too() -> None:
    ticket = waiting_ticket()
    mark = len(ticket.pending_events)
    ticket.add_attachment(
        attachment_id="att-1",
        filename="client.log",
        content_type="text/plain",
        size=10,
        sha256="0" * 64,
        provenance=CUSTOMER,
        at=ANSWERED_AT,
    )
    events = new_events(ticket, mark)
    assert names(events) == ["AttachmentAdded", "StatusChanged", "SLAResumed"]
    attached, changed, _ = events
    assert ticket.status == TicketStatus.OPEN
    assert changed.cause == {
        "event": "AttachmentAdded",
        "attachment_id": "att-1",
        "version": attached.originator_version,
        "customer_id": "cust-1",
    }
    assert changed.causation_id == f"{ticket.id}:{attached.originator_version}"
    assert ticket.sla_report(ANSWERED_AT)["resolution"]["state"] == "running"


def test_on_hold_is_left_alone_unless_the_tenant_asks() -> None:
    held = waiting_ticket("on_hold")
    mark = len(held.pending_events)
    held.add_comment("Any news?", internal=False, provenance=CUSTOMER, at=ANSWERED_AT)
    assert names(new_events(held, mark)) == ["CommentAdded", "SLAStarted"]
    assert held.status == TicketStatus.ON_HOLD


def test_on_hold_reopens_when_the_tenant_asks_and_its_paused_clock_resumes() -> None:
    held = waiting_ticket(
        "on_hold", sla_policy=policy({"resolution": ["pending", "on_hold"]})
    )
    assert held.sla_report(PENDING_AT)["resolution"]["state"] == "paused"
    mark = len(held.pending_events)
    held.add_comment(
        "Any news?",
        internal=False,
        provenance=CUSTOMER,
        at=ANSWERED_AT,
        replies=ON_HOLD_TOO,
    )
    events = new_events(held, mark)
    assert names(events) == [
        "CommentAdded",
        "StatusChanged",
        "SLAResumed",
        "SLAStarted",
    ]
    assert (events[1].status, events[1].previous_status) == ("open", "on_hold")
    assert held.sla_report(ANSWERED_AT)["resolution"]["due_at"] == (
        MONDAY_9 + timedelta(minutes=1440) + timedelta(hours=24)
    )


def test_a_tenant_that_turned_it_off_keeps_the_ticket_pending() -> None:
    ticket = waiting_ticket()
    mark = len(ticket.pending_events)
    ticket.add_comment(
        "Here", internal=False, provenance=CUSTOMER, at=ANSWERED_AT, replies=NEVER
    )
    ticket.add_attachment(
        attachment_id="att-1",
        filename="client.log",
        content_type="text/plain",
        size=10,
        sha256="0" * 64,
        provenance=CUSTOMER,
        at=ANSWERED_AT,
        replies=NEVER,
    )
    assert names(new_events(ticket, mark)) == [
        "CommentAdded",
        "SLAStarted",  # next reply: the customer still waits on an answer
        "AttachmentAdded",
    ]
    assert ticket.status == TicketStatus.PENDING
    assert ticket.sla_report(ANSWERED_AT)["resolution"]["state"] == "paused"


@pytest.mark.parametrize(
    "who",
    [AGENT, Provenance(TENANT, Actor.automation("workflow:customer_support"))],
)
def test_staff_and_automations_do_not_end_the_wait(who: Provenance) -> None:
    ticket = waiting_ticket()
    ticket.add_comment("Still waiting", internal=False, provenance=who, at=ANSWERED_AT)
    ticket.add_comment("Chased", internal=True, provenance=AGENT, at=ANSWERED_AT)
    assert ticket.status == TicketStatus.PENDING


def test_a_resolved_ticket_stays_resolved_when_the_tenant_says_so() -> None:
    ticket = waiting_ticket()
    ticket.resolve(
        resolution="Fixed", resolution_code="fixed", provenance=AGENT, at=ANSWERED_AT
    )
    ticket.add_comment(
        "Thanks!", internal=False, provenance=CUSTOMER, at=ANSWERED_AT, replies=NEVER
    )
    assert ticket.status == TicketStatus.RESOLVED


def test_the_customers_answer_reopens_a_recently_resolved_ticket() -> None:
    ticket = waiting_ticket()
    ticket.resolve(
        resolution="Fixed", resolution_code="fixed", provenance=AGENT, at=ANSWERED_AT
    )
    later = ANSWERED_AT + timedelta(days=7)
    ticket.add_comment("Still broken", internal=False, provenance=CUSTOMER, at=later)
    assert (ticket.status, ticket.reopen_count) == (TicketStatus.OPEN, 1)
    events = list(ticket.collect_events())
    reopened = next(e for e in events if type(e).__name__ == "TicketReopened")
    assert reopened.actor == {
        "id": "customer-reply",
        "role": "automation",
        "kind": "automation",
    }
    assert reopened.causation_id == f"{ticket.id}:{reopened.originator_version - 1}"
    # Past the window, the answer belongs on a follow-up (the service's).
    policy = CustomerReplyPolicy()
    assert policy.reopens(ANSWERED_AT, later)
    assert not policy.reopens(ANSWERED_AT, later + timedelta(seconds=1))
    assert policy.needs_follow_up(
        TicketStatus.RESOLVED, ANSWERED_AT, later + timedelta(days=1)
    )
    assert policy.needs_follow_up(TicketStatus.CLOSED, ANSWERED_AT, ANSWERED_AT)
    assert not policy.needs_follow_up(TicketStatus.OPEN, None, ANSWERED_AT)
    assert not NEVER.needs_follow_up(
        TicketStatus.RESOLVED, ANSWERED_AT, later + timedelta(days=30)
    )


def test_replay_rebuilds_the_reopened_ticket() -> None:
    ticket = waiting_ticket()
    ticket.add_comment("Here", internal=False, provenance=CUSTOMER, at=ANSWERED_AT)
    replayed = project_aggregate(None, list(ticket.collect_events()))
    assert vars(replayed) == vars(ticket)


def test_a_status_change_stored_before_cause_existed_still_loads() -> None:
    """Events stored by earlier versions have no ``cause``: it reads as None."""
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}
    )
    ticket = waiting_ticket()
    changed = next(
        e for e in ticket.pending_events if isinstance(e, Ticket.StatusChanged)
    )
    stored = app.mapper.to_stored_event(changed)
    state = json.loads(stored.state)
    assert "cause" in state
    del state["cause"]
    older = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )
    loaded = app.mapper.to_domain_event(older)
    assert isinstance(loaded, Ticket.StatusChanged)
    assert loaded.cause is None
    assert loaded.status == "pending"
