"""Tickets driven through every command, so that every event type occurs.

Used by the CloudEvent and AsyncAPI tests (every event the domain can emit
must convert and validate) and by the relay tests (every type travels
through the real store and broker). A test checks that the events here
cover every event class of ``Ticket``: a new event type needs a line here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from dotmac.ticketing.domain.enums import (
    LinkRelation,
    TicketCategory,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TimeEntryType,
)
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.rules import TicketFacts
from dotmac.ticketing.domain.sla import SLAPolicy, policy_for
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document
from dotmac.ticketing.domain.ticket import Ticket

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def sample_policy() -> SLAPolicy:
    """The default targets on a Berlin office calendar."""
    document = default_settings_document()
    document["business_hours"] = {
        "timezone": "Europe/Berlin",
        "week": {
            day: ["08:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")
        },
        "holidays": ["2026-12-25"],
    }
    return policy_for(parse(document), 3, SAMPLE_FACTS)


SAMPLE_FACTS = TicketFacts(
    category="technical_support",
    priority="normal",
    channel="email",
    tags=("printer",),
    custom_fields={},
    title="Printer",
    description="",
)


def _create(
    tenant: str,
    number: int,
    at: datetime,
    by: Provenance,
    policy: SLAPolicy | None = None,
) -> Ticket:
    return Ticket.create(
        ticket_id=uuid4(),
        number=number,
        title=f"Printer {number} is on fire",
        description="Smoke, then silence.  Ünïcödé and\nnew lines survive.",
        category=TicketCategory.TECHNICAL_SUPPORT,
        priority=TicketPriority.NORMAL,
        channel=TicketChannel.EMAIL,
        customer_id="customer-1",
        customer_email="customer@example.com",
        tags=["printer", "fire"],
        custom_fields={"floor": 3, "vip": True, "ratio": 0.5, "note": None},
        provenance=by,
        at=at,
        sla_policy=policy,
    )


def tickets_with_every_event(tenant: str = "tenant-samples") -> list[Ticket]:
    """Three tickets with pending (unsaved) events of every event type."""
    agent = Provenance(tenant, Actor("agent-1", "agent"), correlation_id="req-1")
    customer = Provenance(tenant, Actor("customer-1", "customer"))
    rules = Provenance(
        tenant, Actor.automation("rules"), correlation_id="req-2", causation_id="x:1"
    )
    clock = iter(START + timedelta(minutes=n) for n in range(1000))

    a = _create(tenant, 1, next(clock), customer)
    a.update(
        provenance=agent,
        at=next(clock),
        title="Printer 1 is smoking",
        tags=["printer"],
        custom_fields={"floor": 4},
    )
    a.categorize(
        TicketCategory.SERVICE_REQUEST, provenance=rules, at=next(clock), confidence=0.8
    )
    a.change_priority(
        TicketPriority.URGENT, provenance=agent, at=next(clock), reason="fire"
    )
    a.assign(provenance=agent, at=next(clock), assignee_id="agent-1", team="tier-1")
    a.add_comment("On my way.", internal=False, provenance=agent, at=next(clock))
    a.add_comment("Bring a bucket.", internal=True, provenance=agent, at=next(clock))
    a.add_attachment(
        attachment_id="attachment-1",
        filename="photo.jpg",
        content_type="image/jpeg",
        size=1234,
        sha256="ab" * 32,
        provenance=customer,
        at=next(clock),
    )
    a.change_status(
        TicketStatus.PENDING, provenance=agent, at=next(clock), reason="ask"
    )
    a.unassign(provenance=agent, at=next(clock))
    a.escalate(reason="still burning", team="tier-2", provenance=rules, at=next(clock))
    a.resolve(
        resolution="Extinguished.",
        resolution_code="fixed",
        provenance=agent,
        at=next(clock),
    )
    a.reopen(reason="It is back.", provenance=customer, at=next(clock))
    wrong = a.log_time(
        minutes=45,
        billable=True,
        work_type=TimeEntryType.ONSITE,
        note="Carried the bucket up.",
        provenance=agent,
        at=next(clock),
    )
    a.remove_time_entry(wrong, provenance=agent, at=next(clock))

    b = _create(tenant, 2, next(clock), customer)
    b.link(a.id, LinkRelation.RELATES_TO, provenance=agent, at=next(clock))
    b.merge_into(a, provenance=agent, at=next(clock))  # b merged+closed, a linked

    c = _create(tenant, 3, next(clock), customer)
    c.resolve(
        resolution="", resolution_code="duplicate", provenance=agent, at=next(clock)
    )
    c.rate_satisfaction(4, comment="Quick.", provenance=customer, at=next(clock))
    c.close(provenance=agent, at=next(clock))
    privacy = Provenance(tenant, Actor.automation("privacy"))
    c.record_erasure(
        provenance=privacy, at=next(clock), request_id=str(uuid4()), reason="request"
    )

    # SLA clocks and escalation approvals.
    d = _create(tenant, 4, next(clock), customer, sample_policy())
    d.assign(
        provenance=rules,
        at=next(clock),
        team="tier-1",
        assignee_id="agent-2",
        reason={"rule": "printers", "strategy": "least_loaded", "picked": "agent-2"},
    )
    d.change_priority(TicketPriority.HIGH, provenance=agent, at=next(clock))
    d.change_status(TicketStatus.PENDING, provenance=agent, at=next(clock))
    d.change_status(TicketStatus.IN_PROGRESS, provenance=agent, at=next(clock))
    d.check_sla(provenance=rules, at=START + timedelta(days=30))
    d.add_comment("Looking.", internal=False, provenance=agent, at=next(clock))
    d.request_escalation(
        level=1,
        team="tier-2",
        rule="late",
        reason="rule late: 1 h since creation",
        provenance=rules,
        at=next(clock),
    )
    d.approve_escalation(provenance=agent, at=next(clock), comment="go")
    d.request_escalation(
        level=2,
        team="tier-3",
        rule="later",
        reason="rule later: 2 h since creation",
        provenance=rules,
        at=next(clock),
    )
    d.reject_escalation(provenance=agent, at=next(clock), comment="no")

    # A workflow: a step done, one waiting, one failing and retried.
    steps = ["collect", "analyse", "report"]
    d.start_workflow("technical_support", steps, provenance=rules, at=next(clock))
    d.complete_workflow_step(
        "collect",
        attempt=1,
        data={"asked": True},
        message="asked for logs",
        next_step="analyse",
        skipped=[],
        actions=[{"kind": "comment", "body": "Logs, please.", "internal": False}],
        provenance=rules,
        at=next(clock),
    )
    d.fail_workflow_step(
        "analyse",
        attempt=1,
        error="diagnostics is down",
        retry_at=START + timedelta(hours=2),
        provenance=rules,
        at=next(clock),
    )
    d.workflow_step_due(provenance=rules, at=START + timedelta(hours=3))
    d.wait_on_workflow_step(
        "analyse",
        attempt=2,
        message="waiting for the customer",
        data={},
        wake_at=START + timedelta(days=3),
        provenance=rules,
        at=next(clock),
    )
    d.complete_waiting_step(
        "analyse", data={"by": "hand"}, provenance=agent, at=next(clock)
    )
    d.complete_workflow_step(
        "report",
        attempt=1,
        data={},
        message="",
        next_step=None,
        skipped=[],
        actions=[],
        provenance=rules,
        at=next(clock),
    )
    # A workflow left unfinished when its ticket closes is cancelled.
    e = _create(tenant, 5, next(clock), customer)
    e.start_workflow("billing", ["lookup", "apply"], provenance=rules, at=next(clock))
    e.resolve(resolution="", resolution_code="gone", provenance=agent, at=next(clock))
    e.close(provenance=agent, at=next(clock))
    return [a, b, c, d, e]


def every_event(tenant: str = "tenant-samples") -> list[Ticket.Event]:
    """The events of :func:`tickets_with_every_event`, collected."""
    events: list[Ticket.Event] = []
    for ticket in tickets_with_every_event(tenant):
        events.extend(ticket.collect_events())  # type: ignore[arg-type]
    return events
