"""Custom workflows: the guide's ``CustomWorkflow``, by entry point and in code.

The entry point test installs the workflow guide's example the way a platform
team's package would: its module and a ``*.dist-info`` directory whose
``entry_points.txt`` declares it under ``dotmac_ticketing.workflows``
(written from the workflow guide's ``pyproject.toml`` snippet), in a directory on
``PYTHONPATH``. The production command, ``ticketing worker workflows``, runs
as a child process and finds it there; the tenant selects it for a category
and a ticket opened over HTTP runs it to the end, its hook answered by a
local HTTP server. The code is read from docs/workflows.md, so the guide shows
exactly what is tested.

The in-code tests register workflows with ``registry.register_workflow``
and hand the registry to the runtime on a thread.
"""

from __future__ import annotations

import re
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.builtin_workflows import BUILTIN_WORKFLOWS
from dotmac.ticketing.domain.workflow import (
    TicketAction,
    TicketWorkflow,
    WorkflowResult,
)
from dotmac.ticketing.service.clock import FileClock
from dotmac.ticketing.service.workflows import ENTRY_POINT_GROUP, registry_with
from tests.conftest import fresh_database
from tests.integration.external_systems import (
    Call,
    ExternalSystem,
    Reply,
    external_system,
)
from tests.integration.timers_running import (
    EPOCH,
    MovableClock,
    wait_until,
)
from tests.integration.worker_process import WorkerProcess
from tests.integration.workflow_stack import (
    API,
    WorkflowStack,
    events_named,
    new_tenant,
    pythonpath_with,
    running_workflow_stack,
    step_of,
    workflow_settings,
    workflows_env,
)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
MODULE = "acme_workflows"
STEPS = ["step1", "step2", "step3"]


def readme_block(language: str, containing: str) -> str:
    """The workflow guide's fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", GUIDE.read_text(), re.S | re.M)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"the guide has {len(found)} such {language} blocks"
    return found[0]


def install_readme_example(root: Path) -> Path:
    """The workflow guide's module and its entry point, installed under ``root``."""
    root.mkdir()
    (root / f"{MODULE}.py").write_text(
        readme_block("python", "class CustomWorkflow(TicketWorkflow)")
    )
    pyproject = tomllib.loads(readme_block("toml", ENTRY_POINT_GROUP))
    points = pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    info = root / f"{MODULE}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {MODULE}\nVersion: 1.0\n"
    )
    lines = [f"{name} = {target}" for name, target in points.items()]
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n"
    )
    return root


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example installed in a directory on this process's path too."""
    root = install_readme_example(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop(MODULE, None)


def crm_answer(call: Call, seen: int) -> Reply:
    return Reply(body={"customer": "ACME Corp", "tier": "gold"})


def custom_settings(crm_url: str) -> dict[str, Any]:
    return {
        "workflows": {
            "by_category": {
                "technical_support": "technical_support",
                "billing": "billing",
                "service_request": "custom_workflow",
            }
        },
        "integrations": {"custom_crm": {"url": crm_url, "timeout_seconds": 2}},
    }


def assert_ran_the_readme_example(
    stack: WorkflowStack, tenant: str, ticket_id: str, crm: ExternalSystem
) -> None:
    flow = stack.wait_until_completed(tenant, ticket_id)
    assert flow["workflow_type"] == "custom_workflow"
    assert [(s["name"], s["state"]) for s in flow["steps"]] == [
        (name, "completed") for name in STEPS
    ]
    assert step_of(flow, "step1")["data"] == {"title_words": 4}
    assert step_of(flow, "step2")["data"] == {"customer": "ACME Corp", "tier": "gold"}
    step3 = step_of(flow, "step3")
    assert step3["message"] == "told the customer"
    assert step3["actions"] == [{"kind": "comment", "body": "Thank you, we are on it."}]
    (call,) = crm.received("/crm")
    assert call.header("Idempotency-Key") == f"{ticket_id}:step2:1"
    assert call.json() == {"ticket_id": ticket_id, "title": "Please add three seats"}
    seen_by_customer = stack.client.get(
        f"{API}/tickets/{ticket_id}/comments", headers=stack.customer(tenant)
    ).json()
    assert [c["body"] for c in seen_by_customer] == ["Thank you, we are on it."]
    history = stack.history(tenant, ticket_id)
    assert [
        e["data"]["step"] for e in events_named(history, "WorkflowStepCompleted")
    ] == STEPS
    assert len(events_named(history, "WorkflowCompleted")) == 1


def test_the_readme_example_installed_by_entry_point_runs_in_the_worker(
    postgres_server_url: str, installed: Path, tmp_path: Path
) -> None:
    # This process finds it the same way (the API shows its steps).
    assert "custom_workflow" in registry_with(BUILTIN_WORKFLOWS).names()
    clock = FileClock(tmp_path / "clock")
    clock.set(EPOCH)
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        external_system(crm_answer) as crm,
    ):
        settings = workflow_settings(database_url, broker, clock_file=clock.path)
        worker = WorkerProcess(
            "workflows",
            workflows_env(settings, PYTHONPATH=pythonpath_with(installed)),
            tmp_path,
        )
        with running_workflow_stack(
            settings, clock=clock, workflows=False, timers=False
        ) as stack:
            worker.start()
            try:
                tenant = new_tenant("custom")
                stack.put_settings(tenant, custom_settings(crm.url("/crm")))
                ticket_id = stack.open_ticket(
                    tenant, title="Please add three seats", category="service_request"
                )["id"]
                assert_ran_the_readme_example(stack, tenant, ticket_id, crm)
            except BaseException:
                print(f"--- ticketing worker workflows\n{worker.tail()}")
                raise
            finally:
                worker.stop()
    assert worker.process is not None and worker.process.returncode == 0


# -- registered in code ----------------------------------------------------------


class CustomerReplyWorkflow(TicketWorkflow):
    """One step: look the customer up (slowly), then wait for their reply."""

    def __init__(self) -> None:
        super().__init__(workflow_type="customer_reply", steps=["await_reply"])

    async def execute_step(self, step_name: str) -> WorkflowResult:
        ticket = self.context.ticket
        await self.context.integrations.call(
            "custom_crm",
            {"ticket_id": ticket["id"], "title": ticket["title"]},
            idempotency_key=self.context.idempotency_key(step_name),
        )
        replies = [c for c in ticket["comments"] if c["author_role"] == "customer"]
        if not replies:
            return WorkflowResult(
                success=True,
                step_name=step_name,
                message="waiting for the customer's reply",
                requires_action=True,
            )
        return WorkflowResult(
            success=True, step_name=step_name, data={"reply": replies[-1]["body"]}
        )


class EarlyCloseWorkflow(TicketWorkflow):
    """A custom workflow with a bug: it closes tickets that are not resolved."""

    def __init__(self) -> None:
        super().__init__(workflow_type="early_close", steps=["close_at_once"])

    async def execute_step(self, step_name: str) -> WorkflowResult:
        return WorkflowResult(
            success=True,
            step_name=step_name,
            message="closing",
            actions=[
                TicketAction("comment", {"body": "Closing this now."}),
                TicketAction("close"),
            ],
        )


@pytest.fixture
def example(installed: Path) -> ModuleType:
    """The workflow guide's module, imported (as a program would import its own)."""
    import importlib

    return importlib.import_module(MODULE)


@contextmanager
def stack_registering(
    postgres_server_url: str, *workflows: type[TicketWorkflow]
) -> Iterator[WorkflowStack]:
    """A stack whose registry has the built-ins and ``workflows``, in code."""
    registry = registry_with(BUILTIN_WORKFLOWS, entry_point_group=None)
    assert "custom_workflow" not in registry.names()
    for workflow in workflows:
        registry.register_workflow(workflow)
    with (
        fresh_database(postgres_server_url) as database_url,
        start_dev_broker() as broker,
        running_workflow_stack(
            workflow_settings(database_url, broker),
            clock=MovableClock(),
            timers=False,
            registry=registry,
        ) as running,
    ):
        yield running


@pytest.fixture
def code_stack(
    postgres_server_url: str, example: ModuleType
) -> Iterator[WorkflowStack]:
    """A stack whose registry has the workflows registered in code only."""
    with stack_registering(
        postgres_server_url,
        example.CustomWorkflow,
        CustomerReplyWorkflow,
        EarlyCloseWorkflow,
    ) as running:
        assert "custom_workflow" in running.ticketing.workflows.registry.names()
        yield running


def test_a_workflow_registered_in_code_runs(code_stack: WorkflowStack) -> None:
    stack = code_stack
    with external_system(crm_answer) as crm:
        tenant = new_tenant("code")
        stack.put_settings(tenant, custom_settings(crm.url("/crm")))
        ticket_id = stack.open_ticket(
            tenant, title="Please add three seats", category="service_request"
        )["id"]
        assert_ran_the_readme_example(stack, tenant, ticket_id, crm)


def test_a_reply_that_comes_while_the_waiting_step_runs_wakes_it(
    code_stack: WorkflowStack,
) -> None:
    """The customer answers after the step read the ticket and before its
    wait is recorded: that answer must still end the wait."""
    stack = code_stack
    looked_up = threading.Event()
    answered = threading.Event()

    def slow_crm(call: Call, seen: int) -> Reply:
        if seen == 0:  # the first run: hold it until the customer answered
            looked_up.set()
            answered.wait(10)
        return Reply(body={"customer": "ACME Corp"})

    with external_system(slow_crm) as crm:
        tenant = new_tenant("race")
        settings = custom_settings(crm.url("/crm"))
        settings["workflows"]["default"] = "customer_reply"
        stack.put_settings(tenant, settings)
        ticket_id = stack.open_ticket(tenant, title="Where is my order?")["id"]
        wait_until(looked_up.is_set, what="the step to run")
        reply = stack.client.post(
            f"{API}/tickets/{ticket_id}/comments",
            json={"body": "Order 4711, placed on Monday."},
            headers=stack.customer(tenant),
        )
        assert reply.status_code == 201, reply.text
        answered.set()

        flow = stack.wait_until_completed(tenant, ticket_id)
    assert step_of(flow, "await_reply")["data"] == {
        "reply": "Order 4711, placed on Monday."
    }


def test_changes_the_ticket_refuses_fail_the_step_visibly(
    code_stack: WorkflowStack,
) -> None:
    """Not a dead letter and a workflow stuck "running": a failed step that
    says why, and none of the step's changes."""
    stack = code_stack
    tenant = new_tenant("refused")
    stack.put_settings(tenant, {"workflows": {"default": "early_close"}})
    ticket_id = stack.open_ticket(tenant, title="Close me too early")["id"]

    flow = stack.wait_until_failed_at(tenant, ticket_id, "close_at_once")

    failed = step_of(flow, "close_at_once")
    assert failed["error"] == (
        "the ticket refused the step's changes: cannot close: ticket is new"
    )
    assert failed["retry_at"] is not None
    ticket = stack.ticket(tenant, ticket_id)
    assert (ticket["status"], ticket["comment_count"]) == ("new", 0)
    names = [e["event"] for e in stack.history(tenant, ticket_id)]
    assert names.count("WorkflowStepFailed") == 1
    assert "CommentAdded" not in names


def test_a_custom_step_whose_hook_is_not_configured_waits_for_a_person(
    postgres_server_url: str,
) -> None:
    """The runtime hands a step to a person when its system is not there,
    as the built-in steps do themselves; a person completes it."""
    with stack_registering(postgres_server_url, CustomerReplyWorkflow) as stack:
        hand_over_and_complete(stack)


def hand_over_and_complete(stack: WorkflowStack) -> None:
    tenant = new_tenant("nohook")
    stack.put_settings(tenant, {"workflows": {"default": "customer_reply"}})
    ticket_id = stack.open_ticket(tenant, title="Where is my order?")["id"]

    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "await_reply", message="no integration 'custom_crm'"
    )
    waiting = step_of(flow, "await_reply")
    assert (
        "configure 'custom_crm' in the settings section 'integrations'"
        in (waiting["message"])
    )
    assert waiting["data"]["integration"] == "custom_crm"
    assert events_named(stack.history(tenant, ticket_id), "WorkflowStepFailed") == []
    done = stack.client.post(
        f"{API}/tickets/{ticket_id}/workflow/steps/await_reply/complete",
        json={"data": {"reply": "looked up by hand"}},
        headers=stack.agent(tenant),
    )
    assert done.status_code == 200, done.text
    flow = stack.wait_until_completed(tenant, ticket_id)
    assert step_of(flow, "await_reply")["data"] == {"reply": "looked up by hand"}
