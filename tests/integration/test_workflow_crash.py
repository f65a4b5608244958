"""A workflow worker killed between a step's effect and its record.

``ticketing worker workflows`` runs as a child process (the production
command) beside the API, the relay and the billing system's stand-in. The
billing workflow of a ticket reaches ``apply_adjustment``; the billing
system records the request and then SIGKILLs the worker before answering,
so the adjustment happened over there and nothing was recorded here. After
a restart the worker consumes the same event again and runs the step
again: the billing system sees the same ``Idempotency-Key`` (and, as a
receiver honouring the header does, applies the adjustment once), the
ticket records the step once, and the workflow completes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.service.clock import FileClock
from tests.conftest import fresh_database
from tests.integration.external_systems import Call, Reply, external_system
from tests.integration.timers_running import EPOCH
from tests.integration.worker_process import WorkerProcess
from tests.integration.workflow_stack import (
    API,
    events_named,
    new_tenant,
    running_workflow_stack,
    step_of,
    workflow_settings,
    workflows_env,
)

STEPS = [
    "verify_account",
    "review_billing_history",
    "calculate_adjustment",
    "approve_adjustment",
    "apply_adjustment",
    "confirm_with_customer",
]


class KillingBillingSystem:
    """Answers the billing hooks; the first adjustment request kills the worker.

    Applies an adjustment once per Idempotency-Key, as a receiver honouring
    the header does.
    """

    def __init__(self) -> None:
        self.worker: WorkerProcess | None = None
        self.applied: dict[str, dict[str, Any]] = {}

    def answer(self, call: Call, seen: int) -> Reply:
        if call.path == "/accounts":
            return Reply(body={"account_id": "ACC-9", "status": "active"})
        if call.path == "/history":
            return Reply(
                body={"invoices": [{"id": "INV-9", "amount": 42.5, "disputed": True}]}
            )
        if call.path == "/adjustments":
            key = call.header("Idempotency-Key") or ""
            self.applied.setdefault(key, {"reference": f"ADJ-{len(self.applied) + 1}"})
            if seen == 0:
                # Effect done (the call is on record and applied), and the
                # worker dies before it hears the answer or records the step.
                assert self.worker is not None
                os.kill(self.worker.pid, signal.SIGKILL)
            return Reply(body=self.applied[key])
        return Reply(404, "no such hook")


def test_a_step_killed_after_its_effect_is_recorded_once_after_the_restart(
    postgres_server_url: str, tmp_path: Path
) -> None:
    clock = FileClock(tmp_path / "clock")
    clock.set(EPOCH)
    billing = KillingBillingSystem()
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        external_system(billing.answer) as system,
    ):
        settings = workflow_settings(database_url, broker, clock_file=clock.path)
        worker = WorkerProcess("workflows", workflows_env(settings), tmp_path)
        billing.worker = worker
        with running_workflow_stack(
            settings, clock=clock, workflows=False, timers=False
        ) as stack:
            worker.start()
            try:
                tenant = new_tenant("crash")
                stack.put_settings(
                    tenant,
                    {
                        "integrations": {
                            hook: {"url": system.url(path), "timeout_seconds": 5}
                            for hook, path in (
                                ("account_lookup", "/accounts"),
                                ("billing_history", "/history"),
                                ("apply_adjustment", "/adjustments"),
                            )
                        },
                        # 42.50 is approved automatically.
                        "workflows": {"options": {"billing": {"approval_above": 100}}},
                    },
                )
                ticket_id = stack.open_ticket(
                    tenant, title="Refund the duplicate charge", category="billing"
                )["id"]

                # Killed between the effect and its record.
                assert worker.wait_for_exit(timeout=30) == -signal.SIGKILL
                (first,) = system.received("/adjustments")
                flow = stack.workflow(tenant, ticket_id)
                assert flow is not None
                assert flow["current_step"] == "apply_adjustment"
                assert step_of(flow, "apply_adjustment")["state"] == "running"
                history = stack.history(tenant, ticket_id)
                assert "apply_adjustment" not in [
                    e["data"]["step"]
                    for e in events_named(history, "WorkflowStepCompleted")
                ]

                worker.start()
                flow = stack.wait_until_completed(tenant, ticket_id)
            except BaseException:
                print(f"--- ticketing worker workflows\n{worker.tail()}")
                raise
            finally:
                worker.stop()
            history = stack.history(tenant, ticket_id)
            seen_by_customer = stack.client.get(
                f"{API}/tickets/{ticket_id}/comments", headers=stack.customer(tenant)
            ).json()
        calls = system.received("/adjustments")

    # The other system saw the same key twice, so it applied the adjustment once.
    assert len(calls) == 2
    key = f"{ticket_id}:apply_adjustment:1"
    assert [c.header("Idempotency-Key") for c in calls] == [key, key]
    assert calls[1].body == first.body
    assert billing.applied == {key: {"reference": "ADJ-1"}}
    # The step is on the ticket once, with the answer of the repeated call.
    completed = [
        e["data"]["step"] for e in events_named(history, "WorkflowStepCompleted")
    ]
    assert completed == STEPS
    assert len(events_named(history, "WorkflowCompleted")) == 1
    assert events_named(history, "WorkflowStepFailed") == []
    apply = step_of(flow, "apply_adjustment")
    assert apply["data"]["confirmation"] == {"reference": "ADJ-1"}
    assert apply["attempt"] is None and apply["state"] == "completed"
    assert [c["body"] for c in seen_by_customer] == [
        "We have reviewed your billing history and applied an adjustment of"
        " 42.50 EUR to your account (reference ADJ-1)."
    ]
    assert worker.starts == 2
