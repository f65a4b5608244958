"""Auto-assignment under concurrent creates never overfills an agent.

Forty tickets arrive at once for a team of three agents with room for
twelve between them. Assignments of one team take turns, and each turn
reads the agents' loads from the rows every save writes with its events
(``store.workload``), so exactly twelve are assigned, nobody beyond
capacity, and the rest wait unassigned in the team's queue. No projection
worker runs here: nothing waits for a read model.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from tests.conftest import fresh_database

CAPACITY = {"agent-1": 5, "agent-2": 4, "agent-3": 3}
TICKETS = 40


@pytest.fixture(scope="module")
def database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def core(database_url: str) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing({"database_url": database_url, "db_pool_size": 12})
    yield ticketing
    ticketing.close()


@pytest.fixture(scope="module")
def other_process(database_url: str) -> Iterator[Ticketing]:
    """A second API process: its own event store pool and group commit."""
    ticketing = initialize_ticketing({"database_url": database_url, "db_pool_size": 6})
    yield ticketing
    ticketing.close()


def configure_team(core: Ticketing, strategy: str) -> str:
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
    return tenant


def create_all(
    processes: list[Ticketing], tenant: str
) -> list[tuple[str | None, str | None]]:
    customer = RequestContext(
        tenant_id=tenant, user_id="cust-1", roles=frozenset({"customer"})
    )

    def create(n: int) -> tuple[str | None, str | None]:
        process = processes[n % len(processes)]
        ticket = process.tickets.create_ticket(customer, title=f"Help {n}").ticket
        return ticket.assignee_id, ticket.assigned_team

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, range(TICKETS)))


def assert_filled_to_capacity(outcomes: list[tuple[str | None, str | None]]) -> None:
    assert {team for _, team in outcomes} == {"Support"}
    held = Counter(agent for agent, _ in outcomes if agent is not None)
    assert held == Counter(CAPACITY)
    queued = [agent for agent, _ in outcomes if agent is None]
    assert len(queued) == TICKETS - sum(CAPACITY.values())


@pytest.mark.parametrize("strategy", ["least_loaded", "round_robin"])
def test_concurrent_creates_fill_agents_to_capacity_and_queue_the_rest(
    core: Ticketing, strategy: str
) -> None:
    tenant = configure_team(core, strategy)

    assert_filled_to_capacity(create_all([core], tenant))


def test_two_processes_creating_into_one_team_share_its_loads(
    core: Ticketing, other_process: Ticketing
) -> None:
    tenant = configure_team(core, "least_loaded")

    assert_filled_to_capacity(create_all([core, other_process], tenant))
