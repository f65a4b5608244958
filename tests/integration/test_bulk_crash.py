"""A bulk job over 1,000 tickets killed halfway and resumed applies each
change exactly once.

End to end over HTTP with real processes: ``ticketing api`` runs the job
(its bulk runner); halfway through, the process is killed with SIGKILL by
its PID, mid-chunk, with saves in flight. A new ``ticketing api`` takes the
job over once the dead one's lease has run out, and finishes it. Every
ticket then has the job's comment once: one event of the job, and every
item marked as a change the job made (a comment the job had saved and then
applied again would be answered as already there, ``changed: false``).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from dotmac.ticketing.consumers.kafka.broker import free_port
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.store.bulk_jobs import outcome_counts
from tests.conftest import fresh_database
from tests.notifications.servers import wait_until

TICKETS = 1000
TENANT = "t-bulk"
AGENT = RequestContext(tenant_id=TENANT, user_id="agent-1", roles=frozenset({"agent"}))


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


class Api:
    """``ticketing api`` (one process: the runner is in it) on a port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.base = f"http://127.0.0.1:{env['PORT']}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dotmac.ticketing.entry.cli", "api"],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        wait_until(self._up, timeout=60, what="the API")

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the API ended: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def test_a_bulk_job_killed_halfway_and_resumed_applies_each_change_once(
    database_url: str, tmp_path: Path
) -> None:
    core = initialize_ticketing({"database_url": database_url})
    try:
        with ThreadPoolExecutor(8) as pool:
            ids = list(
                pool.map(
                    lambda n: str(
                        core.tickets.create_ticket(
                            AGENT, title=f"Outage {n}", customer_id=f"c-{n % 50}"
                        ).ticket.id
                    ),
                    range(TICKETS),
                )
            )
        secret = secrets.token_urlsafe(48)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "TICKETING_JWT_SECRET": secret,
            "PORT": str(free_port()),
            "TICKETING_API_WORKERS": "1",
            "TICKETING_BULK_LEASE_SECONDS": "2",
            "TICKETING_BULK_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "warning",
        }
        api = Api(env, tmp_path / "api.log")
        token = issue_token(secret, tenant_id=TENANT, sub="agent-1", roles=["agent"])
        auth = {"Authorization": f"Bearer {token}"}
        api.start()
        try:
            started = httpx.post(
                f"{api.base}/api/v1/tickets/bulk",
                json={
                    "ids": ids,
                    "action": {"comment": {"body": "We are on it", "internal": True}},
                },
                headers=auth,
                timeout=30,
            )
            assert started.status_code == 202, started.text
            job_url = f"{api.base}/api/v1/jobs/{started.json()['id']}"

            def counts() -> dict[str, Any]:
                answer = httpx.get(job_url, params={"limit": 0}, headers=auth)
                return dict(answer.json()["counts"])

            wait_until(
                lambda: counts()["pending"] <= TICKETS * 0.6,
                timeout=120,
                what="the job to be well under way",
            )
            api.kill()
            halfway = counts_in_database(core, started.json()["id"])
            assert 0 < halfway["pending"] < TICKETS, halfway

            api.start()  # a new process, a new PID: it resumes the job
            wait_until(
                lambda: (
                    httpx.get(job_url, params={"limit": 0}, headers=auth).json()[
                        "state"
                    ]
                    == "finished"
                ),
                timeout=120,
                what="the resumed job to finish",
            )
            job = httpx.get(job_url, params={"limit": TICKETS}, headers=auth).json()
        finally:
            api.stop()
        assert job["counts"]["pending"] == job["counts"]["refused"] == 0
        assert job["counts"]["changed"] == TICKETS
        assert all(item["changed"] for item in job["items"])
        for ticket_id in ids:
            comments = [
                event
                for event in core.app.events.get(UUID(ticket_id))
                if isinstance(event, Ticket.CommentAdded)
            ]
            assert len(comments) == 1, ticket_id
            assert comments[0].correlation_id == job["id"]
    finally:
        core.close()


def counts_in_database(core: Ticketing, job_id: str) -> dict[str, int]:
    with core.app.transaction() as cur:
        return outcome_counts(cur, UUID(job_id))
