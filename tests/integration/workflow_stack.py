"""Helpers of the workflow tests: the service over HTTP with its workers.

One :class:`WorkflowStack` is the API (FastAPI's TestClient over the real
app), the relay publishing to the bundled broker, and the workers the
workflows need: the workflow runtime (on a thread here, or a child
process in the crash and entry point tests) and the timers (retries and
wake-ups), all on one movable clock. Tests talk to it only over HTTP, as
a person would, and read the workflow back through ``GET …/workflow``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import service_topics
from dotmac.ticketing.consumers.supervision import RunningWorker, start_in_thread
from dotmac.ticketing.entry.processes import start_relay, start_timers, workflows_main
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.workflows import WorkflowRegistry
from tests.conftest import fresh_database
from tests.integration.timers_running import (
    PARTITIONS,
    MovableClock,
    stack_settings,
    wait_until,
    worker_env,
)

API = "/api/v1"
JWT_SECRET = "workflow-tests-" + "s" * 40


class SettableClock(Protocol):
    """A clock a test moves: :class:`MovableClock` (one process) or
    ``service.clock.FileClock`` (shared with child processes)."""

    def __call__(self) -> datetime: ...

    def set(self, moment: datetime) -> Any: ...


def workflow_settings(database_url: str, broker: DevBroker, **extra: Any) -> Settings:
    """The timers' test settings, plus a JWT secret and hooks on loopback."""
    return stack_settings(
        database_url,
        broker,
        jwt_secret=JWT_SECRET,
        # The stand-ins for the other systems listen on 127.0.0.1.
        integrations_allow_private=True,
        **extra,
    )


def new_tenant(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class WorkflowStack:
    """The API and the workers, driven over HTTP on one movable clock."""

    settings: Settings
    ticketing: Ticketing
    clock: SettableClock
    client: TestClient
    workers: list[Any] = field(default_factory=list)

    # -- who is asking ----------------------------------------------------

    def auth(self, tenant: str, sub: str, *roles: str) -> dict[str, str]:
        token = issue_token(
            JWT_SECRET, tenant_id=tenant, sub=sub, roles=list(roles) or ["agent"]
        )
        return {"Authorization": f"Bearer {token}"}

    def agent(self, tenant: str, agent_id: str = "agent-1") -> dict[str, str]:
        return self.auth(tenant, agent_id, "agent")

    def supervisor(self, tenant: str) -> dict[str, str]:
        return self.auth(tenant, "lead-1", "supervisor")

    def customer(self, tenant: str, customer_id: str = "cust-1") -> dict[str, str]:
        return self.auth(tenant, customer_id, "customer")

    # -- requests ---------------------------------------------------------

    def put_settings(self, tenant: str, document: dict[str, Any]) -> None:
        response = self.client.put(
            f"{API}/settings",
            json=document,
            headers=self.auth(tenant, "admin-1", "admin"),
        )
        assert response.status_code == 200, response.text

    def open_ticket(
        self, tenant: str, customer_id: str = "cust-1", **body: Any
    ) -> dict[str, Any]:
        """A customer opens a ticket; its JSON."""
        response = self.client.post(
            f"{API}/tickets/", json=body, headers=self.customer(tenant, customer_id)
        )
        assert response.status_code == 201, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    def ticket(self, tenant: str, ticket_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"{API}/tickets/{ticket_id}", headers=self.agent(tenant)
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def comments(self, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
        response = self.client.get(
            f"{API}/tickets/{ticket_id}/comments", headers=self.agent(tenant)
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def history(self, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
        response = self.client.get(
            f"{API}/tickets/{ticket_id}/history", headers=self.agent(tenant)
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def workflow(self, tenant: str, ticket_id: str) -> dict[str, Any] | None:
        """``GET …/workflow`` as an agent; None while it has not started."""
        response = self.client.get(
            f"{API}/tickets/{ticket_id}/workflow", headers=self.agent(tenant)
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def wait_for_workflow(
        self,
        tenant: str,
        ticket_id: str,
        condition: Callable[[dict[str, Any]], bool],
        what: str,
        *,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        """Poll ``GET …/workflow`` until ``condition`` holds; that workflow.

        On time-out, the message shows where the workflow stood.
        """
        last: list[dict[str, Any] | None] = [None]

        def check() -> dict[str, Any] | None:
            flow = self.workflow(tenant, ticket_id)
            last[0] = flow
            return flow if flow is not None and condition(flow) else None

        try:
            return wait_until(check, timeout=timeout, what=what)
        except AssertionError as error:
            raise AssertionError(f"{error}; the workflow: {summary(last[0])}") from None

    def wait_until_waiting_on(
        self, tenant: str, ticket_id: str, step: str, *, message: str = ""
    ) -> dict[str, Any]:
        return self.wait_for_workflow(
            tenant,
            ticket_id,
            lambda f: (
                f["status"] == "waiting"
                and f["current_step"] == step
                and message in (step_of(f, step)["message"] or "")
            ),
            f"the workflow to wait on {step}",
        )

    def wait_until_failed_at(
        self, tenant: str, ticket_id: str, step: str, *, attempt: int = 1
    ) -> dict[str, Any]:
        return self.wait_for_workflow(
            tenant,
            ticket_id,
            lambda f: (
                f["status"] == "failed"
                and f["current_step"] == step
                and step_of(f, step)["attempt"] == attempt
            ),
            f"attempt {attempt} of {step} to fail",
        )

    def wait_until_completed(self, tenant: str, ticket_id: str) -> dict[str, Any]:
        return self.wait_for_workflow(
            tenant,
            ticket_id,
            lambda f: f["status"] == "completed",
            "the workflow to complete",
        )


def step_of(flow: dict[str, Any], name: str) -> dict[str, Any]:
    """One step of a ``GET …/workflow`` answer, by name."""
    found: dict[str, Any] = next(s for s in flow["steps"] if s["name"] == name)
    return found


def summary(flow: dict[str, Any] | None) -> str:
    """Where a workflow stands, in one line (for failure messages)."""
    if flow is None:
        return "not started"
    steps = ", ".join(
        f"{s['name']}={s['state']}"
        + (f" ({s['error'] or s['message']})" if s["state"] != "pending" else "")
        for s in flow["steps"]
    )
    return (
        f"{flow['workflow_type']} {flow['status']} at {flow['current_step']}: {steps}"
    )


def events_named(history: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in history if entry["event"] == name]


def start_workflow_worker(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    registry: WorkflowRegistry | None = None,
) -> RunningWorker:
    """The workflow runtime on a thread (optionally with a registry of our own)."""
    return start_in_thread(
        "workflows",
        workflows_main(settings, clock=clock, workflows=registry),
    )


@contextmanager
def running_workflow_stack(
    settings: Settings,
    *,
    clock: SettableClock,
    workflows: bool = True,
    timers: bool = True,
    registry: WorkflowRegistry | None = None,
) -> Iterator[WorkflowStack]:
    """The API in this process; the relay, timers and workflows on threads.

    ``workflows=False`` leaves the runtime to the test (a child process);
    ``registry`` is the workflow types of the API and the threaded runtime
    (default: the built-ins and the installed ones).
    """
    assert settings.kafka_bootstrap_servers is not None
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap_servers, service_topics(PARTITIONS))
    )
    with ExitStack() as cleanup:
        ticketing = initialize_ticketing(settings, clock=clock, workflows=registry)
        cleanup.callback(ticketing.close)
        stack = WorkflowStack(
            settings,
            ticketing,
            clock,
            cleanup.enter_context(
                TestClient(
                    create_app(settings, ticketing=ticketing),
                    raise_server_exceptions=False,
                )
            ),
        )
        for start in (
            lambda: start_relay(settings, idle_wait=0.2),
            (lambda: start_timers(settings, clock=clock)) if timers else None,
            (
                (
                    lambda: start_workflow_worker(
                        settings, clock=clock, registry=registry
                    )
                )
                if workflows
                else None
            ),
        ):
            if start is not None:
                worker = start()
                stack.workers.append(worker)
                cleanup.callback(worker.stop)
        yield stack


def workflows_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment of ``ticketing worker workflows`` configured like ours."""
    return worker_env(
        settings,
        TICKETING_INTEGRATIONS_ALLOW_PRIVATE="true",
        **variables,
    )


def pythonpath_with(path: Path) -> str:
    """``PYTHONPATH`` with ``path`` first (keeping what the test run has)."""
    rest = os.environ.get("PYTHONPATH")
    return str(path) if not rest else f"{path}{os.pathsep}{rest}"


@contextmanager
def fresh_workflow_stack(
    postgres_server_url: str, **settings: Any
) -> Iterator[WorkflowStack]:
    """The whole stack on a fresh database and broker, on a clock moved by
    hand; ``settings`` over the tests' own."""
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_workflow_stack(
            workflow_settings(database_url, broker, **settings),
            clock=MovableClock(),
        ) as running,
    ):
        yield running
