"""Workflow definitions and a ticket's workflow progress, without I/O."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from dotmac.ticketing.domain.enums import TicketCategory, TicketChannel, TicketPriority
from dotmac.ticketing.domain.errors import CommandRefused
from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workflow import (
    RetryPolicy,
    TicketWorkflow,
    WorkflowContext,
    WorkflowResult,
    WorkflowStep,
    following_step,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROBOT = Provenance("acme", Actor.automation("workflow"))
AGENT = Provenance("acme", Actor("agent-1", "agent"))
STEPS = ["validate", "categorize", "assign", "acknowledge"]


def ticket() -> Ticket:
    return Ticket.create(
        ticket_id=uuid4(),
        number=1,
        title="Cannot log in",
        description="",
        category=TicketCategory.GENERAL,
        priority=TicketPriority.NORMAL,
        channel=TicketChannel.WEB,
        customer_id="cust-1",
        customer_email=None,
        tags=[],
        custom_fields={},
        provenance=Provenance("acme", Actor("cust-1", "customer")),
        at=T0,
    )


def complete(t: Ticket, step: str, attempt: int | None = 1, **kw: Any) -> bool:
    fields: dict[str, Any] = {
        "data": {},
        "message": "",
        "next_step": None,
        "skipped": [],
        "actions": [],
    }
    fields.update(kw)
    return t.complete_workflow_step(
        step, attempt=attempt, provenance=ROBOT, at=T0, **fields
    )


def names(t: Ticket) -> list[str]:
    return [type(e).__name__ for e in t.collect_events()]


# -- definitions -----------------------------------------------------------


def test_retries_back_off_then_give_up() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_seconds=10, multiplier=3)
    assert policy.retry_at(1, T0) == T0 + timedelta(seconds=10)
    assert policy.retry_at(2, T0) == T0 + timedelta(seconds=30)
    assert policy.retry_at(3, T0) is None
    capped = RetryPolicy(max_attempts=10, backoff_seconds=60, max_backoff_seconds=90)
    assert capped.retry_at(5, T0) == T0 + timedelta(seconds=90)


def result(**kw: Any) -> WorkflowResult:
    return WorkflowResult(success=True, step_name="validate", **kw)


def test_the_next_step_follows_in_order_unless_skipped_or_named() -> None:
    assert following_step(STEPS, "validate", result()) == ("categorize", [])
    assert following_step(STEPS, "validate", result(skip=["categorize"])) == (
        "assign",
        ["categorize"],
    )
    assert following_step(STEPS, "validate", result(next_step="acknowledge")) == (
        "acknowledge",
        ["categorize", "assign"],
    )
    assert following_step(STEPS, "assign", result(next_step="validate")) == (
        "validate",
        [],
    )
    assert following_step(STEPS, "acknowledge", result()) == (None, [])
    with pytest.raises(ValueError, match="no step"):
        following_step(STEPS, "validate", result(next_step="nowhere"))


class Greeting(TicketWorkflow):
    def __init__(self) -> None:
        super().__init__(workflow_type="greeting", steps=["hello", WorkflowStep("bye")])

    async def step_hello(self) -> WorkflowResult:
        title = self.context.ticket["title"]
        return WorkflowResult(True, "hello", data={"title": title})


class NoIntegrations:
    async def call(self, name: str, payload: Any, *, idempotency_key: str) -> Any:
        raise AssertionError("not called")


def context(**ticket: Any) -> WorkflowContext:
    return WorkflowContext(
        ticket={"id": "t-1", **ticket},
        settings={},
        results={},
        attempt=1,
        now=T0,
        integrations=NoIntegrations(),
    )


def test_steps_run_their_step_methods_and_a_missing_one_fails_for_good() -> None:
    flow = Greeting().bind(context(title="Hi"))
    assert flow.step_names == ["hello", "bye"]
    done = asyncio.run(flow.execute_step("hello"))
    assert (done.success, done.data) == (True, {"title": "Hi"})
    missing = asyncio.run(flow.execute_step("bye"))
    assert (missing.success, missing.retryable) == (False, False)
    assert "step_bye" in missing.message


def test_a_workflow_needs_distinct_steps_and_a_context() -> None:
    with pytest.raises(ValueError, match="repeat"):
        TicketWorkflow("twice", ["a", "a"])
    with pytest.raises(ValueError, match="at least one"):
        TicketWorkflow("none", [])
    with pytest.raises(RuntimeError, match="bind"):
        asyncio.run(Greeting().execute_step("hello"))


def test_the_idempotency_key_names_the_ticket_step_and_visit() -> None:
    assert context().idempotency_key("lookup") == "t-1:lookup:1"


# -- progress on the ticket --------------------------------------------------


def test_a_workflow_starts_once_and_completes_step_by_step() -> None:
    t = ticket()
    t.collect_events()
    assert t.start_workflow("customer_support", STEPS, provenance=ROBOT, at=T0)
    assert not t.start_workflow("billing", STEPS, provenance=ROBOT, at=T0)
    assert complete(t, "validate", data={"ok": True}, next_step="categorize")
    assert complete(t, "categorize", next_step="acknowledge", skipped=["assign"])
    assert complete(t, "acknowledge")
    assert names(t) == [
        "WorkflowStarted",
        "WorkflowStepCompleted",
        "WorkflowStepCompleted",
        "WorkflowStepCompleted",
        "WorkflowCompleted",
    ]
    assert t.workflow is not None
    assert t.workflow.status == "completed"
    assert list(t.workflow.skipped) == ["assign"]
    assert t.workflow.results["validate"].data == {"ok": True}


def test_recording_a_step_twice_or_for_an_old_run_changes_nothing() -> None:
    t = ticket()
    t.start_workflow("customer_support", STEPS, provenance=ROBOT, at=T0)
    assert complete(t, "validate", next_step="categorize")
    t.collect_events()
    assert not complete(t, "validate", next_step="categorize")  # again
    assert not complete(t, "categorize", attempt=2, next_step="assign")  # stale
    assert names(t) == []


def test_a_failed_step_is_retried_when_due_and_by_a_person() -> None:
    t = ticket()
    t.start_workflow("billing", ["lookup", "apply"], provenance=ROBOT, at=T0)
    later = T0 + timedelta(minutes=5)
    assert t.fail_workflow_step(
        "lookup", attempt=1, error="down", retry_at=later, provenance=ROBOT, at=T0
    )
    assert t.workflow_wake_time() == later
    assert not t.workflow_step_due(provenance=ROBOT, at=later - timedelta(seconds=1))
    assert t.workflow_step_due(provenance=ROBOT, at=later)
    assert t.workflow is not None
    assert (t.workflow.status, t.workflow.attempt) == ("running", 2)
    assert not complete(t, "lookup", attempt=1)  # the first run's late record
    assert t.fail_workflow_step(
        "lookup", attempt=2, error="down", retry_at=None, provenance=ROBOT, at=later
    )
    assert t.workflow_wake_time() is None
    assert not t.workflow_step_due(provenance=ROBOT, at=later + timedelta(days=9))
    t.retry_workflow(provenance=AGENT, at=later)
    assert (t.workflow.status, t.workflow.attempt) == ("running", 3)
    with pytest.raises(CommandRefused, match="nothing failed"):
        t.retry_workflow(provenance=AGENT, at=later)


def test_a_waiting_step_wakes_or_is_completed_by_a_person() -> None:
    t = ticket()
    t.start_workflow("technical_support", ["ask", "verify"], provenance=ROBOT, at=T0)
    wake = T0 + timedelta(hours=72)
    wait = {"message": "waiting", "data": {}, "wake_at": wake}
    assert t.wait_on_workflow_step("ask", attempt=1, provenance=ROBOT, at=T0, **wait)
    # Waiting on the same thing again records nothing.
    assert not t.wait_on_workflow_step(
        "ask", attempt=1, provenance=ROBOT, at=T0, **wait
    )
    with pytest.raises(CommandRefused, match="not waiting on verify"):
        t.complete_waiting_step("verify", data={}, provenance=AGENT, at=T0)
    assert t.workflow_wake_time() == wake
    t.complete_waiting_step("ask", data={"logs": "ok"}, provenance=AGENT, at=T0)
    assert t.workflow is not None
    assert t.workflow.current == "verify"
    assert t.workflow.results["ask"].completed_by["id"] == "agent-1"


def test_closing_the_ticket_cancels_an_unfinished_workflow_only() -> None:
    waiting = ticket()
    waiting.start_workflow("billing", ["lookup", "apply"], provenance=ROBOT, at=T0)
    waiting.resolve(resolution="", resolution_code="gone", provenance=AGENT, at=T0)
    waiting.collect_events()
    waiting.close(provenance=AGENT, at=T0)
    assert names(waiting)[-1] == "WorkflowCancelled"
    assert waiting.workflow is not None
    assert waiting.workflow.status == "cancelled"
    assert waiting.workflow.cancelled_step == "lookup"
    assert waiting.workflow_wake_time() is None

    done = ticket()
    done.start_workflow("billing", ["lookup"], provenance=ROBOT, at=T0)
    assert complete(done, "lookup")
    done.resolve(resolution="", resolution_code="ok", provenance=AGENT, at=T0)
    done.collect_events()
    done.close(provenance=AGENT, at=T0)
    assert "WorkflowCancelled" not in names(done)
