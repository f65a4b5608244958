"""Workers whose database connections are killed restart, and /ready says so.

The projection worker and the relay run as in ``ticketing dev`` (threads
beside the API), on real PostgreSQL and the session's broker. Their
connections are terminated by the server (``pg_terminate_backend``, what a
database fail-over or an idle-connection reaper does); each restarts and
carries on, while ``GET /ready`` answers 503 naming the worker that is down
and 200 again once both are back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import DevBroker
from dotmac.ticketing.consumers.kafka.topics import TICKET_EVENTS
from dotmac.ticketing.entry.processes import start_projection_worker, start_relay
from dotmac.ticketing.projections.status import projection_statuses
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from tests.kafka_fixtures import read_topic

TENANT = "tenant-restarts"


@pytest.fixture
def settings(isolated_database_url: str, kafka: DevBroker, jwt_secret: str) -> Settings:
    return Settings(
        database_url=isolated_database_url,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        jwt_secret=jwt_secret,
        worker_heartbeat_seconds=0.2,
        ready_stale_seconds=5,
        # Long enough for the test to see the worker down between polls,
        # also while the API's own pool reconnects after the same kill on a
        # loaded machine.
        worker_restart_initial_seconds=3.0,
        ready_workers="projections,relay",
    )


@pytest.fixture
def core(settings: Settings) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing(settings)
    yield ticketing
    ticketing.close()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def kill_worker_connections(database_url: str) -> int:
    """Terminate the workers' event-store connections (not their heartbeats').

    The library's connections carry no application name; the API's share
    that, and its pool checks a connection before use.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = ''"
        ).fetchall()
    return len(rows)


def test_killed_connections_restart_the_workers_and_ready_reports_them(
    settings: Settings, core: Ticketing, kafka: DevBroker, jwt_secret: str
) -> None:
    assert settings.database_url is not None
    token = issue_token(jwt_secret, tenant_id=TENANT, sub="agent-1", roles=["agent"])
    headers = {"Authorization": f"Bearer {token}"}
    workers = [start_projection_worker(settings), start_relay(settings)]
    try:
        with TestClient(create_app(settings, ticketing=core)) as client:
            wait_for(
                lambda: client.get("/ready").status_code == 200, 30, "ready at start"
            )

            def create(title: str) -> str:
                response = client.post(
                    "/api/v1/tickets/",
                    json={"title": title, "customer_id": "c-1"},
                    headers=headers,
                )
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

            def listed(title: str) -> bool:
                response = client.get(
                    "/api/v1/tickets/", params={"q": title}, headers=headers
                )
                return response.status_code == 200 and any(
                    item["title"] == title for item in response.json()["items"]
                )

            create("before the outage")
            wait_for(lambda: listed("before the outage"), 30, "the first ticket")

            assert kill_worker_connections(settings.database_url) > 0

            def down() -> dict[str, Any] | None:
                response = client.get("/ready")
                if response.status_code != 503:
                    return None
                body = response.json()
                named = {w["worker"] for w in body.get("workers", [])}
                return body if "projections" in named else None

            problem = wait_for(down, 10, "/ready to report the projections down")
            assert problem["type"].endswith("/not-ready")
            assert "projections is down" in problem["detail"]

            wait_for(lambda: client.get("/ready").status_code == 200, 30, "ready again")
            ticket_id = create("after the outage")
            wait_for(lambda: listed("after the outage"), 30, "the second ticket")
            head = core.app.head_position()
            wait_for(
                lambda: projection_statuses(core.app.datastore)[0].position >= head,
                10,
                "the projection to reach the head",
            )

        published = read_topic(
            kafka.bootstrap_servers,
            TICKET_EVENTS,
            until=lambda records: any(
                json.loads(r.value)["subject"] == ticket_id for r in records
            ),
        )
        assert any(json.loads(r.value)["subject"] == ticket_id for r in published)
    finally:
        for worker in reversed(workers):
            worker.stop()


def test_a_consumer_is_not_ready_until_its_group_assigned_it_partitions(
    settings: Settings, core: Ticketing, jwt_secret: str
) -> None:
    """Ready means the events are handled: not while the group still forms.

    On a fresh broker a consumer waits seconds for its first assignment; a
    walkthrough that trusted an early 200 saw its notifications late.
    """
    from dotmac.ticketing.entry.processes import start_notifier

    joining = settings.model_copy(
        update={"ready_workers": "notifier", "kafka_session_timeout_ms": 6000}
    )
    worker = start_notifier(joining, config={})
    try:
        with TestClient(create_app(joining, ticketing=core)) as client:

            def not_ready_reason() -> str | None:
                response = client.get("/ready")
                if response.status_code != 503:
                    return None
                return str(response.json()["detail"])

            reason = wait_for(not_ready_reason, 10, "/ready to answer 503")
            if "has not reported" in reason:  # before the first heartbeat
                reason = wait_for(
                    lambda: (r := not_ready_reason()) and "joining" in r and r,
                    10,
                    "the notifier to report it is joining",
                )
            assert "joining its consumer group" in reason
            wait_for(
                lambda: client.get("/ready").status_code == 200, 30, "ready once joined"
            )
    finally:
        worker.stop()
