"""Auto-assignment on create, over HTTP: each strategy, capacity and skills.

The team and agent are chosen inside the create command, so the 201
response already names them, and the ``TicketAssigned`` event in the
history says why (rule, strategy, the loads or skills compared). Loads are
open tickets from the read model, so these tests run the projection worker
(``projections``). Draining a team's queue when capacity frees up is the
timers worker's call in production; here the test makes it directly.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.service.bootstrap import Ticketing
from tests.api.conftest import AuthFor, Headers, put_settings

TICKETS = "/api/v1/tickets"

pytestmark = pytest.mark.usefixtures("projections")


def agents(*ids: str, capacity: int = 20, **skills: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": agent,
            "capacity": capacity,
            "skills": skills.get(agent.replace("-", "_"), []),
        }
        for agent in ids
    ]


def support_rule(strategy: str, **conditions: Any) -> dict[str, Any]:
    return {
        "name": "support",
        "conditions": conditions,
        "assigned_team": "Support",
        "strategy": strategy,
    }


class Desk:
    def __init__(
        self,
        client: TestClient,
        ticketing: Ticketing,
        auth_for: AuthFor,
        tenant: str,
    ) -> None:
        self.client = client
        self.ticketing = ticketing
        self.auth_for = auth_for
        self.tenant = tenant
        self.agent: Headers = auth_for(tenant, "lead-1", "agent")

    def configure(
        self, rules: list[dict[str, Any]], teams: list[dict[str, Any]]
    ) -> None:
        put_settings(
            self.client,
            self.auth_for,
            self.tenant,
            {"teams": teams, "assignment_rules": rules},
        )

    def open(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "Cannot connect", "customer_id": "cust-1", **fields}
        response = self.client.post(f"{TICKETS}/", json=body, headers=self.agent)
        assert response.status_code == 201, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    def post(self, ticket_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(
            f"{TICKETS}/{ticket_id}/{action}", json=body, headers=self.agent
        )
        assert response.status_code == 200, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    def get(self, ticket_id: str) -> dict[str, Any]:
        response = self.client.get(f"{TICKETS}/{ticket_id}", headers=self.agent)
        assert response.status_code == 200, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    def assignments(self, ticket_id: str) -> list[dict[str, Any]]:
        """The ``TicketAssigned`` events of the ticket, oldest first."""
        response = self.client.get(f"{TICKETS}/{ticket_id}/history", headers=self.agent)
        assert response.status_code == 200, response.text
        return [e for e in response.json() if e["event"] == "TicketAssigned"]

    def reason(self, ticket_id: str) -> dict[str, Any]:
        """Why the latest automatic assignment went where it went."""
        latest = self.assignments(ticket_id)[-1]
        assert latest["actor"] == {
            "id": "auto-assignment",
            "role": "automation",
            "kind": "automation",
        }
        reason: dict[str, Any] = latest["data"]["reason"]
        return reason

    def projected(self, position: int) -> None:
        """Wait until the read model (the loads) includes ``position``."""
        assert self.ticketing.read_model.wait_for(position, 15)


@pytest.fixture
def desk(
    client: TestClient, ticketing: Ticketing, auth_for: AuthFor, tenant: str
) -> Desk:
    return Desk(client, ticketing, auth_for, tenant)


def test_round_robin_takes_turns_and_the_201_names_the_assignee(desk: Desk) -> None:
    desk.configure(
        [support_rule("round_robin")],
        [{"name": "Support", "agents": agents("ann", "bob", "cyd")}],
    )

    created = [desk.open() for _ in range(4)]

    assert [t["assignee_id"] for t in created] == ["ann", "bob", "cyd", "ann"]
    for ticket in created:
        assert (ticket["assigned_team"], ticket["status"]) == ("Support", "open")
        assert desk.get(ticket["id"])["assignee_id"] == ticket["assignee_id"]
    reason = desk.reason(created[1]["id"])
    assert {k: reason[k] for k in ("rule", "strategy", "team", "picked")} == {
        "rule": "support",
        "strategy": "round_robin",
        "team": "Support",
        "picked": "bob",
    }
    assert "round robin turn" in reason["why"]
    # The customer sees whom, not why (rules and agents' loads).
    customer = desk.auth_for(desk.tenant, "cust-1", "customer")
    history = desk.client.get(f"{TICKETS}/{created[1]['id']}/history", headers=customer)
    assigned = next(e for e in history.json() if e["event"] == "TicketAssigned")
    assert assigned["data"]["assignee_id"] == "bob"
    assert "reason" not in assigned["data"]


def test_the_first_matching_rule_by_priority_picks_the_team(desk: Desk) -> None:
    desk.configure(
        [
            {"name": "everything", "assigned_team": "Support", "priority": 0},
            {
                "name": "money",
                "conditions": {"category": ["billing", "account"]},
                "assigned_team": "Billing",
                "priority": 10,
            },
        ],
        [
            {"name": "Support", "agents": agents("ann")},
            {"name": "Billing", "agents": agents("bea")},
        ],
    )

    billing = desk.open(category="billing")
    general = desk.open(category="general")

    assert (billing["assigned_team"], billing["assignee_id"]) == ("Billing", "bea")
    assert desk.reason(billing["id"])["rule"] == "money"
    assert (general["assigned_team"], general["assignee_id"]) == ("Support", "ann")


def test_a_ticket_no_rule_matches_stays_unassigned(desk: Desk) -> None:
    desk.configure(
        [support_rule("round_robin", category="technical_support")],
        [{"name": "Support", "agents": agents("ann")}],
    )
    ticket = desk.open(category="billing")
    assert (ticket["assigned_team"], ticket["assignee_id"]) == (None, None)
    assert ticket["status"] == "new"
    assert desk.assignments(ticket["id"]) == []


def test_least_loaded_picks_the_agent_with_fewest_open_tickets(desk: Desk) -> None:
    desk.configure(
        [support_rule("least_loaded", category="technical_support")],
        [{"name": "Support", "agents": agents("ann", "bob", capacity=5)}],
    )
    # Ann already holds two tickets, handed to her by hand.
    for _ in range(2):
        ticket = desk.open(category="billing")  # no rule: unassigned
        assigned = desk.post(ticket["id"], "assign", {"assignee_id": "ann"})
        position = assigned["position"]
    desk.projected(position)

    first = desk.open(category="technical_support")
    second = desk.open(category="technical_support")
    third = desk.open(category="technical_support")

    assert first["assignee_id"] == "bob"
    candidates = {c["agent_id"]: c for c in desk.reason(first["id"])["candidates"]}
    assert (candidates["ann"]["open_tickets"], candidates["bob"]["open_tickets"]) == (
        2,
        0,
    )
    assert "fewest open tickets (0 of capacity 5)" in desk.reason(first["id"])["why"]
    assert second["assignee_id"] == "bob"  # 1 against Ann's 2
    assert third["assignee_id"] == "ann"  # 2 each: the first listed


def test_skills_cover_tags_and_category_with_a_partial_fallback(desk: Desk) -> None:
    desk.configure(
        [support_rule("skills")],
        [
            {
                "name": "Support",
                "agents": agents(
                    "generalist",
                    "billing-1",
                    "vpn-tech",
                    "vpn-billing",
                    billing_1=["billing"],
                    vpn_tech=["VPN", "technical_support"],
                    vpn_billing=["vpn", "billing"],
                ),
            }
        ],
    )

    vpn = desk.open(category="technical_support", tags=["vpn"])
    vpn_invoice = desk.open(category="billing", tags=["VPN"])
    refund = desk.open(category="billing", tags=["refund"])
    printer = desk.open(category="general", tags=["printer"])

    assert vpn["assignee_id"] == "vpn-tech"
    assert "skills cover ['technical_support', 'vpn']" in desk.reason(vpn["id"])["why"]
    assert vpn_invoice["assignee_id"] == "vpn-billing"
    # Nobody has "refund": those with "billing" qualify, the least loaded wins.
    assert refund["assignee_id"] == "billing-1"
    why = desk.reason(refund["id"])["why"]
    assert why.startswith("partial skills match ['billing'] of ['billing', 'refund']")
    # Nobody has any: the least loaded of all.
    assert printer["assignee_id"] == "generalist"
    assert desk.reason(printer["id"])["why"].startswith(
        "no agent has any of the skills"
    )
    skills = {c["agent_id"]: c["skills"] for c in desk.reason(vpn["id"])["candidates"]}
    assert skills["vpn-tech"] == ["technical_support", "vpn"]


def test_when_everyone_is_at_capacity_the_ticket_waits_in_the_team_queue(
    desk: Desk,
) -> None:
    desk.configure(
        [support_rule("round_robin")],
        [{"name": "Support", "agents": agents("ann", "bob", capacity=1)}],
    )
    ann_ticket = desk.open()
    bob_ticket = desk.open()
    assert (ann_ticket["assignee_id"], bob_ticket["assignee_id"]) == ("ann", "bob")

    waiting = desk.open()

    assert (waiting["assigned_team"], waiting["assignee_id"]) == ("Support", None)
    reason = desk.reason(waiting["id"])
    assert reason["picked"] is None
    assert "queued" in reason["why"]
    assert {(c["agent_id"], c["open_tickets"]) for c in reason["candidates"]} == {
        ("ann", 1),
        ("bob", 1),
    }

    # Ann resolves hers: the timers worker then hands out the queue.
    desk.post(ann_ticket["id"], "resolve", {"resolution": "Done"})
    handed = desk.ticketing.tickets.drain_team_queue(desk.tenant, "Support")

    assert [str(t) for t in handed] == [waiting["id"]]
    assert desk.get(waiting["id"])["assignee_id"] == "ann"
    assert desk.reason(waiting["id"])["rule"] == "team queue"


def test_a_manual_escalation_to_another_team_assigns_one_of_its_agents(
    desk: Desk,
) -> None:
    desk.configure(
        [support_rule("round_robin")],
        [
            {"name": "Support", "agents": agents("ann")},
            {"name": "Engineering", "agents": agents("eve", "eli")},
        ],
    )
    ticket = desk.open()
    assert ticket["assignee_id"] == "ann"

    escalated = desk.post(
        ticket["id"], "escalate", {"reason": "Needs a developer", "team": "Engineering"}
    )

    assert (escalated["assigned_team"], escalated["assignee_id"]) == (
        "Engineering",
        "eve",
    )
    assert escalated["escalation_level"] == 1
    response = desk.client.get(f"{TICKETS}/{ticket['id']}/history", headers=desk.agent)
    event = next(e for e in response.json() if e["event"] == "TicketEscalated")
    assert event["data"]["assignment"]["team"] == "Engineering"
    assert event["data"]["assignment"]["picked"] == "eve"
    # Escalating to the team that holds it changes nothing: none is recorded.
    again = desk.post(ticket["id"], "escalate", {"reason": "Still broken"})
    assert (again["assigned_team"], again["assignee_id"]) == ("Engineering", "eve")
    assert (again["escalation_level"], again["version"]) == (1, escalated["version"])


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded"])
def test_approvers_and_agents_away_get_no_tickets(desk: Desk, strategy: str) -> None:
    lead = {"id": "sam", "role": "supervisor", "capacity": 20}
    ana, ben = agents("ana", "ben")
    desk.configure(
        [support_rule(strategy)], [{"name": "Support", "agents": [lead, ana, ben]}]
    )
    first, second, third = (desk.open()["assignee_id"] for _ in range(3))
    assert "sam" not in {first, second, third}
    assert {first, second, third} <= {"ana", "ben"}

    # Ben goes on holiday: everything goes to ana; with ana away too, the
    # ticket waits in the queue although the supervisor has room.
    away = {**ben, "away": True}
    desk.configure(
        [support_rule(strategy)], [{"name": "Support", "agents": [lead, ana, away]}]
    )
    assert {desk.open()["assignee_id"] for _ in range(2)} == {"ana"}
    desk.configure(
        [support_rule(strategy)],
        [{"name": "Support", "agents": [lead, {**ana, "away": True}, away]}],
    )
    queued = desk.open()
    assert (queued["assignee_id"], queued["assigned_team"]) == (None, "Support")
    # A supervisor who wants tickets says so.
    willing = {**lead, "takes_assignments": True}
    desk.configure(
        [support_rule(strategy)],
        [{"name": "Support", "agents": [willing, {**ana, "away": True}, away]}],
    )
    assert desk.open()["assignee_id"] == "sam"


def test_assign_and_escalate_refuse_people_and_teams_nobody_configured(
    desk: Desk,
) -> None:
    desk.configure(
        [],
        [
            {"name": "Support", "agents": agents("ana", "ben")},
            {"name": "Billing", "agents": agents("cat")},
        ],
    )
    ticket = desk.open()
    tid, version = ticket["id"], ticket["version"]
    for action, body, field in (
        ("assign", {"assignee_id": "nobody"}, "assignee_id"),
        ("assign", {"team": "Sales"}, "team"),
        ("assign", {"assignee_id": "ana", "team": "Billing"}, "assignee_id"),
        ("escalate", {"reason": "Boss", "team": "Ghosts"}, "team"),
    ):
        response = desk.client.post(
            f"{TICKETS}/{tid}/{action}", json=body, headers=desk.agent
        )
        assert response.status_code == 422, (action, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field
    unchanged = desk.client.get(f"{TICKETS}/{tid}", headers=desk.agent).json()
    assert unchanged["version"] == version
    assigned = desk.post(tid, "assign", {"assignee_id": "cat", "team": "Billing"})
    assert (assigned["assignee_id"], assigned["status"]) == ("cat", "open")
