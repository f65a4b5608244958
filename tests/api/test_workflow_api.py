"""The workflow routes over HTTP: who may see and drive a ticket's workflow.

No workflow runtime runs in this ring: a test moves a workflow along with
the use cases the runtime calls (``WorkflowService.start`` and ``record``,
with the results a step would return), and checks what people get from
``GET …/workflow``, ``POST …/workflow/steps/{step}/complete`` and ``POST
…/workflow/retry``. The runtime itself is tested end to end in
``tests/integration/test_workflows_e2e.py``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from httpx import Response

from dotmac.ticketing.domain.workflow import WorkflowResult
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tenant_config import TenantSettingsService
from tests.api.conftest import AuthFor, Headers

TICKETS = "/api/v1/tickets"
PROBLEM = "application/problem+json"


def open_ticket(client: TestClient, auth_for: AuthFor, tenant: str, **body: Any) -> str:
    response = client.post(
        f"{TICKETS}/",
        json={"title": "Printer jams on every page", **body},
        headers=auth_for(tenant, "cust-1", "customer"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def run_step(ticketing: Ticketing, ticket_id: str, **result: Any) -> WorkflowResult:
    """Record what the current step did, as the runtime would."""
    ticket = ticketing.tickets.find(UUID(ticket_id))
    assert ticket is not None
    run = ticketing.workflows.step_to_run(ticket)
    assert run is not None
    done = WorkflowResult(step_name=run.step, **{"success": True, **result})
    ticketing.workflows.record(run, done)
    return done


def get_workflow(client: TestClient, ticket_id: str, headers: Headers) -> Response:
    return client.get(f"{TICKETS}/{ticket_id}/workflow", headers=headers)


def complete(
    client: TestClient,
    ticket_id: str,
    step: str,
    headers: Headers,
    data: dict[str, Any] | None = None,
) -> Response:
    return client.post(
        f"{TICKETS}/{ticket_id}/workflow/steps/{step}/complete",
        json={"data": data or {}},
        headers=headers,
    )


def retry(client: TestClient, ticket_id: str, headers: Headers) -> Response:
    return client.post(f"{TICKETS}/{ticket_id}/workflow/retry", headers=headers)


def problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    found: dict[str, Any] = response.json()
    assert found["status"] == status
    return found


def steps(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in flow["steps"]}


def version(client: TestClient, ticket_id: str, headers: Headers) -> int:
    response = client.get(f"{TICKETS}/{ticket_id}", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


# -- GET /workflow ------------------------------------------------------------------


def test_right_after_the_create_the_workflow_about_to_run_is_pending(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    for category, kind, first in (
        ("general", "customer_support", "validate_ticket"),
        ("technical_support", "technical_support", "collect_diagnostics"),
        ("billing", "billing", "verify_account"),
    ):
        ticket_id = open_ticket(client, auth_for, tenant, category=category)
        response = get_workflow(client, ticket_id, agent)
        assert response.status_code == 200, response.text
        flow = response.json()
        assert (flow["workflow_type"], flow["status"]) == (kind, "pending")
        assert flow["current_step"] is None
        assert flow["started_at"] is None and flow["completed_at"] is None
        assert flow["steps"][0]["name"] == first
        assert {s["state"] for s in flow["steps"]} == {"pending"}
        assert all(s["description"] for s in flow["steps"])


def test_a_ticket_that_runs_no_workflow_answers_404(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    # Settings stored before types were checked (or a plugin since removed).
    unchecked = TenantSettingsService(ticketing.app)
    admin = RequestContext(tenant, "admin-1", frozenset({"admin"}))
    unchecked.replace(admin, {"workflows": {"by_category": {"complaint": "gone"}}})
    ticket_id = open_ticket(client, auth_for, tenant, category="complaint")

    missing = problem(get_workflow(client, ticket_id, agent), 404)
    assert missing["detail"] == (
        f"ticket {ticket_id} has no workflow: its category complaint selects"
        " workflow 'gone', which is not installed"
    )
    # A ticket closed before the runtime got to it runs none either.
    closed = UUID(open_ticket(client, auth_for, tenant))
    staff = RequestContext(tenant, "agent-1", frozenset({"agent"}))
    ticketing.tickets.resolve(
        staff, closed, resolution="Dup", resolution_code="duplicate"
    )
    ticketing.tickets.close(staff, closed)
    ticketing.workflows.start(tenant, closed)  # what the runtime does: nothing
    gone = problem(get_workflow(client, str(closed), agent), 404)
    assert gone["detail"].endswith("has no workflow: it was closed before one started")


def test_the_workflow_is_shown_to_staff_once_it_started(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant)
    agent = auth_for(tenant, "agent-1", "agent")

    ticketing.workflows.start(tenant, UUID(ticket_id))
    response = get_workflow(client, ticket_id, agent)

    assert response.status_code == 200, response.text
    flow = response.json()
    assert flow["workflow_type"] == "customer_support"
    assert (flow["status"], flow["current_step"]) == ("running", "validate_ticket")
    assert flow["completed_at"] is None
    assert [(s["name"], s["state"]) for s in flow["steps"]] == [
        ("validate_ticket", "running"),
        ("auto_categorize", "pending"),
        ("assign_team", "pending"),
        ("send_acknowledgment", "pending"),
        ("start_sla_monitoring", "pending"),
    ]
    assert all(s["description"] for s in flow["steps"])
    assert steps(flow)["validate_ticket"]["attempt"] == 1
    for role in ("supervisor", "admin"):
        shown = get_workflow(client, ticket_id, auth_for(tenant, f"{role}-1", role))
        assert shown.json() == flow


def test_customers_are_refused_and_other_tenants_find_nothing(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant)
    ticketing.workflows.start(tenant, UUID(ticket_id))
    owner = auth_for(tenant, "cust-1", "customer")
    stranger = auth_for(f"{tenant}-other", "agent-1", "agent")

    refused = problem(get_workflow(client, ticket_id, owner), 403)
    assert refused["type"].endswith("/forbidden")
    # Refused before any lookup: a ticket that does not exist answers alike.
    assert get_workflow(client, str(uuid.uuid4()), owner).status_code == 403

    hidden = problem(get_workflow(client, ticket_id, stranger), 404)
    nowhere = problem(get_workflow(client, str(uuid.uuid4()), stranger), 404)
    assert (hidden["type"], hidden["title"]) == (nowhere["type"], nowhere["title"])
    assert "Printer" not in str(hidden)


# -- completing a waiting step -------------------------------------------------------


def test_staff_complete_the_step_the_workflow_waits_on(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant)
    agent = auth_for(tenant, "agent-1", "agent")
    owner = auth_for(tenant, "cust-1", "customer")
    ticketing.workflows.start(tenant, UUID(ticket_id))

    # Running, not waiting: nothing to complete yet.
    early = problem(complete(client, ticket_id, "validate_ticket", agent), 409)
    assert "not waiting on validate_ticket" in early["detail"]

    run_step(
        ticketing,
        ticket_id,
        requires_action=True,
        message="waiting for a person to check the contact",
        data={"missing": ["contact"]},
    )
    flow = get_workflow(client, ticket_id, agent).json()
    assert (flow["status"], flow["current_step"]) == ("waiting", "validate_ticket")
    waiting = steps(flow)["validate_ticket"]
    assert waiting["state"] == "waiting"
    assert waiting["message"] == "waiting for a person to check the contact"
    assert waiting["data"] == {"missing": ["contact"]}

    before = version(client, ticket_id, agent)
    problem(complete(client, ticket_id, "validate_ticket", owner), 403)
    wrong = problem(complete(client, ticket_id, "assign_team", agent), 409)
    assert "current step: validate_ticket" in wrong["detail"]
    problem(complete(client, ticket_id, "no_such_step", agent), 409)
    assert version(client, ticket_id, agent) == before

    done = complete(
        client, ticket_id, "validate_ticket", agent, {"contact_checked": True}
    )

    assert done.status_code == 200, done.text
    assert done.json()["version"] == before + 1
    flow = get_workflow(client, ticket_id, agent).json()
    assert (flow["status"], flow["current_step"]) == ("running", "auto_categorize")
    completed = steps(flow)["validate_ticket"]
    assert completed["state"] == "completed"
    assert completed["data"] == {"contact_checked": True}
    assert completed["message"] == "completed by a person"
    assert completed["completed_by"] == {
        "id": "agent-1",
        "role": "agent",
        "kind": "user",
    }
    # Once: the step is not waiting any more.
    again = complete(client, ticket_id, "validate_ticket", agent)
    problem(again, 409)


def test_a_stale_if_match_is_refused(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant)
    agent = auth_for(tenant, "agent-1", "agent")
    ticketing.workflows.start(tenant, UUID(ticket_id))
    run_step(ticketing, ticket_id, requires_action=True, message="check it")
    current = version(client, ticket_id, agent)

    stale = client.post(
        f"{TICKETS}/{ticket_id}/workflow/steps/validate_ticket/complete",
        json={"data": {}},
        headers={**agent, "If-Match": f'"{current - 1}"'},
    )
    problem(stale, 412)
    fresh = client.post(
        f"{TICKETS}/{ticket_id}/workflow/steps/validate_ticket/complete",
        json={"data": {}},
        headers={**agent, "If-Match": f'"{current}"'},
    )
    assert fresh.status_code == 200, fresh.text


def test_an_adjustment_above_the_limit_is_approved_by_a_supervisor_only(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant, category="billing")
    ticketing.workflows.start(tenant, UUID(ticket_id))
    for data in (
        {"verified": True, "account_id": "ACC-1"},
        {"disputed_amount": 500.0, "currency": "EUR"},
        {"amount": 500.0, "currency": "EUR"},
    ):
        run_step(ticketing, ticket_id, data=data)
    run_step(
        ticketing,
        ticket_id,
        requires_action=True,
        message="a supervisor must approve an adjustment of 500.00 EUR",
    )
    agent = auth_for(tenant, "agent-1", "agent")
    approval = {"approved": True}

    refused = problem(
        complete(client, ticket_id, "approve_adjustment", agent, approval), 403
    )
    assert "supervisor" in refused["detail"]
    done = complete(
        client,
        ticket_id,
        "approve_adjustment",
        auth_for(tenant, "lead-1", "supervisor"),
        approval,
    )

    assert done.status_code == 200, done.text
    flow = get_workflow(client, ticket_id, agent).json()
    assert flow["current_step"] == "apply_adjustment"
    approved = steps(flow)["approve_adjustment"]
    assert approved["data"] == approval
    assert approved["completed_by"]["role"] == "supervisor"


# -- retrying a failed step ------------------------------------------------------------


def test_a_failed_step_is_retried_on_request(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant, category="billing")
    agent = auth_for(tenant, "agent-1", "agent")
    owner = auth_for(tenant, "cust-1", "customer")

    nothing = problem(retry(client, ticket_id, agent), 409)
    assert "no workflow" in nothing["detail"]
    ticketing.workflows.start(tenant, UUID(ticket_id))
    running = problem(retry(client, ticket_id, agent), 409)
    assert "nothing failed" in running["detail"]

    down = "integration 'account_lookup' is down: connection refused by crm:443"
    before = datetime.fromisoformat(
        client.get(f"{TICKETS}/{ticket_id}", headers=agent).json()["updated_at"]
    )
    run_step(ticketing, ticket_id, success=False, message=down)
    flow = get_workflow(client, ticket_id, agent).json()
    assert (flow["status"], flow["current_step"]) == ("failed", "verify_account")
    failed = steps(flow)["verify_account"]
    assert (failed["state"], failed["error"], failed["attempt"]) == ("failed", down, 1)
    retry_at = datetime.fromisoformat(failed["retry_at"])
    # The hook steps' first back-off: 30 s after the failure.
    assert timedelta(seconds=30) <= retry_at - before < timedelta(minutes=5)

    problem(retry(client, ticket_id, owner), 403)
    retried = retry(client, ticket_id, agent)

    assert retried.status_code == 200, retried.text
    flow = get_workflow(client, ticket_id, agent).json()
    assert (flow["status"], flow["current_step"]) == ("running", "verify_account")
    again = steps(flow)["verify_account"]
    assert (again["state"], again["attempt"], again["error"]) == ("running", 2, None)
    problem(retry(client, ticket_id, agent), 409)


def test_a_failure_that_is_not_retried_waits_for_a_person(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> None:
    ticket_id = open_ticket(client, auth_for, tenant)
    agent = auth_for(tenant, "agent-1", "agent")
    ticketing.workflows.start(tenant, UUID(ticket_id))
    refused = "integration 'crm' refused the request: it answered 401 Unauthorized"
    run_step(ticketing, ticket_id, success=False, message=refused, retryable=False)

    failed = steps(get_workflow(client, ticket_id, agent).json())["validate_ticket"]
    assert (failed["error"], failed["retry_at"]) == (refused, None)
    assert retry(client, ticket_id, agent).status_code == 200
