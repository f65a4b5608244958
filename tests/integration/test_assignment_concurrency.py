"""Auto-assignment under concurrent creates never overfills an agent.

Forty tickets arrive at once for a team of three agents with room for
twelve between them. Assignments of one team take turns, each after the
read model has seen the previous one (``service.assignment``), so exactly
twelve are assigned, nobody beyond capacity, and the rest wait unassigned
in the team's queue.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dotmac.ticketing.consumers.supervision import RunningWorker
from dotmac.ticketing.entry.processes import start_projection_worker
from dotmac.ticketing.projections.read_model import ProjectionNotReady
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database

CAPACITY = {"agent-1": 5, "agent-2": 4, "agent-3": 3}
TICKETS = 40


@pytest.fixture(scope="module")
def core(postgres_server_url: str) -> Iterator[Ticketing]:
    with fresh_database(postgres_server_url) as url:
        ticketing = initialize_ticketing({"database_url": url, "db_pool_size": 12})
        yield ticketing
        ticketing.close()


@pytest.fixture(scope="module")
def projector(core: Ticketing) -> Iterator[RunningWorker]:
    worker = start_projection_worker(core.settings)
    deadline = time.monotonic() + 30
    while True:  # the first build must be swapped in: loads come from it
        try:
            core.read_model.active(refresh=True)
            break
        except ProjectionNotReady:
            assert time.monotonic() < deadline, "no read model after 30 s"
            time.sleep(0.05)
    yield worker
    worker.stop()


@pytest.mark.parametrize("strategy", ["least_loaded", "round_robin"])
def test_concurrent_creates_fill_agents_to_capacity_and_queue_the_rest(
    core: Ticketing, projector: RunningWorker, strategy: str
) -> None:
    tenant = f"t-{secrets.token_hex(3)}"
    admin = RequestContext(tenant_id=tenant, user_id="boss", roles=frozenset({"admin"}))
    core.settings_service.replace(
        admin,
        {
            "teams": [
                {
                    "name": "Support",
                    "agents": [
                        {"id": agent, "capacity": capacity}
                        for agent, capacity in CAPACITY.items()
                    ],
                }
            ],
            "assignment_rules": [
                {"name": "all", "assigned_team": "Support", "strategy": strategy}
            ],
        },
    )
    customer = RequestContext(
        tenant_id=tenant, user_id="cust-1", roles=frozenset({"customer"})
    )

    def create(n: int) -> tuple[str | None, str | None]:
        ticket = core.tickets.create_ticket(customer, title=f"Help {n}").ticket
        return ticket.assignee_id, ticket.assigned_team

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(TICKETS)))

    assert {team for _, team in outcomes} == {"Support"}
    held = Counter(agent for agent, _ in outcomes if agent is not None)
    assert held == Counter(CAPACITY)
    queued = [agent for agent, _ in outcomes if agent is None]
    assert len(queued) == TICKETS - sum(CAPACITY.values())
