"""Group commit against real PostgreSQL: batches, conflicts, tailing readers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.batch_recorder import BatchingRecorder
from dotmac.ticketing.store.database import eventsourcing_env
from tests import tickets

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WHO = Provenance("acme", Actor("agent-1", "agent"))


@pytest.fixture
def app(isolated_database_url: str) -> Iterator[TicketApplication]:
    app = TicketApplication(eventsourcing_env(isolated_database_url, pool_size=4))
    yield app
    app.close()


def new_ticket(number: int) -> Ticket:
    return tickets.new_ticket(number, AT, tenant="acme")


def transactions_of(url: str) -> dict[UUID, int]:
    """Each stored aggregate's inserting transaction (rows of one share it)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT originator_id, xmin::text::bigint FROM ticketing_events"
        ).fetchall()
    return {originator: xid for originator, xid in rows}


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_saves_waiting_on_a_commit_go_together_and_a_conflict_fails_alone(
    app: TicketApplication, isolated_database_url: str
) -> None:
    recorder = app.recorder
    assert isinstance(recorder, BatchingRecorder)
    first = new_ticket(1)
    app.save_aggregates(first)
    stale_a = app.repository.get(first.id)
    stale_b = app.repository.get(first.id)
    stale_a.change_priority("high", provenance=WHO, at=AT)
    stale_b.change_priority("low", provenance=WHO, at=AT)
    fresh = [new_ticket(n) for n in range(2, 7)]

    # Another writer holds the table lock: the first save leads and waits on
    # it, and every save after it queues behind.
    with psycopg.connect(isolated_database_url) as blocker:
        blocker.execute("LOCK TABLE ticketing_events IN EXCLUSIVE MODE")
        with ThreadPoolExecutor(8) as pool:
            leader = pool.submit(app.save_aggregates, fresh[0])
            group = recorder._group
            wait_until(lambda: group._leading and not group._waiting)
            time.sleep(0.05)  # the leader is inside its transaction by now
            queued: list[Future[int | None]] = [
                pool.submit(app.save_aggregates, ticket) for ticket in fresh[1:]
            ]
            wait_until(lambda: len(recorder._group._waiting) == 4)
            a = pool.submit(app.save_aggregates, stale_a)
            wait_until(lambda: len(recorder._group._waiting) == 5)
            b = pool.submit(app.save_aggregates, stale_b)
            wait_until(lambda: len(recorder._group._waiting) == 6)
            blocker.commit()

            positions = [leader.result(10), *(f.result(10) for f in queued)]
            assert a.result(10) is not None
            with pytest.raises(IntegrityError):
                b.result(10)

    assert all(p is not None for p in positions)
    assert app.repository.get(first.id).priority == "high"
    xids = transactions_of(isolated_database_url)
    # The leader's save alone, then the four queued tickets and the winning
    # change in one transaction; the conflict left nothing behind.
    assert xids[fresh[0].id] != xids[fresh[1].id]
    assert len({xids[t.id] for t in fresh[1:]}) == 1
    with psycopg.connect(isolated_database_url) as conn:
        versions = conn.execute(
            "SELECT originator_version, xmin::text::bigint FROM ticketing_events"
            " WHERE originator_id = %s ORDER BY 1",
            (first.id,),
        ).fetchall()
    assert [v for v, _ in versions] == [1, 2]
    assert versions[1][1] == xids[fresh[1].id]


class Writer:
    """A writer process; its acknowledgements are read as they are printed."""

    def __init__(self, url: str, tickets: int, threads: int) -> None:
        self.acks: list[tuple[UUID, int]] = []
        command = [sys.executable, "-m", "tests.integration.store_writer", url]
        self.process = subprocess.Popen(
            [*command, str(tickets), str(threads)],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "warning"},
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            kind, ticket, position = line.split()
            if kind == "ack":
                self.acks.append((UUID(ticket), int(position)))

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def wait(self) -> int:
        code = self.process.wait(120)
        self._reader.join(10)
        return code


def test_writer_processes_lose_nothing_and_a_tailing_reader_skips_nothing(
    app: TicketApplication, isolated_database_url: str
) -> None:
    recorder = app.recorder
    writers = [Writer(isolated_database_url, 150, 8) for _ in range(3)]
    victim = writers[0]
    seen: list[int] = []
    killed = False
    deadline = time.monotonic() + 120
    # Tail the log the way the projections do: from the last id seen on.
    while True:
        assert time.monotonic() < deadline, "the writers did not finish"
        if not killed and len(victim.acks) >= 40:
            victim.kill()  # mid-stream: batches of its threads are in flight
            killed = True
        running = any(w.process.poll() is None for w in writers)
        batch = recorder.select_notifications(
            start=(seen[-1] + 1) if seen else 1, limit=500
        )
        seen.extend(n.id for n in batch)
        if not batch and not running:
            break
        if not batch:
            time.sleep(0.002)

    assert killed
    assert victim.wait() == -signal.SIGKILL
    for writer in writers[1:]:
        assert writer.wait() == 0
        assert len(writer.acks) == 150

    everything = recorder.select_notifications(start=1, limit=100_000)
    # Nothing committed behind the reader's back.
    assert seen == [n.id for n in everything]
    stored: dict[UUID, list[int]] = {}
    for n in everything:
        stored.setdefault(n.originator_id, []).append(n.originator_version)
    # Every acknowledged create is there, at the position it was told.
    by_position = {n.id: n.originator_id for n in everything}
    for writer in writers:
        for ticket, position in writer.acks:
            assert by_position[position] == ticket
    # No half save: each create is its three events (the ticket and its two
    # SLA clocks), or nothing.
    assert {tuple(v) for v in stored.values()} == {(1, 2, 3)}
    assert len(stored) >= 300 + len(victim.acks)
    # And the writers' saves did share commits.
    assert len(set(transactions_of(isolated_database_url).values())) < len(stored)
