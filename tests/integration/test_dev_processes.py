"""``ticketing dev`` and ``ticketing api --workers N`` as real processes.

``dev`` runs the API and each worker as a child process that it restarts
when it dies and stops on SIGTERM; ``api --workers 2`` serves from two
processes. Each test starts its own command and ends only the processes it
started (and, in the restart test, one child of it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dotmac.ticketing.consumers.kafka.broker import DevBroker, free_port
from dotmac.ticketing.service.auth import Role, issue_token
from dotmac.ticketing.service.settings import WORKER_NAMES
from tests.notifications.servers import wait_until

TENANT = "dev"


@dataclass
class Command:
    """A ``ticketing`` command run as a child of the test, its log a JSON file."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line being written
                    continue
        return records

    def status(self, path: str) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"the command exited:\n{self.tail()}")
        try:
            return httpx.get(self.url + path, timeout=5).status_code
        except httpx.TransportError:
            return None

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-count:])


@pytest.fixture
def environment(
    isolated_database_url: str, kafka: DevBroker, jwt_secret: str, tmp_path: Path
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": isolated_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "TICKETING_KAFKA_FETCH_MAX_WAIT_MS": "20",
        "TICKETING_JWT_SECRET": jwt_secret,
        "TICKETING_DATA_DIR": str(tmp_path / "data"),
        "TICKETING_WORKER_HEARTBEAT_SECONDS": "0.5",
        "TICKETING_WORKER_RESTART_INITIAL_SECONDS": "0.2",
        "LOG_FORMAT": "json",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
    }


def start(arguments: list[str], environment: dict[str, str], log: Path) -> Command:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ticketing")), *arguments],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Command(process, log, int(environment["PORT"]))


@pytest.fixture
def stopped_at_the_end() -> Iterator[list[Command]]:
    """Commands to kill if a test left them running (it failed)."""
    commands: list[Command] = []
    yield commands
    for command in commands:
        if command.process.poll() is None:
            command.process.kill()
            command.process.wait(10)


def worker_pids(database_url: str) -> dict[str, set[int]]:
    """The process ids in each worker's ``worker_status`` rows."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT worker, instance FROM worker_status").fetchall()
    pids: dict[str, set[int]] = {}
    for worker, instance in rows:
        pids.setdefault(worker, set()).add(int(instance.rsplit(":", 1)[1]))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but is not reaped yet counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As a server binds (uvicorn does): closed connections still in
        # TIME_WAIT do not hold the port, a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_and_wait(command: Command, pids: set[int]) -> None:
    """SIGTERM the command: it and every pid in ``pids`` end within 10 s."""
    command.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    command.process.wait(10)
    wait_until(
        lambda: not any(alive(pid) for pid in pids),
        timeout=max(deadline - time.monotonic(), 0.1),
        what=f"the children to end:\n{command.tail()}",
    )
    assert port_is_free(command.port)


def test_dev_runs_each_part_as_a_supervised_process(
    environment: dict[str, str],
    isolated_database_url: str,
    jwt_secret: str,
    tmp_path: Path,
    stopped_at_the_end: list[Command],
) -> None:
    dev = start(
        ["dev"], {**environment, "TICKETING_API_WORKERS": "1"}, tmp_path / "dev.log"
    )
    stopped_at_the_end.append(dev)
    wait_until(lambda: dev.status("/ready") == 200, timeout=60, what="/ready")

    # Each worker beats from a process of its own, none of them dev itself.
    pids = worker_pids(isolated_database_url)
    assert set(pids) == set(WORKER_NAMES)
    singles = {worker: next(iter(p)) for worker, p in pids.items()}
    assert len(set(singles.values())) == len(WORKER_NAMES)
    assert dev.process.pid not in singles.values()
    api_pids = {r["pid"] for r in dev.lines() if r.get("process") == "api"}
    assert len(api_pids) == 1 and not api_pids & set(singles.values())
    # Every line says which process wrote it.
    roles = {r.get("process") for r in dev.lines()}
    assert {"dev", "api", *WORKER_NAMES} <= roles

    # A child killed outright is restarted, and the parent says so.
    killed = singles["notifier"]
    os.kill(killed, signal.SIGKILL)
    wait_until(
        lambda: bool(
            worker_pids(isolated_database_url).get("notifier", set()) - {killed}
        ),
        timeout=20,
        what="a new notifier",
    )
    (restart,) = [
        r
        for r in dev.lines()
        if r.get("child_pid") == killed and "restarting" in r["event"]
    ]
    assert restart["event"] == "notifier exited; restarting"
    assert restart["process"] == "dev" and restart["exit_code"] == -signal.SIGKILL
    wait_until(lambda: dev.status("/ready") == 200, timeout=20, what="/ready again")

    # The API process writes, the projections process makes it listed.
    customer = issue_token(
        jwt_secret, tenant_id=TENANT, sub="c-1", roles=[Role.CUSTOMER]
    )
    agent = issue_token(jwt_secret, tenant_id=TENANT, sub="a-1", roles=[Role.AGENT])
    created = httpx.post(
        f"{dev.url}/api/v1/tickets/",
        json={
            "title": "Cannot log in",
            "description": "Reset link expired",
            "category": "technical_support",
            "priority": "high",
        },
        headers={"Authorization": f"Bearer {customer}"},
    )
    assert created.status_code == 201, created.text
    listed = httpx.get(
        f"{dev.url}/api/v1/tickets/",
        params={"min_position": created.json()["position"]},
        headers={"Authorization": f"Bearer {agent}"},
    )
    assert listed.status_code == 200
    assert "x-projection-stale" not in listed.headers
    assert [t["id"] for t in listed.json()["items"]] == [created.json()["id"]]

    children = {
        *worker_pids(isolated_database_url).get("notifier", set()),
        *singles.values(),
        *api_pids,
    } - {killed}
    stop_and_wait(dev, children)
    assert dev.process.returncode == 0


def test_api_serves_from_several_processes(
    environment: dict[str, str], tmp_path: Path, stopped_at_the_end: list[Command]
) -> None:
    api = start(["api", "--workers", "2"], environment, tmp_path / "api.log")
    stopped_at_the_end.append(api)
    wait_until(lambda: api.status("/health") == 200, timeout=30, what="/health")

    def serving() -> set[int]:
        # uvicorn's workers: processes other than the supervisor, each
        # having built its app and logged its requests under process=api.
        return {
            r["pid"]
            for r in api.lines()
            if r.get("process") == "api"
            and r.get("event") == "request"
            and r["pid"] != api.process.pid
        }

    def both_serve() -> bool:
        with httpx.Client() as client:
            for _ in range(10):
                # A new connection each: the kernel hands it to either process.
                client.get(f"{api.url}/health", headers={"Connection": "close"})
        return len(serving()) == 2

    wait_until(both_serve, timeout=20, what=f"two serving processes:\n{api.tail()}")
    stop_and_wait(api, serving())
