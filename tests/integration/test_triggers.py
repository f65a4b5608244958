"""Triggers end to end: over HTTP, with the real broker, relay and timers.

The triggers run in the timers' process (``ticketing-triggers``, and the
firing loop for time triggers), here on a clock the tests move by hand.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.triggers import MAX_DEPTH, parse_cause
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    MovableClock,
    Stack,
    running_stack,
    stack_settings,
    wait_until,
)

API = "/api/v1"
OFFICE = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
SETTINGS = {"business_hours": {"timezone": "UTC", "week": OFFICE, "holidays": []}}
# A Friday afternoon, two office hours before the weekend.
FRIDAY_3PM = datetime.fromisoformat("2031-03-07T15:00:00+00:00")


@dataclass
class Desk:
    stack: Stack
    client: TestClient
    secret: str
    tenant: str

    def auth(self, sub: str, role: str) -> dict[str, str]:
        token = issue_token(self.secret, tenant_id=self.tenant, sub=sub, roles=[role])
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth("admin-1", "admin")

    @property
    def agent(self) -> dict[str, str]:
        return self.auth("agent-1", "agent")

    def call(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        kw.setdefault("headers", self.agent)
        response = self.client.request(method, f"{API}{path}", **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def trigger(self, body: dict[str, Any]) -> str:
        created = self.call("POST", "/triggers", 201, json=body, headers=self.admin)
        return str(created["id"])

    def open(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "Help", "customer_id": "cust-1", "customer_name": "Ada"}
        ticket: dict[str, Any] = self.call("POST", "/tickets/", 201, json=body | fields)
        return ticket

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/tickets/{ticket_id}")
        return found

    def history(self, ticket_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/tickets/{ticket_id}/history")
        return found

    def runs(self, trigger_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call(
            "GET", f"/triggers/{trigger_id}/runs", headers=self.admin
        )
        return found


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_stack(
            stack_settings(database_url, broker, jwt_secret=secrets.token_hex(32)),
            clock=MovableClock(FRIDAY_3PM),
        ) as running,
    ):
        yield running


@pytest.fixture
def desk(stack: Stack) -> Iterator[Desk]:
    app = create_app(stack.settings, ticketing=stack.ticketing)
    assert stack.settings.jwt_secret is not None
    with TestClient(app, raise_server_exceptions=False) as client:
        desk = Desk(
            stack, client, stack.settings.jwt_secret, f"t-{secrets.token_hex(4)}"
        )
        desk.call("PUT", "/settings", json=SETTINGS, headers=desk.admin)
        yield desk


def test_a_customer_comment_sets_off_a_trigger_whose_changes_name_it(
    desk: Desk,
) -> None:
    trigger_id = desk.trigger(
        {
            "name": "Customer answered",
            "when": {"type": "event", "events": ["customer_comment"]},
            "conditions": {"tags": ["vip"]},
            "actions": [
                {"type": "set_priority", "priority": "high"},
                {"type": "internal_note", "body": "#{{ ticket.number }} answered"},
            ],
        }
    )
    vip = desk.open(tags=["vip"])
    other = desk.open()
    customer = desk.auth("cust-1", "customer")
    for ticket in (other, vip):
        desk.call(
            "POST",
            f"/tickets/{ticket['id']}/comments",
            201,
            json={"body": "Still broken"},
            headers=customer,
        )

    wait_until(lambda: desk.ticket(vip["id"])["priority"] == "high", what="the trigger")
    entries = desk.history(vip["id"])
    comment = next(e for e in entries if e["event"] == "CommentAdded")
    made = [e for e in entries if e["actor"]["id"] == f"trigger:{trigger_id}"]
    # Its actions, and the SLA clocks following the new priority.
    assert [e["event"] for e in made if not e["event"].startswith("SLA")] == [
        "PriorityChanged",
        "CommentAdded",
    ]
    for entry in made:
        cause = parse_cause(entry["causation_id"])
        assert cause is not None
        assert (cause.trigger_id, cause.depth) == (trigger_id, 1)
        assert cause.cause == f"{vip['id']}:{comment['version']}"
    note = next(e for e in made if e["event"] == "CommentAdded")["data"]
    assert (note["internal"], note["body"]) == (True, f"#{vip['number']} answered")
    (run,) = desk.runs(trigger_id)
    assert (run["ticket_id"], run["outcome"], run["depth"]) == (vip["id"], "fired", 1)
    # Its own note did not set it off again; the other ticket did not match.
    assert desk.ticket(other["id"])["priority"] == "normal"


def test_a_loop_of_triggers_is_cut_at_the_depth_limit_and_recorded(
    desk: Desk,
) -> None:
    # Each undoes the other: without a limit they would run for ever.
    ping = desk.trigger(
        {
            "name": "ping",
            "when": {"type": "event", "events": ["updated"]},
            "conditions": {"tags": ["pong"]},
            "actions": [{"type": "set_tags", "add": ["ping"], "remove": ["pong"]}],
        }
    )
    pong = desk.trigger(
        {
            "name": "pong",
            "when": {"type": "event", "events": ["updated"]},
            "conditions": {"tags": ["ping"]},
            "actions": [{"type": "set_tags", "add": ["pong"], "remove": ["ping"]}],
        }
    )
    ticket = desk.open()
    desk.call("PUT", f"/tickets/{ticket['id']}", json={"tags": ["pong"]})

    cut = wait_until(
        lambda: [
            r for t in (ping, pong) for r in desk.runs(t) if r["outcome"] == "cut"
        ],
        what="the chain to be cut",
    )
    assert [(r["ticket_id"], r["depth"]) for r in cut] == [
        (ticket["id"], MAX_DEPTH + 1)
    ]
    made = [
        e for e in desk.history(ticket["id"]) if e["actor"]["id"].startswith("trigger:")
    ]
    depths = [parse_cause(e["causation_id"]).depth for e in made]  # type: ignore[union-attr]
    assert depths == list(range(1, MAX_DEPTH + 1))
    # The chain alternates: ping (set off by the agent), pong, ping, ...
    assert [e["actor"]["id"] for e in made] == [
        f"trigger:{ping if depth % 2 else pong}" for depth in depths
    ]
    # The run that was cut names the event of the fifth trigger in a row.
    last = made[-1]
    assert cut[0]["cause"] == f"{ticket['id']}:{last['version']}"
    fired = [r for t in (ping, pong) for r in desk.runs(t) if r["outcome"] == "fired"]
    assert sorted(r["depth"] for r in fired) == list(range(1, MAX_DEPTH + 1))


def deadline_of(stack: Stack, trigger_id: str) -> datetime | None:
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute(
            "SELECT due_at FROM timer_deadlines WHERE kind = 'trigger' AND key = %s",
            (trigger_id,),
        ).fetchone()
    return None if row is None else row[0]


def test_a_time_trigger_fires_on_its_business_hours_due_time(desk: Desk) -> None:
    clock = desk.stack.clock
    clock.set(FRIDAY_3PM)
    trigger_id = desk.trigger(
        {
            "name": "Chase the customer",
            "when": {
                "type": "time",
                "status": "pending",
                "hours": 4,
                "business_hours": True,
            },
            "actions": [
                {"type": "public_reply", "body": "Any news, {{ customer.name }}?"},
                {"type": "set_status", "status": "open"},
            ],
        }
    )
    ticket = desk.open()
    desk.call("POST", f"/tickets/{ticket['id']}/status", json={"status": "pending"})
    # Two office hours on Friday, two on Monday.
    due = datetime.fromisoformat("2031-03-10T11:00:00+00:00")
    assert wait_until(lambda: deadline_of(desk.stack, trigger_id)) == due

    clock.set(due - timedelta(seconds=1))
    desk.call("GET", f"/tickets/{ticket['id']}")  # the API sees the same clock
    assert desk.runs(trigger_id) == []
    clock.set(due)
    (run,) = wait_until(lambda: desk.runs(trigger_id), what="the time trigger")
    fired_at = datetime.fromisoformat(run["at"])
    assert timedelta(0) <= fired_at - due < timedelta(seconds=1)
    assert run["outcome"] == "fired"
    after = desk.ticket(ticket["id"])
    assert after["status"] == "open"
    made = [
        e
        for e in desk.history(ticket["id"])
        if e["actor"]["id"] == f"trigger:{trigger_id}"
    ]
    assert [e["event"] for e in made if not e["event"].startswith("SLA")] == [
        "CommentAdded",
        "StatusChanged",
    ]
    assert made[0]["data"]["body"] == "Any news, Ada?"
    # Out of the status, the trigger waits for the next wait.
    wait_until(
        lambda: deadline_of(desk.stack, trigger_id) is None, what="the row to go"
    )
