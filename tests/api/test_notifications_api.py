"""In-app notifications over HTTP: the caller's own list, mark-read, stream.

The rows are written with SQL here, as the notifier would write them, so
these tests are about the API alone: who sees which row, and how.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from dotmac.ticketing.service.api.notification_routes import notification_events
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.notifications import NotificationStore, UnreadFollower
from tests.api.conftest import AuthFor

API = "/api/v1/notifications"
PROBLEM = "application/problem+json"
# The longest a stream test waits for one event before it fails.
STREAM_WAIT = 10.0


def insert(
    ticketing: Ticketing,
    tenant: str,
    user: str,
    *,
    title: str = "Ticket #1 was assigned to you",
    age: timedelta = timedelta(0),
    read: bool = False,
) -> str:
    """One in-app row, as the notifier writes it; its id."""
    row_id = uuid.uuid4()
    created = datetime.now(UTC) - age
    with ticketing.app.transaction() as cursor:
        cursor.execute(
            "INSERT INTO inapp_notifications (id, tenant_id, user_id, event_id,"
            " event_type, ticket_id, title, body, created_at, read_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                row_id,
                tenant,
                user,
                f"{uuid.uuid4()}:1",
                "ticketing.ticket.ticket_assigned.v1",
                uuid.uuid4(),
                title,
                f"{title}.\nOpen it to reply.",
                created,
                created if read else None,
            ),
        )
    return str(row_id)


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def ids(response: Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# -- list and read ------------------------------------------------------------


def test_list_shows_the_callers_own_newest_first(
    client: TestClient, auth_for: AuthFor, ticketing: Ticketing, tenant: str
) -> None:
    old = insert(ticketing, tenant, "agent-1", age=timedelta(minutes=5))
    new = insert(ticketing, tenant, "agent-1", title="Newer")
    seen = insert(ticketing, tenant, "agent-1", age=timedelta(minutes=1), read=True)
    insert(ticketing, tenant, "agent-2")  # a colleague's
    insert(ticketing, "another-" + tenant, "agent-1")  # same sub, other tenant

    response = client.get(API, headers=auth_for(tenant, "agent-1", "agent"))

    assert ids(response) == [new, seen, old]
    item = response.json()["items"][0]
    assert item["title"] == "Newer"
    assert item["event_type"] == "ticketing.ticket.ticket_assigned.v1"
    assert item["read_at"] is None
    assert response.json()["next"] is None


def test_unread_filter(
    client: TestClient, auth_for: AuthFor, ticketing: Ticketing, tenant: str
) -> None:
    unread = insert(ticketing, tenant, "agent-1")
    insert(ticketing, tenant, "agent-1", read=True)
    headers = auth_for(tenant, "agent-1", "agent")

    assert ids(client.get(API, params={"unread": "true"}, headers=headers)) == [unread]
    assert len(ids(client.get(API, params={"unread": "false"}, headers=headers))) == 2


def test_customers_have_notifications_too(
    client: TestClient, auth_for: AuthFor, ticketing: Ticketing, tenant: str
) -> None:
    mine = insert(ticketing, tenant, "cust-1", title="We received your request")
    response = client.get(API, headers=auth_for(tenant, "cust-1", "customer"))
    assert ids(response) == [mine]


def test_mark_read(
    client: TestClient, auth_for: AuthFor, ticketing: Ticketing, tenant: str
) -> None:
    row = insert(ticketing, tenant, "agent-1")
    headers = auth_for(tenant, "agent-1", "agent")

    first = client.post(f"{API}/{row}/read", headers=headers)

    assert first.status_code == 200, first.text
    assert first.json()["id"] == row
    assert first.json()["read_at"] is not None
    assert ids(client.get(API, params={"unread": True}, headers=headers)) == []
    # Again: still read, and still read since the first time.
    again = client.post(f"{API}/{row}/read", headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["read_at"] == first.json()["read_at"]


def test_another_users_or_tenants_notification_is_not_found(
    client: TestClient, auth_for: AuthFor, ticketing: Ticketing, tenant: str
) -> None:
    row = insert(ticketing, tenant, "agent-1")
    for headers in (
        auth_for(tenant, "agent-2", "agent"),
        auth_for(tenant, "admin-1", "admin"),  # admins read only their own too
        auth_for("another-" + tenant, "agent-1", "agent"),
    ):
        assert_problem(client.post(f"{API}/{row}/read", headers=headers), 404)
        assert row not in ids(client.get(API, headers=headers))
    unknown = client.post(
        f"{API}/{uuid.uuid4()}/read", headers=auth_for(tenant, "agent-1", "agent")
    )
    assert_problem(unknown, 404)
    # Still unread for its owner.
    owner = auth_for(tenant, "agent-1", "agent")
    assert ids(client.get(API, params={"unread": True}, headers=owner)) == [row]


def test_pages(
    client: TestClient, auth_for: AuthFor, ticketing: Ticketing, tenant: str
) -> None:
    rows = [
        insert(ticketing, tenant, "agent-1", age=timedelta(seconds=n)) for n in range(5)
    ]
    headers = auth_for(tenant, "agent-1", "agent")
    found: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = client.get(API, params=params, headers=headers)
        found += ids(response)
        cursor = response.json()["next"]
        if cursor is None:
            break
    assert found == rows  # newest (age 0) first


@pytest.mark.parametrize(
    ("params", "blames"),
    [
        ({"unread": "maybe"}, "unread"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "not a cursor"}, "cursor"),
    ],
)
def test_bad_queries_are_422(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    params: dict[str, Any],
    blames: str,
) -> None:
    response = client.get(
        API, params=params, headers=auth_for(tenant, "agent-1", "agent")
    )
    problem = assert_problem(response, 422)
    assert any(error["loc"][-1] == blames for error in problem["errors"])


def test_a_forged_cursor_is_422(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    response = client.get(
        API,
        params={"cursor": "bm90LWpzb24"},  # base64 of "not-json"
        headers=auth_for(tenant, "agent-1", "agent"),
    )
    assert_problem(response, 422)


def test_a_bad_id_is_422_and_no_token_is_401(
    client: TestClient, auth_for: AuthFor, tenant: str
) -> None:
    headers = auth_for(tenant, "agent-1", "agent")
    assert_problem(client.post(f"{API}/not-a-uuid/read", headers=headers), 422)
    assert_problem(client.get(API), 401)
    assert_problem(client.get(f"{API}/stream"), 401)
    assert_problem(
        client.get(f"{API}/stream", headers={**headers, "Last-Event-ID": "x"}), 422
    )


# -- the stream -------------------------------------------------------------


@dataclass
class SseReader:
    """Server-sent events from a streaming httpx response, one at a time."""

    response: httpx.Response
    lines: Iterator[str] = field(init=False)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    def __post_init__(self) -> None:
        self.lines = self.response.iter_lines()

    def next_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {}
        for line in self.lines:
            if line == "":
                if "data" in event:
                    return event
                event = {}
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "retry":
                    self.retry = int(value)
                else:
                    event[name] = value
        raise AssertionError("the stream ended")


@pytest.fixture
def stream_client() -> Iterator[httpx.Client]:
    # Read timeout: a test waiting for an event that never comes fails.
    timeout = httpx.Timeout(STREAM_WAIT, connect=5.0)
    with httpx.Client(timeout=timeout) as http:
        yield http


def test_the_stream_sends_unread_then_new_notifications(
    live_server: str,
    stream_client: httpx.Client,
    auth_for: AuthFor,
    ticketing: Ticketing,
    tenant: str,
) -> None:
    older = insert(ticketing, tenant, "agent-1", age=timedelta(minutes=2))
    newer = insert(ticketing, tenant, "agent-1", age=timedelta(minutes=1))
    insert(ticketing, tenant, "agent-1", read=True)
    headers = auth_for(tenant, "agent-1", "agent")

    with stream_client.stream(
        "GET", f"{live_server}{API}/stream", headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        sse = SseReader(response)
        first, second = sse.next_event(), sse.next_event()
        assert [first["id"], second["id"]] == [older, newer]
        assert first["event"] == "notification"
        assert json.loads(first["data"])["id"] == older
        assert sse.retry is not None

        # Someone else's arrive too, but only the caller's own are sent.
        insert(ticketing, tenant, "agent-2")
        insert(ticketing, "another-" + tenant, "agent-1")
        started = time.monotonic()
        live = insert(ticketing, tenant, "agent-1", title="Live one")
        third = sse.next_event()
        assert third["id"] == live
        assert json.loads(third["data"])["title"] == "Live one"
        assert time.monotonic() - started < 5

    # Reconnecting after the second: the live one again (still unread), not
    # the two before it.
    with stream_client.stream(
        "GET", f"{live_server}{API}/stream", headers={**headers, "Last-Event-ID": newer}
    ) as response:
        assert SseReader(response).next_event()["id"] == live


def test_a_late_committed_row_is_still_streamed(
    live_server: str,
    stream_client: httpx.Client,
    auth_for: AuthFor,
    ticketing: Ticketing,
    tenant: str,
) -> None:
    """A row whose created_at is older than what was sent (a writer's long
    transaction) still goes out."""
    headers = auth_for(tenant, "agent-1", "agent")
    first = insert(ticketing, tenant, "agent-1")
    with stream_client.stream(
        "GET", f"{live_server}{API}/stream", headers=headers
    ) as response:
        sse = SseReader(response)
        assert sse.next_event()["id"] == first
        late = insert(ticketing, tenant, "agent-1", age=timedelta(seconds=5))
        assert sse.next_event()["id"] == late


def test_a_stream_does_not_hold_the_server(
    live_server: str,
    stream_client: httpx.Client,
    auth_for: AuthFor,
    ticketing: Ticketing,
    tenant: str,
) -> None:
    """Many streams opened and dropped: requests are still answered."""
    headers = auth_for(tenant, "agent-1", "agent")
    row = insert(ticketing, tenant, "agent-1")
    for _ in range(25):  # more than the database pool's connections
        with stream_client.stream(
            "GET", f"{live_server}{API}/stream", headers=headers
        ) as response:
            assert SseReader(response).next_event()["id"] == row
    listed = stream_client.get(f"{live_server}{API}", headers=headers)
    assert listed.status_code == 200


class FakeFollower:
    batch = 100

    def __init__(self, *batches: list[dict[str, Any]]) -> None:
        self.batches = list(batches)

    def poll(self) -> list[dict[str, Any]]:
        return self.batches.pop(0) if self.batches else []


def _row(title: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "event_id": "e:1",
        "event_type": "ticketing.ticket.ticket_created.v1",
        "ticket_id": None,
        "title": title,
        "body": "b",
        "created_at": datetime.now(UTC),
        "read_at": None,
    }


def _collect(follower: Any, checks: int, **timing: float) -> list[str]:
    """What a stream sends until it has asked ``checks`` times whether the
    client is gone (the last time, it is)."""
    asked = 0

    async def disconnected() -> bool:
        nonlocal asked
        asked += 1
        return asked >= checks

    async def run() -> list[str]:
        return [
            chunk
            async for chunk in notification_events(
                follower, disconnected=disconnected, **timing
            )
        ]

    return anyio.run(run)


def test_the_stream_sends_heartbeats_when_idle() -> None:
    sent = _collect(
        FakeFollower([_row("one")]), 12, poll_seconds=0.01, heartbeat_seconds=0.03
    )
    assert sent[0].startswith("retry: ")
    assert sent[1].startswith("id: ") and "event: notification\n" in sent[1]
    assert sent[1].endswith("\n\n")
    assert ": heartbeat\n\n" in sent[2:]


def test_the_stream_ends_when_the_client_is_gone() -> None:
    follower = FakeFollower([_row("one")], [_row("two")], [_row("three")])
    sent = _collect(follower, 3, poll_seconds=0.01, heartbeat_seconds=10)
    events = [chunk for chunk in sent if chunk.startswith("id: ")]
    assert len(events) == 2  # the third poll never happened
    assert follower.batches


def test_resuming_after_an_unknown_id_sends_all_unread(
    ticketing: Ticketing, tenant: str
) -> None:
    store = NotificationStore(ticketing.app.datastore)
    row = insert(ticketing, tenant, "agent-1")
    follower = UnreadFollower(
        store, tenant_id=tenant, user_id="agent-1", resume_after=uuid.uuid4()
    )
    assert [str(r["id"]) for r in follower.poll()] == [row]
    assert follower.poll() == []


def test_the_follower_reads_a_backlog_in_batches(
    ticketing: Ticketing, tenant: str
) -> None:
    store = NotificationStore(ticketing.app.datastore)
    rows = [
        insert(ticketing, tenant, "agent-1", age=timedelta(seconds=10 - n))
        for n in range(5)
    ]
    follower = UnreadFollower(store, tenant_id=tenant, user_id="agent-1", batch=2)
    got: list[str] = []
    for _ in range(4):
        got += [str(r["id"]) for r in follower.poll()]
    assert got == rows
