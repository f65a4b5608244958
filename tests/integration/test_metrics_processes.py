"""/metrics of real processes: the API over several uvicorn workers adds up
every worker's counts; a worker process serves its own on its port."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dotmac.ticketing.consumers.kafka.broker import free_port
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database
from tests.integration.worker_process import WorkerProcess
from tests.metrics import sample
from tests.notifications.servers import wait_until

CREATES = 12


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return {**env, **extra}


def _scrape(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def test_the_api_counts_the_requests_of_all_its_processes(
    database_url: str, tmp_path: Path
) -> None:
    secret = secrets.token_urlsafe(48)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(database_url, TICKETING_JWT_SECRET=secret, PORT=str(port))
    command = [sys.executable, "-m", "dotmac.ticketing.entry.cli", "api"]
    with open(tmp_path / "api.log", "wb") as log:
        api = subprocess.Popen(
            [*command, "--workers", "2"], env=env, stdout=log, stderr=log
        )
    try:
        wait_until(
            lambda: _scrape(f"{base}/health") is not None, timeout=60, what="the API"
        )
        token = issue_token(secret, tenant_id="t-1", sub="cust-1", roles=["customer"])
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            for n in range(CREATES):
                created = client.post("/api/v1/tickets/", json={"title": f"Help {n}"})
                assert created.status_code == 201, created.text

        # Whichever process answers the scrape, it answers for both.
        for _ in range(4):
            text = _scrape(f"{base}/metrics")
            assert text is not None
            labels = {"method": "POST", "route": "/api/v1/tickets/", "status": "201"}
            assert sample(text, "ticketing_http_requests_total", **labels) == CREATES
            assert sample(text, "ticketing_event_store_saves_total") >= CREATES
    finally:
        api.terminate()
        api.wait(20)


def test_a_worker_serves_its_metrics_on_its_port(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    worker = WorkerProcess(
        "projections",
        _env(
            database_url,
            TICKETING_METRICS_PORT=str(port),
            TICKETING_WORKER_HEARTBEAT_SECONDS="0.2",
        ),
        tmp_path,
    )
    ticketing = initialize_ticketing({"database_url": database_url})
    customer = RequestContext(
        tenant_id="t-1", user_id="cust-1", roles=frozenset({"customer"})
    )
    worker.start()
    try:
        for n in range(3):
            ticketing.tickets.create_ticket(customer, title=f"Help {n}")
        url = f"http://127.0.0.1:{port}/metrics"

        def caught_up() -> bool:
            text = _scrape(url)
            return (
                text is not None
                and "ticketing_projection_lag_events" in text
                and sample(
                    text, "ticketing_projection_lag_events", projection="tickets"
                )
                == 0
                and ticketing.read_model.wait_for(ticketing.app.head_position(), 0.01)
            )

        wait_until(caught_up, timeout=60, what="the worker's lag at zero on /metrics")
        text = _scrape(url)
        assert text is not None
        assert (
            sample(text, "ticketing_projection_lag_seconds", projection="tickets") == 0
        )
    finally:
        worker.stop()
        ticketing.close()
