"""What-if replay over HTTP, against what the timers and the read model recorded.

Six tickets are opened over HTTP on a movable clock (always-open hours;
normal: first response 30 min, resolution 240; high: 15 and 120; warnings
at 50 %), answered, paused in ``pending``, resolved and reopened at chosen
minutes, while the real timers worker records each warning and breach as
the clock passes it and the projection worker projects everything. Then a
simulation of the tenant's current settings must report exactly the read
model's ``sla_clocks`` figures, and one of a stricter first-response
target more breaches, naming the tickets that change.

    A normal  answered at +10 (FR met, no warning), resolved at +40
    B normal  answered at +20 (FR warned at +15, met), pending +25..+60
    C normal  never answered: FR warned +15, breached +30
    D high    answered at +5 (FR met), resolved at +50, reopened at +55
    E high    never answered: FR warned +7.5, breached +15; RES warned +60
    F normal  the customer writes at +3 (before a first response no reply
              clock starts), an agent answers at +14 (FR met, no warning)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    EPOCH,
    MovableClock,
    Stack,
    events_of,
    running_stack,
    stack_settings,
    wait_until,
)

API = "/api/v1"
TENANT = "whatif"
OTHER = "whatif-other"
SECRET = "simulations-" + "k" * 40
SETTINGS: dict[str, Any] = {
    "sla_config": {
        "normal": {"response": 30, "resolution": 240},
        "high": {"response": 15, "resolution": 120},
        "warning_percent": 50,
    },
}
PERIOD = {
    "period_start": (EPOCH - timedelta(hours=1)).isoformat(),
    "period_end": (EPOCH + timedelta(days=1)).isoformat(),
}


def auth(sub: str, role: str, tenant: str = TENANT) -> dict[str, str]:
    token = issue_token(SECRET, tenant_id=tenant, sub=sub, roles=[role])
    return {"Authorization": f"Bearer {token}"}


ADMIN = auth("admin-1", "admin")
AGENT = auth("agent-1", "agent")
CUSTOMER = auth("cust-1", "customer")


@pytest.fixture(scope="module")
def stack(postgres_server_url: str) -> Iterator[Stack]:
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_stack(
            stack_settings(database_url, broker, jwt_secret=SECRET),
            clock=MovableClock(),
            projections=True,
        ) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[TestClient]:
    with TestClient(create_app(stack.settings, ticketing=stack.ticketing)) as c:
        yield c


def recorded(stack: Stack, kind: type[Ticket.Event]) -> int:
    return len(events_of(stack.ticketing, [kind]))


def at_minute(stack: Stack, minute: float, *, warnings: int, breaches: int) -> None:
    """Move the clock; wait for the timers to have recorded so many alerts."""
    stack.clock.set(EPOCH + timedelta(minutes=minute))
    wait_until(
        lambda: (
            recorded(stack, Ticket.SLAWarning) == warnings
            and recorded(stack, Ticket.SLABreached) == breaches
        ),
        what=f"{warnings} warnings and {breaches} breaches at +{minute}",
    )


def read_model_figures(stack: Stack) -> dict[str, dict[str, dict[str, int]]]:
    """``sla_clocks`` counted as the simulation counts: per target, priority."""
    ticketing = stack.ticketing
    head = ticketing.app.head_position()
    wait_until(lambda: ticketing.read_model.position() >= head, what="projection")
    rows = ticketing.read_model.run(
        "SELECT target, priority, count(*) AS clocks,"
        " count(*) FILTER (WHERE outcome = 'met') AS met,"
        " count(*) FILTER (WHERE breached_at IS NOT NULL OR outcome = 'breached')"
        "   AS breached,"
        " count(*) FILTER (WHERE warned_at IS NOT NULL) AS warned,"
        " count(*) FILTER (WHERE stopped_at IS NULL) AS open"
        " FROM sla_clocks WHERE tenant_id = %s GROUP BY target, priority",
        (TENANT,),
    )
    figures: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows:
        figures.setdefault(row["target"], {})[row["priority"]] = {
            k: row[k] for k in ("clocks", "met", "breached", "warned", "open")
        }
    return figures


def counts_only(sla: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    return {
        target: {
            priority: {k: v for k, v in c.items() if k != "compliance"}
            for priority, c in by_priority.items()
        }
        for target, by_priority in sla.items()
    }


def simulate(client: TestClient, settings: dict[str, Any]) -> dict[str, Any]:
    started = client.post(
        f"{API}/simulations", json={"settings": settings, **PERIOD}, headers=ADMIN
    )
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    deadline = time.monotonic() + 30
    while True:
        body = client.get(location, headers=ADMIN).json()
        if body["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["state"] == "done", body
    assert body["progress"]["tickets_done"] == body["progress"]["tickets_total"] == 6
    return dict(body)


@pytest.fixture(scope="module")
def world(stack: Stack, client: TestClient) -> dict[str, str]:
    put = client.put(f"{API}/settings", json=SETTINGS, headers=ADMIN)
    assert put.status_code == 200, put.text
    ids = {}
    for name, priority in zip("ABCDEF", "nnnhhn", strict=True):
        created = client.post(
            f"{API}/tickets/",
            json={
                "title": f"ticket {name}",
                "description": "what-if",
                "category": "technical_support",
                "priority": {"n": "normal", "h": "high"}[priority],
            },
            headers=CUSTOMER,
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]

    def comment(name: str, who: dict[str, str]) -> None:
        answer = client.post(
            f"{API}/tickets/{ids[name]}/comments", json={"body": "hi"}, headers=who
        )
        assert answer.status_code == 201, answer.text

    def command(name: str, verb: str, body: dict[str, Any]) -> None:
        url = f"{API}/tickets/{ids[name]}/{verb}"
        done = client.post(url, json=body, headers=AGENT)
        assert done.status_code == 200, done.text

    resolve = {"resolution": "done", "resolution_code": "fixed"}
    at_minute(stack, 3, warnings=0, breaches=0)
    comment("F", CUSTOMER)
    at_minute(stack, 5, warnings=0, breaches=0)
    comment("D", AGENT)
    at_minute(stack, 8, warnings=1, breaches=0)  # E's first response
    at_minute(stack, 10, warnings=1, breaches=0)
    comment("A", AGENT)
    at_minute(stack, 14, warnings=1, breaches=0)
    comment("F", AGENT)
    at_minute(stack, 16, warnings=3, breaches=1)  # B, C warned; E breached
    at_minute(stack, 20, warnings=3, breaches=1)
    comment("B", AGENT)
    at_minute(stack, 25, warnings=3, breaches=1)
    command("B", "status", {"status": "pending"})
    at_minute(stack, 31, warnings=3, breaches=2)  # C breached
    at_minute(stack, 40, warnings=3, breaches=2)
    command("A", "resolve", resolve)
    at_minute(stack, 50, warnings=3, breaches=2)
    command("D", "resolve", resolve)
    at_minute(stack, 55, warnings=3, breaches=2)
    command("D", "reopen", {"reason": "not fixed"})
    at_minute(stack, 60, warnings=3, breaches=2)
    command("B", "status", {"status": "in_progress"})
    at_minute(stack, 61, warnings=4, breaches=2)  # E's resolution warned
    return ids


def test_current_settings_replay_exactly_what_the_read_model_shows(
    client: TestClient, stack: Stack, world: dict[str, str]
) -> None:
    current = client.get(f"{API}/settings", headers=ADMIN).json()["document"]
    body = simulate(client, current)
    result = body["result"]
    figures = read_model_figures(stack)
    assert figures["first_response"]["normal"]["breached"] == 1  # C
    assert figures["first_response"]["high"]["breached"] == 1  # E
    assert counts_only(result["actual"]["sla"]) == figures
    assert counts_only(result["proposed"]["sla"]) == figures
    assert result["proposed"]["breaches"] == result["actual"]["breaches"] == 2
    assert result["proposed"]["warnings"] == result["actual"]["warnings"] == 4
    assert result["changed_tickets"] == {"count": 0, "tickets": []}
    assert result["events_replayed"] > 6


def test_a_stricter_first_response_target_reports_more_breaches(
    client: TestClient, stack: Stack, world: dict[str, str]
) -> None:
    stricter = {
        **SETTINGS,
        "sla_config": {
            **SETTINGS["sla_config"],
            "normal": {"response": 8, "resolution": 240},
        },
    }
    result = simulate(client, stricter)["result"]
    actual = result["actual"]["sla"]["first_response"]["normal"]
    proposed = result["proposed"]["sla"]["first_response"]["normal"]
    # A (10 min), B (20), F (14) and C (never) are late for 8 minutes.
    assert (actual["breached"], proposed["breached"]) == (1, 4)
    assert proposed["met"] == 0 and proposed["compliance"] == 0.0
    assert result["proposed"]["breaches"] > result["actual"]["breaches"]
    changed = {t["ticket_id"] for t in result["changed_tickets"]["tickets"]}
    assert changed == {world["A"], world["B"], world["F"]}
    assert result["changed_tickets"]["count"] == 3
    # Nothing was written to the tickets.
    assert figures_unchanged(stack)


def figures_unchanged(stack: Stack) -> bool:
    return read_model_figures(stack)["first_response"]["normal"]["breached"] == 1


def test_simulations_are_for_admins_and_supervisors_of_their_tenant(
    client: TestClient, world: dict[str, str]
) -> None:
    body = {"settings": SETTINGS, **PERIOD}
    refused = client.post(f"{API}/simulations", json=body, headers=AGENT)
    assert refused.status_code == 403
    started = client.post(
        f"{API}/simulations", json=body, headers=auth("lead-1", "supervisor")
    )
    assert started.status_code == 202, started.text
    other = client.get(started.headers["Location"], headers=auth("a", "admin", OTHER))
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"


def test_a_bad_settings_document_is_422_naming_the_field(
    client: TestClient, stack: Stack
) -> None:
    bad = {"sla_config": {"normal": {"response": -5, "resolution": 240}}}
    answer = client.post(
        f"{API}/simulations", json={"settings": bad, **PERIOD}, headers=ADMIN
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert any(
        "sla_config" in ".".join(map(str, e["loc"])) for e in answer.json()["errors"]
    ), answer.json()
    backwards = {**PERIOD, "period_end": PERIOD["period_start"]}
    answer = client.post(
        f"{API}/simulations", json={"settings": SETTINGS, **backwards}, headers=ADMIN
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "period_end"
    with psycopg.connect(stack.settings.database_url or "", row_factory=dict_row) as c:
        states = c.execute("SELECT state FROM simulations").fetchall()
    assert all(s["state"] != "failed" for s in states), states


def test_a_simulation_whose_process_died_reads_failed_once_its_lease_expired(
    client: TestClient, stack: Stack
) -> None:
    assert stack.settings.database_url is not None
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute(
            "INSERT INTO simulations (simulation_id, tenant_id, requested_by, state,"
            " period_start, period_end, settings, tickets_total, tickets_done,"
            " lease_until) VALUES (gen_random_uuid(), %s, 'admin-1', 'running',"
            " now() - interval '1 day', now(), '{}', 10, 4,"
            " now() - interval '1 second') RETURNING simulation_id",
            (TENANT,),
        ).fetchone()
    assert row is not None
    body = client.get(f"{API}/simulations/{row[0]}", headers=ADMIN).json()
    assert body["state"] == "failed"
    assert "ask again" in body["error"]
    assert body["progress"] == {
        "tickets_done": 4,
        "tickets_total": 10,
        "events_read": 0,
    }
