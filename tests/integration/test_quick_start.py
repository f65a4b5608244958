"""The original product's Quick Start, run from a built wheel in a fresh venv.

The host folder has packages of its own called ``service`` and ``schemas``
(names this project's layers also have): the wheel installs everything under
``dotmac.ticketing``, so both are importable side by side. The Quick Start,
the FastAPI integration, a custom workflow and the configuration shape are
those of the original README, with its ``...`` filled in.

The fresh venv holds only the wheel; the dependencies come from the test's
own environment through a path file (no download, and no copy of this
checkout on the path: the test venv's editable finder is not loaded there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

QUICK_START = """
import asyncio
import json
import sys

import schemas
import service

from dotmac.ticketing import (
    TicketManager,
    TicketService,
    initialize_ticketing,
    TicketCreate,
    TicketCategory,
    TicketPriority
)

# The host's own packages are still the ones it imports.
assert service.WHO == "host service", service.__file__
assert schemas.WHO == "host schemas", schemas.__file__

config = {
    # SLA Configuration (in minutes)
    "sla_config": {
        "critical": {"response": 15, "resolution": 240},
        "urgent": {"response": 60, "resolution": 480},
        "high": {"response": 240, "resolution": 1440},
        "normal": {"response": 120, "resolution": 4320},  # the README says 1440
        "low": {"response": 2880, "resolution": 10080}
    },

    # Auto-assignment rules
    "assignment_rules": [
        {
            "name": "technical_issues",
            "conditions": {"category": "technical_support"},
            "assigned_team": "Technical Support",
            "priority": 10
        }
    ],

    # Escalation rules
    "escalation_rules": [
        {
            "name": "critical_escalation",
            "conditions": {"priority": "critical"},
            "escalation_time_hours": 1,
            "escalate_to_team": "Engineering"
        }
    ]
}

# Initialize the ticketing system
ticket_manager = initialize_ticketing({
    "database_url": sys.argv[1],
    **config,
})
assert isinstance(ticket_manager, TicketManager)

# Create a ticket service
ticket_service = TicketService(ticket_manager)

# Create a new ticket
ticket_data = TicketCreate(
    title="Customer experiencing slow internet",
    description="Customer reports slow speeds since yesterday",
    category=TicketCategory.TECHNICAL_SUPPORT,
    priority=TicketPriority.NORMAL,
    customer_email="customer@example.com"
)

db_session = object()  # the host's own session: the event store keeps its own


async def quick_start():
    ticket = await ticket_service.create_customer_ticket(
        db=db_session,
        tenant_id="tenant-123",
        customer_id="customer-456",
        **ticket_data.dict()
    )
    return ticket

ticket = asyncio.run(quick_start())

# FastAPI Integration
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient
from dotmac.ticketing.api import create_ticket_router


def get_database_session():
    yield db_session


def get_tenant_from_request(x_tenant: str = Header()) -> str:
    return x_tenant


def get_authenticated_user(x_user: str = Header()) -> dict:
    return {"sub": x_user, "roles": ["agent"]}


app = FastAPI()

# Add ticket router
ticket_router = create_ticket_router(
    ticket_service=ticket_service,
    get_db=get_database_session,
    get_current_tenant=get_tenant_from_request,
    get_current_user=get_authenticated_user
)
app.include_router(ticket_router, prefix="/api/v1")

headers = {"X-Tenant": "tenant-123", "X-User": "agent-7"}
with TestClient(app) as client:
    read = client.get(f"/api/v1/tickets/{ticket.id}", headers=headers)
    other = client.get(
        f"/api/v1/tickets/{ticket.id}", headers={**headers, "X-Tenant": "other"}
    )

# Custom Workflows
from dotmac.ticketing.workflows import TicketWorkflow, WorkflowResult

class CustomWorkflow(TicketWorkflow):
    def __init__(self):
        super().__init__(
            workflow_type="custom_workflow",
            steps=["step1", "step2", "step3"]
        )

    async def execute_step(self, step_name: str) -> WorkflowResult:
        if step_name == "step1":
            # Custom logic here
            return WorkflowResult(success=True, step_name=step_name)
        return WorkflowResult(success=True, step_name=step_name)

step = asyncio.run(CustomWorkflow().execute_step("step1"))
ticket_manager.close()

import dotmac.ticketing
print(json.dumps({
    "package": dotmac.ticketing.__file__,
    "ticket": ticket.model_dump(mode="json"),
    "read": [read.status_code, read.json()],
    "other_tenant": other.status_code,
    "step": [step.success, step.step_name],
}))
"""


def run(command: list[str], **options: object) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, **options
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(into: Path) -> Path:
    """The wheel, built from a copy of the sources (the checkout stays clean)."""
    source = into / "source"
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(into),
            str(source),
        ]
    )
    (wheel,) = into.glob("dotmac_ticketing-*.whl")
    return wheel


def fresh_venv_with(wheel: Path, at: Path) -> Path:
    """A new venv holding the wheel; dependencies borrowed, see the docstring."""
    run([sys.executable, "-m", "venv", "--without-pip", str(at)])
    python = at / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ]
    )
    site = Path(
        run(
            [
                str(python),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ]
        ).strip()
    )
    (site / "borrowed_dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    return python


def host_folder(at: Path) -> Path:
    for name in ("service", "schemas"):
        (at / name).mkdir(parents=True)
        (at / name / "__init__.py").write_text(f'WHO = "host {name}"\n')
    (at / "quick_start.py").write_text(textwrap.dedent(QUICK_START))
    return at


def test_wheel_contains_nothing_generic_at_the_top(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tops = {
        line.split()[0].split("/")[0] for line in names.splitlines()[1:] if line.strip()
    }
    assert {t for t in tops if not t.endswith(".dist-info")} == {"dotmac"}
    assert "dotmac/ticketing/consumers/notify/templates/" in names
    assert "dotmac/ticketing/store/migrations/0001.initial-schema.sql" in names
    assert "dotmac/ticketing/__init__.py" in names
    assert "dotmac/__init__.py" not in names  # a namespace: others may add to it


def test_the_original_quick_start_runs_from_the_wheel_beside_host_packages(
    tmp_path: Path, isolated_database_url: str
) -> None:
    python = fresh_venv_with(build_wheel(tmp_path / "dist"), tmp_path / "venv")
    host = host_folder(tmp_path / "host")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH"}}
    output = run(
        [str(python), "quick_start.py", isolated_database_url], cwd=host, env=env
    )
    result = json.loads(output.strip().splitlines()[-1])

    assert result["package"].startswith(str(tmp_path / "venv"))
    ticket = result["ticket"]
    assert ticket["customer_id"] == "customer-456"
    assert ticket["customer_email"] == "customer@example.com"
    assert ticket["category"] == "technical_support"
    status, read = result["read"]
    assert status == 200, read
    # The configuration document was applied: the rule chose the team, and
    # the normal priority's first response is due in 120 minutes (24×7; the
    # built-in default is 1440).
    assert ticket["assigned_team"] == "Technical Support"
    due = datetime.fromisoformat(read["sla"]["first_response"]["due_at"])
    assert due - datetime.fromisoformat(read["created_at"]) == timedelta(minutes=120)
    assert read["id"] == ticket["id"]
    assert result["other_tenant"] == 404
    assert result["step"] == [True, "step1"]
