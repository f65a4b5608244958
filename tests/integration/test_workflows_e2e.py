"""The built-in workflows end to end: over HTTP, with the workers and real hooks.

One stack for the module: PostgreSQL, the bundled broker, the API (FastAPI's
TestClient over the real app), the relay, the workflow runtime and the
timers on threads, all on one movable clock; local HTTP servers stand in
for the systems the steps call (account lookup, billing history, applying
an adjustment, diagnostics). Each test has its own tenant, and people act
only over HTTP: the customer opens and answers, agents reply and resolve,
a supervisor approves. The workflow is read back from ``GET …/workflow``
and the ticket's history.

A failing system is shown both ways it recovers: the billing system
answers 503 and the timers run the step again at its ``retry_at`` once the
clock gets there; the diagnostics system is down (connection refused) and
an agent retries through the API once it is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from dotmac.ticketing.consumers.kafka.broker import free_port
from dotmac.ticketing.domain.diagnostics import DEFAULT_QUESTIONS, DEVICE
from tests.integration.external_systems import (
    Call,
    ExternalSystem,
    Reply,
    external_system,
)
from tests.integration.workflow_stack import (
    API,
    WorkflowStack,
    events_named,
    fresh_workflow_stack,
    new_tenant,
    step_of,
)

CUSTOMER_SUPPORT_STEPS = [
    "validate_ticket",
    "auto_categorize",
    "assign_team",
    "send_acknowledgment",
    "start_sla_monitoring",
]
TECHNICAL_SUPPORT_STEPS = [
    "collect_diagnostics",
    "analyze",
    "escalate_complex",
    "provide_solution",
    "verify_resolution",
]
BILLING_STEPS = [
    "verify_account",
    "review_billing_history",
    "calculate_adjustment",
    "approve_adjustment",
    "apply_adjustment",
    "confirm_with_customer",
]
TEAMS = [
    {"name": "Support", "agents": [{"id": "agent-1"}]},
    {"name": "Engineering", "agents": [{"id": "eng-1"}]},
    {"name": "Billing", "agents": [{"id": "bill-1"}]},
]


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[WorkflowStack]:
    with fresh_workflow_stack(postgres_server_url) as running:
        yield running


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- customer support ------------------------------------------------------------


def test_customer_support_categorises_assigns_acknowledges_and_records_the_sla(
    stack: WorkflowStack,
) -> None:
    tenant = new_tenant("cs")
    stack.put_settings(
        tenant,
        {
            "teams": TEAMS,
            "assignment_rules": [
                {
                    "name": "account_questions",
                    "conditions": {"category": "account"},
                    "assigned_team": "Support",
                    "strategy": "round_robin",
                }
            ],
            "categorization_rules": [
                {
                    "name": "account_words",
                    "category": "account",
                    "keywords": ["password", "log in"],
                    "confidence": 0.9,
                },
                {
                    "name": "money_words",
                    "category": "billing",
                    "keywords": ["invoice"],
                    "confidence": 0.7,
                },
            ],
        },
    )

    opened = stack.open_ticket(
        tenant,
        title="Cannot log in to my account",
        description="The password reset e-mail never arrives.",
        customer_email="ada@example.test",
    )
    ticket_id = opened["id"]
    # Opened as general: no assignment rule routes that.
    assert (opened["category"], opened["assigned_team"]) == ("general", None)

    flow = stack.wait_until_completed(tenant, ticket_id)

    assert flow["workflow_type"] == "customer_support"
    assert [s["name"] for s in flow["steps"]] == CUSTOMER_SUPPORT_STEPS
    assert {s["state"] for s in flow["steps"]} == {"completed"}
    assert flow["current_step"] is None and flow["completed_at"] is not None
    validate = step_of(flow, "validate_ticket")
    assert validate["data"]["valid"] is True
    # Categorised by the tenant's rule, with its confidence and why.
    categorize = step_of(flow, "auto_categorize")
    assert categorize["data"]["categorized"] is True
    assert categorize["data"]["category"] == "account"
    assert categorize["data"]["match"]["rule"] == "account_words"
    assert categorize["actions"] == [
        {"kind": "categorize", "category": "account", "confidence": 0.9}
    ]
    # Routed by the assignment rule of the new category.
    assign = step_of(flow, "assign_team")
    assert assign["data"]["requested"] is True
    assert assign["actions"] == [{"kind": "assign"}]
    ticket = stack.ticket(tenant, ticket_id)
    assert ticket["category"] == "account"
    assert (ticket["assigned_team"], ticket["assignee_id"]) == ("Support", "agent-1")
    # Acknowledged to the customer, promising the first-response due time.
    sla = stack.client.get(
        f"{API}/tickets/{ticket_id}/sla", headers=stack.agent(tenant)
    ).json()
    first_response_due = sla["first_response"]["due_at"]
    acknowledgment = step_of(flow, "send_acknowledgment")
    assert instant(acknowledgment["data"]["first_response_due_at"]) == instant(
        first_response_due
    )
    public = stack.client.get(
        f"{API}/tickets/{ticket_id}/comments", headers=stack.customer(tenant)
    ).json()
    assert len(public) == 1
    assert f"as ticket #{ticket['number']}" in public[0]["body"]
    assert public[0]["author_role"] == "automation"
    # The SLA clocks the timers watch, recorded in the workflow's history.
    monitoring = step_of(flow, "start_sla_monitoring")
    assert monitoring["data"]["monitored"] is True
    targets = monitoring["data"]["targets"]
    assert set(targets) >= {"first_response", "resolution"}
    assert instant(targets["first_response"]["due_at"]) == instant(first_response_due)

    history = stack.history(tenant, ticket_id)
    assert len(events_named(history, "WorkflowStarted")) == 1
    completed = events_named(history, "WorkflowStepCompleted")
    assert [e["data"]["step"] for e in completed] == CUSTOMER_SUPPORT_STEPS
    assert len(events_named(history, "WorkflowCompleted")) == 1
    assert all(e["actor"]["kind"] == "automation" for e in completed)


# -- technical support -----------------------------------------------------------


def test_technical_support_from_diagnostics_to_closing_after_the_quiet_period(
    stack: WorkflowStack,
) -> None:
    tenant = new_tenant("tech")
    # The diagnostics system is down at first: nothing listens on its port.
    diagnostics_port = free_port()
    diagnostics_url = f"http://127.0.0.1:{diagnostics_port}/diagnostics"
    stack.put_settings(
        tenant,
        {
            "teams": TEAMS,
            "assignment_rules": [
                {
                    "name": "technical",
                    "conditions": {"category": "technical_support"},
                    "assigned_team": "Support",
                }
            ],
            "escalation_rules": [
                {
                    "name": "complex_to_engineering",
                    "conditions": {"category": "technical_support"},
                    "level": 1,
                    # The timers would escalate much later; the workflow
                    # escalates as soon as the analysis finds it complex.
                    "measured_from": "created",
                    "escalation_time_hours": 1000,
                    "escalate_to_team": "Engineering",
                }
            ],
            "integrations": {
                "diagnostics": {"url": diagnostics_url, "timeout_seconds": 2}
            },
            "workflows": {
                "options": {"technical_support": {"auto_close_after_hours": 24}}
            },
        },
    )
    opened = stack.open_ticket(
        tenant,
        title="VPN drops every few minutes",
        description="It keeps disconnecting.",
        category="technical_support",
        priority="high",
    )
    ticket_id = opened["id"]
    assert opened["assigned_team"] == "Support"

    # 1. The workflow asks the customer for diagnostics and waits.
    flow = stack.wait_until_waiting_on(tenant, ticket_id, "collect_diagnostics")
    assert flow["workflow_type"] == "technical_support"
    assert [s["name"] for s in flow["steps"]] == TECHNICAL_SUPPORT_STEPS
    # A VPN client: the device question.
    assert step_of(flow, "collect_diagnostics")["data"] == {
        "question": DEFAULT_QUESTIONS[DEVICE],
        "kind": DEVICE,
    }
    seen_by_customer = stack.client.get(
        f"{API}/tickets/{ticket_id}/comments", headers=stack.customer(tenant)
    ).json()
    assert [c["body"] for c in seen_by_customer] == [DEFAULT_QUESTIONS[DEVICE]]

    # 2. The customer answers by comment; the diagnostics system is down.
    answer = (
        "Windows 11, VPN client 5.2.1. Error: 'TLS handshake failed'."
        " Started on Monday after the update."
    )
    reply = stack.client.post(
        f"{API}/tickets/{ticket_id}/comments",
        json={"body": answer},
        headers=stack.customer(tenant),
    )
    assert reply.status_code == 201, reply.text
    flow = stack.wait_until_failed_at(tenant, ticket_id, "analyze")
    collected = step_of(flow, "collect_diagnostics")
    assert collected["state"] == "completed"
    assert collected["data"]["diagnostics"] == answer
    analyze = step_of(flow, "analyze")
    assert analyze["error"] == (
        "integration 'diagnostics' is down: connection refused by"
        f" 127.0.0.1:{diagnostics_port}"
    )
    assert instant(analyze["retry_at"]) == stack.clock() + timedelta(seconds=30)
    history = stack.history(tenant, ticket_id)
    (failed,) = events_named(history, "WorkflowStepFailed")
    assert (failed["data"]["step"], failed["data"]["attempt"]) == ("analyze", 1)

    # 3. Back up at the same address; an agent retries through the API.
    def diagnose(call: Call, seen: int) -> Reply:
        return Reply(body={"complex": True, "summary": "TLS certificate mismatch"})

    with external_system(diagnose, port=diagnostics_port) as system:
        retried = stack.client.post(
            f"{API}/tickets/{ticket_id}/workflow/retry", headers=stack.agent(tenant)
        )
        assert retried.status_code == 200, retried.text
        flow = stack.wait_until_waiting_on(tenant, ticket_id, "provide_solution")
        (call,) = system.received("/diagnostics")
    assert call.header("Idempotency-Key") == f"{ticket_id}:analyze:1"
    assert call.json()["diagnostics"] == answer
    analyze = step_of(flow, "analyze")
    assert (analyze["state"], analyze["error"]) == ("completed", None)
    assert analyze["data"]["complex"] is True
    # 4. Complex: escalated to the team of the matching escalation rule.
    escalate = step_of(flow, "escalate_complex")
    assert escalate["data"]["escalated"] is True
    assert escalate["data"]["rule"] == "complex_to_engineering"
    ticket = stack.ticket(tenant, ticket_id)
    assert (ticket["assigned_team"], ticket["assignee_id"]) == ("Engineering", "eng-1")
    assert ticket["escalation_level"] == 1
    (escalated,) = events_named(stack.history(tenant, ticket_id), "TicketEscalated")
    assert (escalated["data"]["rule"], escalated["data"]["level"]) == (
        "complex_to_engineering",
        1,
    )
    assert escalated["data"]["reason"] == "complex problem: TLS certificate mismatch"

    # 5. The engineer's public reply, marked as the solution, is the solution.
    solution = stack.client.post(
        f"{API}/tickets/{ticket_id}/comments",
        json={"body": "Please update the VPN client to 5.2.2.", "solution": True},
        headers=stack.agent(tenant, "eng-1"),
    )
    assert solution.status_code == 201, solution.text
    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "verify_resolution", message="to be resolved"
    )
    provided = step_of(flow, "provide_solution")
    assert provided["data"]["solved_by"] == "comment"
    assert provided["data"]["solution_comment_id"] == solution.json()["id"]

    # 6. Resolved: the workflow waits out the quiet period to close it.
    resolved_at = resolve(stack, tenant, ticket_id, "Client updated")
    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "verify_resolution", message="closes at"
    )
    verify = step_of(flow, "verify_resolution")
    assert instant(verify["wake_at"]) == resolved_at + timedelta(hours=24)
    assert stack.ticket(tenant, ticket_id)["status"] == "resolved"

    # 7. The customer reopens within it: back to the solution, which the
    # answer rejected before does not complete again.
    stack.clock.set(resolved_at + timedelta(hours=3))
    reopened = stack.client.post(
        f"{API}/tickets/{ticket_id}/reopen",
        json={"reason": "It dropped again this morning."},
        headers=stack.customer(tenant),
    )
    assert reopened.status_code == 200, reopened.text
    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "provide_solution", message="waiting for an agent"
    )
    assert step_of(flow, "verify_resolution")["data"]["reopened"] is True
    second = stack.client.post(
        f"{API}/tickets/{ticket_id}/comments",
        json={"body": "Please also switch the VPN to TCP mode.", "solution": True},
        headers=stack.agent(tenant, "eng-1"),
    )
    assert second.status_code == 201, second.text
    stack.wait_until_waiting_on(
        tenant, ticket_id, "verify_resolution", message="to be resolved"
    )
    resolved_at = resolve(stack, tenant, ticket_id, "Switched to TCP")
    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "verify_resolution", message="closes at"
    )
    # The quiet period counts from the last resolution.
    verify = step_of(flow, "verify_resolution")
    assert instant(verify["wake_at"]) == resolved_at + timedelta(hours=24)

    stack.clock.set(resolved_at + timedelta(hours=24))
    flow = stack.wait_until_completed(tenant, ticket_id)
    verify = step_of(flow, "verify_resolution")
    assert verify["data"]["closed"] is True
    assert verify["actions"] == [{"kind": "close"}]
    ticket = stack.ticket(tenant, ticket_id)
    assert ticket["status"] == "closed"
    assert {s["state"] for s in flow["steps"]} == {"completed"}
    history = stack.history(tenant, ticket_id)
    completed = events_named(history, "WorkflowStepCompleted")
    assert [e["data"]["step"] for e in completed] == [
        *TECHNICAL_SUPPORT_STEPS,
        "provide_solution",
        "verify_resolution",
    ]
    (closed,) = events_named(history, "TicketClosed")
    assert closed["actor"]["kind"] == "automation"
    assert instant(closed["at"]) == resolved_at + timedelta(hours=24)
    (wake,) = [
        e
        for e in events_named(history, "WorkflowStepDue")
        if e["data"]["reason"] == "wake"
    ]
    assert wake["actor"]["kind"] == "automation"


def resolve(stack: WorkflowStack, tenant: str, ticket_id: str, note: str) -> datetime:
    """An engineer resolves the ticket; when."""
    resolved = stack.client.post(
        f"{API}/tickets/{ticket_id}/resolve",
        json={"resolution": note, "resolution_code": "fixed"},
        headers=stack.agent(tenant, "eng-1"),
    )
    assert resolved.status_code == 200, resolved.text
    return instant(resolved.json()["resolved_at"])


# -- billing ---------------------------------------------------------------------


class BillingSystem:
    """The stand-in for the billing system: lookup (503 once), history, apply.

    It applies an adjustment once per Idempotency-Key, as the header's
    draft asks of a receiver, and remembers the keys it saw.
    """

    def __init__(self, *, lookup_failures: int = 1) -> None:
        self.lookup_failures = lookup_failures
        self.applied: dict[str, dict[str, Any]] = {}

    def answer(self, call: Call, seen: int) -> Reply:
        if call.path == "/accounts":
            if seen < self.lookup_failures:
                return Reply(503, "maintenance until 10:00")
            return Reply(body={"account_id": "ACC-7", "status": "active"})
        if call.path == "/history":
            return Reply(
                body={
                    "invoices": [
                        {"id": "INV-1", "amount": 80, "currency": "EUR"},
                        {
                            "id": "INV-2",
                            "amount": "249.50",
                            "currency": "EUR",
                            "disputed": True,
                        },
                    ]
                }
            )
        if call.path == "/adjustments":
            key = call.header("Idempotency-Key") or ""
            self.applied.setdefault(key, {"reference": f"ADJ-{len(self.applied) + 1}"})
            return Reply(body=self.applied[key])
        return Reply(404, "no such hook")


def billing_settings(system: ExternalSystem) -> dict[str, Any]:
    return {
        "teams": TEAMS,
        "integrations": {
            "account_lookup": {"url": system.url("/accounts"), "timeout_seconds": 2},
            "billing_history": {"url": system.url("/history"), "timeout_seconds": 2},
            "apply_adjustment": {
                "url": system.url("/adjustments"),
                "timeout_seconds": 2,
                "auth": {"type": "bearer", "token": "billing-token"},
            },
        },
        "workflows": {
            "options": {"billing": {"approval_above": 100, "currency": "EUR"}}
        },
    }


def test_billing_retries_a_failed_lookup_waits_for_approval_and_applies_once(
    stack: WorkflowStack,
) -> None:
    tenant = new_tenant("bill")
    billing = BillingSystem(lookup_failures=1)
    with external_system(billing.answer) as system:
        stack.put_settings(tenant, billing_settings(system))
        opened = stack.open_ticket(
            tenant,
            title="Charged twice for March",
            description="Invoice INV-2 charges me again for March.",
            category="billing",
            customer_email="grace@example.test",
        )
        ticket_id = opened["id"]

        # 1. The billing system answers 503: a clear failure, retried later.
        failed_at = stack.clock()
        flow = stack.wait_until_failed_at(tenant, ticket_id, "verify_account")
        assert flow["workflow_type"] == "billing"
        assert [s["name"] for s in flow["steps"]] == BILLING_STEPS
        verify = step_of(flow, "verify_account")
        assert verify["error"] == (
            "integration 'account_lookup' failed: it answered 503 Service"
            " Unavailable: maintenance until 10:00"
        )
        retry_at = instant(verify["retry_at"])
        assert retry_at == failed_at + timedelta(seconds=30)

        # 2. At retry_at the timers run the step again, and it succeeds.
        stack.clock.set(retry_at)
        flow = stack.wait_until_waiting_on(tenant, ticket_id, "approve_adjustment")
        verify = step_of(flow, "verify_account")
        assert (verify["state"], verify["data"]["account_id"]) == ("completed", "ACC-7")
        lookups = system.received("/accounts")
        assert len(lookups) == 2
        # The same step visit asks with the same key.
        assert {c.header("Idempotency-Key") for c in lookups} == {
            f"{ticket_id}:verify_account:1"
        }
        history = step_of(flow, "review_billing_history")
        assert history["data"]["disputed_invoices"] == ["INV-2"]
        assert step_of(flow, "calculate_adjustment")["data"]["amount"] == 249.5
        approval = step_of(flow, "approve_adjustment")
        assert approval["message"] == (
            "a supervisor must approve an adjustment of 249.50 EUR"
        )
        assert system.received("/adjustments") == []

        # 3. Only a supervisor may approve; an agent is refused.
        url = f"{API}/tickets/{ticket_id}/workflow/steps/approve_adjustment/complete"
        refused = stack.client.post(
            url, json={"data": {"approved": True}}, headers=stack.agent(tenant)
        )
        assert refused.status_code == 403, refused.text
        approved = stack.client.post(
            url, json={"data": {"approved": True}}, headers=stack.supervisor(tenant)
        )
        assert approved.status_code == 200, approved.text

        flow = stack.wait_until_completed(tenant, ticket_id)
        (applied,) = system.received("/adjustments")

    assert applied.header("Idempotency-Key") == f"{ticket_id}:apply_adjustment:1"
    assert applied.header("Authorization") == "Bearer billing-token"
    assert applied.json() == {
        "ticket_id": ticket_id,
        "ticket_number": opened["number"],
        "account_id": "ACC-7",
        "amount": 249.5,
        "currency": "EUR",
    }
    approval = step_of(flow, "approve_adjustment")
    assert approval["data"] == {"approved": True}
    assert approval["completed_by"]["id"] == "lead-1"
    apply = step_of(flow, "apply_adjustment")
    assert apply["data"]["confirmation"] == {"reference": "ADJ-1"}
    confirm = step_of(flow, "confirm_with_customer")
    assert confirm["data"]["outcome"] == "applied"
    seen_by_customer = stack.client.get(
        f"{API}/tickets/{ticket_id}/comments", headers=stack.customer(tenant)
    ).json()
    assert [c["body"] for c in seen_by_customer] == [
        "We have reviewed your billing history and applied an adjustment of"
        " 249.50 EUR to your account (reference ADJ-1)."
    ]
    history = stack.history(tenant, ticket_id)
    completed = events_named(history, "WorkflowStepCompleted")
    assert [e["data"]["step"] for e in completed] == BILLING_STEPS
    assert len(events_named(history, "WorkflowCompleted")) == 1
