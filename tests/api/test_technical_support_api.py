"""The technical-support workflow makes no noise (issue 11, point 5), over HTTP.

The ticket is opened, answered, assigned and configured over HTTP, and what
came of it is read over HTTP (the workflow, the comments, the history). No
worker runs in this ring: :func:`run_current_step` runs the step the
workflow is at with the runtime's own step runner (``WorkflowRunner``, on
the service's clock, no integration configured) and records its result as
the runtime does.

- An escalation that would leave the ticket with whoever holds it records
  nothing: not from the workflow, not from a person, not from a rule.
- The diagnostic question fits the ticket, or is not asked for the
  priorities and categories the tenant lists.
- ``provide_solution`` completes on the resolution or on an agent's public
  reply marked ``"solution": true``, not on an agent's question.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.workflows.worker import WorkflowRunner
from dotmac.ticketing.domain.diagnostics import DEFAULT_QUESTIONS, DEVICE, OUTAGE
from dotmac.ticketing.service.bootstrap import Ticketing
from tests.api.conftest import AuthFor, Headers, ManualClock, put_settings

TICKETS = "/api/v1/tickets"
PROBLEM = "application/problem+json"
# Long enough that the workflow does not ask for diagnostics (80 characters).
DETAILED = (
    "Since the update on Monday the export job fails with error E42 after"
    " about ten minutes, every time."
)


class Desk:
    """One tenant's desk: its people, its tickets, its workflow steps."""

    def __init__(
        self,
        client: TestClient,
        ticketing: Ticketing,
        auth_for: AuthFor,
        tenant: str,
        clock: ManualClock,
    ) -> None:
        self.client, self.ticketing, self.tenant = client, ticketing, tenant
        self.auth_for, self.clock = auth_for, clock
        self.agent = auth_for(tenant, "ann", "agent")
        self.customer = auth_for(tenant, "cust-1", "customer")

    def settings(self, document: dict[str, Any]) -> None:
        put_settings(self.client, self.auth_for, self.tenant, document)

    def open(self, **body: Any) -> str:
        response = self.client.post(
            f"{TICKETS}/",
            json={"category": "technical_support", **body},
            headers=self.customer,
        )
        assert response.status_code == 201, response.text
        ticket_id = str(response.json()["id"])
        self.ticketing.workflows.start(self.tenant, UUID(ticket_id))
        return ticket_id

    def post(
        self,
        ticket_id: str,
        path: str,
        body: dict[str, Any],
        who: Headers | None = None,
    ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"{TICKETS}/{ticket_id}/{path}", json=body, headers=who or self.agent
        )
        return response

    def get(self, ticket_id: str, path: str = "") -> Any:
        response = self.client.get(
            f"{TICKETS}/{ticket_id}{'/' + path if path else ''}", headers=self.agent
        )
        assert response.status_code == 200, response.text
        return response.json()

    def step(self, ticket_id: str, name: str) -> dict[str, Any]:
        flow = self.get(ticket_id, "workflow")
        found: dict[str, Any] = next(s for s in flow["steps"] if s["name"] == name)
        return found

    def current_step(self, ticket_id: str) -> str:
        return str(self.get(ticket_id, "workflow")["current_step"])

    def events(self, ticket_id: str) -> list[str]:
        return [e["event"] for e in self.get(ticket_id, "history")]

    def run_current_step(self, ticket_id: str) -> None:
        """Run the step the workflow is at, and record it, as the runtime does."""
        ticket = self.ticketing.tickets.find(UUID(ticket_id))
        assert ticket is not None
        run = self.ticketing.workflows.step_to_run(ticket)
        assert run is not None, "no step to run"

        async def step() -> Any:
            async with httpx.AsyncClient() as http:
                runner = WorkflowRunner(self.ticketing, self.clock, http)
                return await runner.run_step(run, ticket)

        result = asyncio.run(step())
        self.ticketing.workflows.record(run, result)

    def complete(self, ticket_id: str, step: str, **data: Any) -> None:
        response = self.post(
            ticket_id, f"workflow/steps/{step}/complete", {"data": data}
        )
        assert response.status_code == 200, response.text

    def to_escalation(self, ticket_id: str, *, complex_problem: bool) -> None:
        """Diagnostics given in the description, a person judges the analysis."""
        self.run_current_step(ticket_id)  # collect_diagnostics: not asked
        assert self.current_step(ticket_id) == "analyze"
        self.run_current_step(ticket_id)  # no diagnostics hook: a person judges
        self.complete(
            ticket_id, "analyze", complex=complex_problem, summary="export worker"
        )
        assert self.current_step(ticket_id) == "escalate_complex"


def desk_of(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> Desk:
    return Desk(client, ticketing, auth_for, tenant, clock)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    found: dict[str, Any] = response.json()
    return found


# -- 1. an escalation that changes nothing is not recorded -------------------------


def test_the_workflow_does_not_escalate_to_the_team_that_holds_the_ticket(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    held = desk.post(ticket_id, "assign", {"team": "Support", "assignee_id": "ann"})
    assert held.status_code == 200, held.text
    desk.to_escalation(ticket_id, complex_problem=True)

    desk.run_current_step(ticket_id)

    step = desk.step(ticket_id, "escalate_complex")
    assert step["state"] == "completed"
    assert step["message"] == (
        "not escalated: kept by the current team, team Support (agent ann)"
        " (no escalation rule or option names a team)"
    )
    assert step["data"]["escalated"] is False
    assert step["data"]["kept_by"] == "team Support (agent ann)"
    assert step["actions"] == []
    assert desk.current_step(ticket_id) == "provide_solution"
    ticket = desk.get(ticket_id)
    assert (ticket["escalation_level"], ticket["assigned_team"]) == (0, "Support")
    assert ticket["assignee_id"] == "ann"
    # No event, so no "Escalated" e-mail and nothing for the dashboard.
    assert "TicketEscalated" not in desk.events(ticket_id)


def test_the_workflow_still_escalates_to_another_team(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    desk.settings(
        {"workflows": {"options": {"technical_support": {"escalation_team": "Eng"}}}}
    )
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    desk.post(ticket_id, "assign", {"team": "Support", "assignee_id": "ann"})
    desk.to_escalation(ticket_id, complex_problem=True)

    desk.run_current_step(ticket_id)

    step = desk.step(ticket_id, "escalate_complex")
    assert step["data"]["escalated"] is True
    assert [a["kind"] for a in step["actions"]] == ["escalate"]
    ticket = desk.get(ticket_id)
    assert (ticket["escalation_level"], ticket["assigned_team"]) == (1, "Eng")
    assert desk.events(ticket_id).count("TicketEscalated") == 1


def test_a_person_escalating_to_the_team_that_holds_it_changes_nothing(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    desk.post(ticket_id, "assign", {"team": "Support", "assignee_id": "ann"})
    before = desk.get(ticket_id)

    for body in ({"reason": "again", "team": "Support"}, {"reason": "again"}):
        same = desk.post(ticket_id, "escalate", body)
        assert same.status_code == 200, same.text
        assert same.json()["version"] == before["version"]
        assert same.json()["escalation_level"] == 0

    assert "TicketEscalated" not in desk.events(ticket_id)
    moved = desk.post(ticket_id, "escalate", {"reason": "hw", "team": "Eng"})
    assert moved.json()["escalation_level"] == 1
    assert desk.events(ticket_id).count("TicketEscalated") == 1


def test_a_rule_whose_team_holds_the_ticket_neither_escalates_nor_asks_approval(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    rule = {
        "name": "slow",
        "level": 1,
        "escalation_time_hours": 1,
        "escalate_to_team": "Support",
    }
    desk.settings(
        {
            "escalation_rules": [
                rule,
                {**rule, "name": "slow_approved", "requires_approval": True},
            ]
        }
    )
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    desk.post(ticket_id, "assign", {"team": "Support", "assignee_id": "ann"})
    clock.set(clock().replace(microsecond=0))
    clock.advance(hours=2)

    for name in ("slow", "slow_approved"):
        ticketing.tickets.apply_escalation_rule(tenant, UUID(ticket_id), name)

    events = desk.events(ticket_id)
    assert "TicketEscalated" not in events
    assert "EscalationRequested" not in events
    assert desk.get(ticket_id)["escalation_level"] == 0


# -- 2. the diagnostic question fits the ticket ------------------------------------


def automation_comments(desk: Desk, ticket_id: str) -> list[str]:
    return [
        c["body"]
        for c in desk.get(ticket_id, "comments")
        if c["author_role"] == "automation"
    ]


def test_a_critical_site_down_ticket_is_asked_about_the_outage(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    down = desk.open(
        title="Production site down", description="Shop gives 503.", priority="critical"
    )
    router = desk.open(title="Router drops the line", description="Every hour.")

    desk.run_current_step(down)
    desk.run_current_step(router)

    (asked,) = automation_comments(desk, down)
    assert asked == DEFAULT_QUESTIONS[OUTAGE]
    assert "firmware" not in asked and "affected" in asked
    assert desk.step(down, "collect_diagnostics")["data"]["kind"] == OUTAGE
    assert automation_comments(desk, router) == [DEFAULT_QUESTIONS[DEVICE]]


def test_a_tenant_words_the_questions_and_skips_priorities_and_categories(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    desk.settings(
        {
            "workflows": {
                "by_category": {
                    "technical_support": "technical_support",
                    "account": "technical_support",
                },
                "options": {
                    "technical_support": {
                        "diagnostics_questions": {"outage": "Which stores are closed?"},
                        "skip_diagnostics_for": {
                            "priorities": ["critical"],
                            "categories": ["account"],
                        },
                    }
                },
            }
        }
    )
    critical = desk.open(title="Site down", description="503", priority="critical")
    account = desk.open(title="Login broken", description="no", category="account")
    urgent = desk.open(title="All tills offline", description="", priority="urgent")

    for ticket_id in (critical, account, urgent):
        desk.run_current_step(ticket_id)

    for ticket_id, why in (
        (critical, "priority critical"),
        (account, "category account"),
    ):
        step = desk.step(ticket_id, "collect_diagnostics")
        assert step["state"] == "completed"
        assert step["message"] == f"not asked: the tenant skips the question for {why}"
        assert automation_comments(desk, ticket_id) == []
        assert desk.current_step(ticket_id) == "analyze"
    assert automation_comments(desk, urgent) == ["Which stores are closed?"]
    assert desk.step(urgent, "collect_diagnostics")["state"] == "waiting"


def test_the_diagnostics_options_are_checked(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    admin = auth_for(tenant, "admin-1", "admin")
    for options, where in (
        (
            {"skip_diagnostics_for": {"priorities": ["urgentish"]}},
            ["skip_diagnostics_for", "priorities", "0"],
        ),
        (
            {"skip_diagnostics_for": {"categories": ["weather"]}},
            ["skip_diagnostics_for", "categories", "0"],
        ),
        (
            {"skip_diagnostics_for": {"priority": ["low"]}},
            ["skip_diagnostics_for", "priority"],
        ),
        (
            {"diagnostics_questions": {"hardware": "Which?"}},
            ["diagnostics_questions", "hardware"],
        ),
        (
            {"diagnostics_questions": {"outage": " "}},
            ["diagnostics_questions", "outage"],
        ),
    ):
        document = {"workflows": {"options": {"technical_support": options}}}
        refused = client.put("/api/v1/settings", json=document, headers=admin)
        body = problem(refused, 422)
        fields = [error["loc"] for error in body["errors"]]
        assert ["body", "workflows", "options", "technical_support", *where] in [
            [str(part) for part in loc] for loc in fields
        ], body
    assert client.get("/api/v1/settings", headers=admin).json()["version"] == 0


# -- 3. only a solution completes provide_solution ---------------------------------


def test_an_agents_question_does_not_complete_the_solution_step(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    desk.to_escalation(ticket_id, complex_problem=False)
    desk.run_current_step(ticket_id)  # escalate_complex: not complex
    assert desk.current_step(ticket_id) == "provide_solution"
    desk.run_current_step(ticket_id)  # waits

    question = desk.post(ticket_id, "comments", {"body": "Which version runs?"})
    assert question.status_code == 201, question.text
    assert question.json()["solution"] is False
    desk.run_current_step(ticket_id)

    waiting = desk.step(ticket_id, "provide_solution")
    assert waiting["state"] == "waiting"
    assert '"solution": true' in waiting["message"]

    answer = desk.post(
        ticket_id,
        "comments",
        {"body": "Update the worker to 2.4.1.", "solution": True},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["solution"] is True
    desk.run_current_step(ticket_id)

    solved = desk.step(ticket_id, "provide_solution")
    assert solved["state"] == "completed"
    assert solved["data"]["solved_by"] == "comment"
    assert solved["data"]["solution_comment_id"] == answer.json()["id"]
    assert desk.current_step(ticket_id) == "verify_resolution"
    shown = {c["id"]: c["solution"] for c in desk.get(ticket_id, "comments")}
    assert shown[answer.json()["id"]] is True
    assert shown[question.json()["id"]] is False


def test_the_resolution_completes_the_solution_step(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    desk.to_escalation(ticket_id, complex_problem=False)
    desk.run_current_step(ticket_id)
    resolved = desk.post(
        ticket_id,
        "resolve",
        {"resolution": "Worker updated", "resolution_code": "fixed"},
    )
    assert resolved.status_code == 200, resolved.text

    desk.run_current_step(ticket_id)

    assert desk.step(ticket_id, "provide_solution")["data"]["solved_by"] == "resolved"


def test_only_staff_mark_a_public_reply_as_the_solution(
    client: TestClient,
    ticketing: Ticketing,
    auth_for: AuthFor,
    tenant: str,
    clock: ManualClock,
) -> None:
    desk = desk_of(client, ticketing, auth_for, tenant, clock)
    ticket_id = desk.open(title="Export job fails", description=DETAILED)
    version = desk.get(ticket_id)["version"]

    by_customer = desk.post(
        ticket_id, "comments", {"body": "Fixed", "solution": True}, desk.customer
    )
    problem(by_customer, 403)
    internal = desk.post(
        ticket_id, "comments", {"body": "MTU", "internal": True, "solution": True}
    )
    assert "solution" in str(problem(internal, 422))
    assert desk.get(ticket_id)["version"] == version
