"""The projector under crashes and rebuilds: nothing lost, nothing twice."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from dotmac.ticketing.projections.registry import Build, BuildRegistry
from dotmac.ticketing.projections.status import projection_statuses
from dotmac.ticketing.projections.worker import BuildRunner, ProjectionWorker
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.store.database import eventsourcing_env

TABLES = (
    "tickets",
    "daily_metrics",
    "escalations",
    "sla_clocks",
    "sla_alerts",
    "escalation_requests",
)


@pytest.fixture
def core(isolated_database_url: str) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing({"database_url": isolated_database_url})
    yield ticketing
    ticketing.close()


def write_tickets(core: Ticketing, count: int, tenant: str = "acme") -> None:
    """``count`` tickets of four or five events each, from a few threads."""
    ctx = RequestContext(
        tenant_id=tenant, user_id="agent-1", roles=frozenset({"agent"})
    )

    def life(n: int) -> None:
        tid = core.tickets.create_ticket(
            ctx, title=f"Ticket {n}", customer_id=f"c{n % 7}", tags=[f"t{n % 3}"]
        ).ticket.id
        core.tickets.assign(ctx, tid, assignee_id=f"agent-{n % 4}", team="Ops")
        core.tickets.add_comment(ctx, tid, body=f"public reply {n}")
        if n % 5 == 0:
            core.tickets.escalate(ctx, tid, reason="slow", team="Eng")
        core.tickets.resolve(ctx, tid, resolution="ok", resolution_code="fixed")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(life, range(count)))


@contextmanager
def worker_process(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """``ticketing worker projections`` as its own process."""
    command = [str(Path(sys.executable).parent / "ticketing"), "worker", "projections"]
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "warning"}
    process = subprocess.Popen(command, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def wait_until(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def status(core: Ticketing):  # type: ignore[no-untyped-def]
    (tickets,) = projection_statuses(core.app.datastore)
    return tickets


def build_from_scratch(core: Ticketing, env: dict[str, str]) -> Build:
    """A second, independent build of the same events, not swapped in."""
    registry = BuildRegistry(core.app.datastore)
    build = registry.start_build("tickets", 999)
    runner = BuildRunner(build, env)
    try:
        wait_until(runner.caught_up)
    finally:
        runner.stop()
    return build


def differences(core: Ticketing, left: str, right: str) -> dict[str, int]:
    """Rows in one schema's table and not the other's, per table (both ways)."""
    counts = {}
    with core.app.transaction() as cur:
        for table in TABLES:
            cur.execute(
                f'SELECT (SELECT count(*) FROM (TABLE "{left}".{table}'
                f' EXCEPT ALL TABLE "{right}".{table}) a)'
                f' + (SELECT count(*) FROM (TABLE "{right}".{table}'
                f' EXCEPT ALL TABLE "{left}".{table}) b) AS n'
            )
            counts[table] = cur.fetchone()["n"]
    return counts


def test_sigkill_mid_batch_then_restart_equals_a_rebuild(
    core: Ticketing, isolated_database_url: str
) -> None:
    write_tickets(core, 400)
    head = core.app.head_position()
    assert head >= 1600

    with worker_process(isolated_database_url) as first:
        wait_until(lambda: status(core).active_schema or status(core).rebuild_position)
        wait_until(lambda: (status(core).rebuild_position or 0) > head // 4)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed_at = status(core).rebuild_position
    assert killed_at is not None and 0 < killed_at < head, killed_at

    with worker_process(isolated_database_url) as second:
        wait_until(lambda: status(core).active_schema is not None)
        wait_until(lambda: status(core).position >= head)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0

    live = status(core).active_schema
    env = eventsourcing_env(isolated_database_url, pool_size=2)
    fresh = build_from_scratch(core, env)
    assert differences(core, live, fresh.schema) == dict.fromkeys(TABLES, 0)
    with core.app.transaction() as cur:
        cur.execute(
            f'SELECT count(*) AS n, sum(comment_count) AS c FROM "{live}".tickets'
        )
        row = cur.fetchone()
    assert (row["n"], row["c"]) == (400, 400)


def test_writes_during_a_rebuild_are_all_in_the_swapped_in_tables(
    core: Ticketing, isolated_database_url: str
) -> None:
    env = eventsourcing_env(isolated_database_url, pool_size=2)
    worker = ProjectionWorker(env, datastore=core.app.datastore)
    stop = threading.Event()
    worker.run(stop, until_swapped=True)  # the first build
    first = status(core).active_schema
    write_tickets(core, 150)

    registry = BuildRegistry(core.app.datastore)
    registry.request_rebuild("tickets")
    writer_done = threading.Event()

    def keep_writing() -> None:
        try:
            write_tickets(core, 60, tenant="during")
        finally:
            writer_done.set()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    worker.run(stop, until_swapped=True)
    writer.join()
    # The rebuilt build is live: it keeps following the log after the swap.
    second = status(core).active_schema
    assert second != first
    runner = BuildRunner(registry.active("tickets"), env)  # type: ignore[arg-type]
    try:
        wait_until(runner.caught_up)
    finally:
        runner.stop()
    with core.app.transaction() as cur:
        cur.execute(
            f'SELECT tenant_id, count(*) AS n FROM "{second}".tickets'
            " GROUP BY tenant_id ORDER BY tenant_id"
        )
        counts = {r["tenant_id"]: r["n"] for r in cur.fetchall()}
        cur.execute(
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = %s", (first,)
        )
        old_schema_left = cur.fetchone()["n"]
    assert counts == {"acme": 150, "during": 60}
    assert old_schema_left == 0


def test_a_new_projection_version_rebuilds_by_itself(
    core: Ticketing, isolated_database_url: str
) -> None:
    env = eventsourcing_env(isolated_database_url, pool_size=2)
    write_tickets(core, 20)
    stop = threading.Event()
    ProjectionWorker(env, datastore=core.app.datastore, version=1).run(
        stop, until_swapped=True
    )
    assert status(core).active_version == 1
    # A deployment with newer projection code: no command, no request.
    ProjectionWorker(env, datastore=core.app.datastore, version=2).run(
        stop, until_swapped=True
    )
    after = status(core)
    assert after.active_version == 2
    assert after.position == core.app.head_position()
    with core.app.transaction() as cur:
        cur.execute(f'SELECT count(*) AS n FROM "{after.active_schema}".tickets')
        assert cur.fetchone()["n"] == 20
