"""A webhook that keeps failing is paused, its admins are told, and it resumes.

Real PostgreSQL, the real API (registration, the webhook's state, the
admins' in-app notifications, resume) and the real dispatcher sending to a
real HTTP receiver on loopback. The breaker's cool-down runs on the
injected clock: the test moves it instead of waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from dotmac.ticketing.consumers.notify.channels.webhook import WebhookChannel
from dotmac.ticketing.consumers.notify.circuit_breaker import BreakerPolicy
from dotmac.ticketing.consumers.notify.delivery_lanes import Limits
from dotmac.ticketing.consumers.notify.dispatcher import Dispatcher
from dotmac.ticketing.consumers.notify.notifier import Notifier
from dotmac.ticketing.consumers.notify.rendering import NotificationTemplates
from dotmac.ticketing.consumers.notify.rules import ConfigTenantDirectory
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import ManualClock
from tests.notifications.events import TicketStory
from tests.notifications.running import (
    deliveries,
    dispatching,
    handle,
    notifier_pool,
    wait_for,
)
from tests.notifications.servers import HttpSink, http_sink

TENANT = "tenant-breaker"
SECRET = "e2e-secret-" + "x" * 40
THRESHOLD = 3
COOLDOWN = timedelta(minutes=10)
TICKETS = 5
QUIET = 0.3  # long enough for dozens of dispatcher passes
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """An HTTP receiver whose answer the test switches."""

    sink: HttpSink
    status: int = 500

    def requests(self) -> int:
        return len(self.sink.received("/hook"))


@dataclass
class Stack:
    api: TestClient
    admin: dict[str, str]
    pool: AsyncConnectionPool[Any]
    clock: ManualClock
    receiver: Receiver
    webhook_id: str

    def webhook(self) -> dict[str, Any]:
        response = self.api.get(
            f"/api/v1/webhooks/{self.webhook_id}", headers=self.admin
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def admin_notifications(self) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/notifications", headers=self.admin)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def webhook_rows(self, status: str | None = None) -> list[dict[str, Any]]:
        where = "channel = 'webhook'" + (f" AND status = '{status}'" if status else "")
        return await deliveries(self.pool, where)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    lock = threading.Lock()
    holder: list[Receiver] = []

    def respond(path: str, seen: int) -> int:
        with lock:
            return holder[0].status

    with http_sink(respond) as sink:
        holder.append(Receiver(sink))
        yield holder[0]


@pytest.fixture
def api(
    isolated_database_url: str,
) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = Settings(
        database_url=isolated_database_url,
        jwt_secret=SECRET,
        webhook_allow_private=True,  # the receiver listens on loopback
    )
    core = initialize_ticketing(settings)
    try:
        with TestClient(create_app(settings, ticketing=core)) as api:
            token = issue_token(
                SECRET, tenant_id=TENANT, sub="admin-1", roles=["admin"]
            )
            yield api, {"Authorization": f"Bearer {token}"}, isolated_database_url
    finally:
        core.close()


def run_stack(api: Any, receiver: Receiver, scenario: Any) -> None:
    client, admin, database_url = api
    registered = client.post(
        "/api/v1/webhooks",
        json={"url": receiver.sink.url("/hook"), "event_types": []},
        headers=admin,
    )
    assert registered.status_code == 201, registered.text
    clock = ManualClock()
    clock.set(T0)

    async def main() -> None:
        async with notifier_pool(database_url) as pool:
            stack = Stack(
                client, admin, pool, clock, receiver, str(registered.json()["id"])
            )
            notifier = Notifier(
                directory=ConfigTenantDirectory(None),
                templates=NotificationTemplates(),
                public_url="https://help.example.test",
            )
            for _ in range(TICKETS):
                story = TicketStory(tenant_id=TENANT, customer_email=None)
                await handle(pool, notifier, story.created)
            dispatcher = Dispatcher(
                pool,
                {"webhook": WebhookChannel(allow_private=True)},
                _NoDeadLetters(),
                backoff=Backoff(initial=0.01, maximum=0.05, jitter=0),
                # One at a time: the failures are counted one after the other.
                limits=Limits(per_lane=1),
                breaker=BreakerPolicy(threshold=THRESHOLD, cooldown=COOLDOWN),
                clock=clock,
                poll_interval=0.02,
            )
            async with dispatching(dispatcher):
                await scenario(stack)

    asyncio.run(main())


async def until_paused(stack: Stack) -> dict[str, Any]:
    async def paused() -> dict[str, Any] | None:
        webhook = await asyncio.to_thread(stack.webhook)
        return webhook if webhook["state"] == "paused" else None

    result: dict[str, Any] = await wait_for(paused, what="the webhook to be paused")
    return result


async def all_sent(stack: Stack) -> list[dict[str, Any]]:
    async def sent() -> list[dict[str, Any]] | None:
        rows = await stack.webhook_rows()
        return rows if all(r["status"] == "sent" for r in rows) else None

    result: list[dict[str, Any]] = await wait_for(sent, what="every delivery sent")
    return result


def test_a_failing_webhook_is_paused_and_its_admins_are_told(
    api: Any, receiver: Receiver
) -> None:
    async def scenario(stack: Stack) -> None:
        webhook = await until_paused(stack)
        # Exactly the threshold's attempts, then nothing: the rest wait.
        assert receiver.requests() == THRESHOLD
        await asyncio.sleep(QUIET)
        assert receiver.requests() == THRESHOLD
        assert webhook["consecutive_failures"] == THRESHOLD
        assert instant(webhook["paused_since"]) == T0
        assert instant(webhook["next_trial_at"]) == T0 + COOLDOWN
        assert "webhook answered 500" in webhook["last_error"]
        rows = await stack.webhook_rows()
        assert len(rows) == TICKETS
        assert {r["status"] for r in rows} == {"pending"}  # kept, none given up

        (told,) = await asyncio.to_thread(stack.admin_notifications)
        assert told["event_type"] == "ticketing.webhook.paused.v1"
        assert told["title"] == f"Webhook paused: {receiver.sink.url('/hook')}"
        assert "webhook answered 500" in told["body"]
        assert f"/api/v1/webhooks/{stack.webhook_id}/resume" in told["body"]

    run_stack(api, receiver, scenario)


def test_an_admin_resumes_it_and_the_kept_deliveries_are_sent(
    api: Any, receiver: Receiver
) -> None:
    async def scenario(stack: Stack) -> None:
        await until_paused(stack)
        receiver.status = 204  # the receiver is fixed

        resumed = await asyncio.to_thread(
            stack.api.post,
            f"/api/v1/webhooks/{stack.webhook_id}/resume",
            headers=stack.admin,
        )

        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["state"] == "active"
        rows = await all_sent(stack)
        assert len(rows) == TICKETS
        sent = receiver.sink.received("/hook")[THRESHOLD:]
        assert {r.header("X-Ticketing-Delivery") for r in sent} == {
            r["delivery_key"] for r in rows
        }
        webhook = await asyncio.to_thread(stack.webhook)
        assert webhook["state"] == "active"
        assert webhook["consecutive_failures"] == 0

    run_stack(api, receiver, scenario)


def test_after_the_cool_down_one_trial_decides(api: Any, receiver: Receiver) -> None:
    async def scenario(stack: Stack) -> None:
        await until_paused(stack)
        stack.clock.set(T0 + COOLDOWN - timedelta(seconds=1))
        await asyncio.sleep(QUIET)
        assert receiver.requests() == THRESHOLD  # not yet

        # The cool-down is over: one trial, which fails: paused again.
        stack.clock.set(T0 + COOLDOWN)
        await wait_for(
            lambda: _at_least(receiver, THRESHOLD + 1), what="the trial delivery"
        )
        await asyncio.sleep(QUIET)
        assert receiver.requests() == THRESHOLD + 1
        webhook = await asyncio.to_thread(stack.webhook)
        assert webhook["state"] == "paused"
        assert instant(webhook["next_trial_at"]) == T0 + 2 * COOLDOWN
        assert {r["status"] for r in await stack.webhook_rows()} == {"pending"}

        # The next trial succeeds: the breaker closes and the rest follow.
        receiver.status = 204
        stack.clock.set(T0 + 2 * COOLDOWN)
        rows = await all_sent(stack)
        assert len(rows) == TICKETS
        webhook = await asyncio.to_thread(stack.webhook)
        assert webhook["state"] == "active"
        assert webhook["next_trial_at"] is None
        # Told once, when it paused; not again at the failed trial.
        assert len(await asyncio.to_thread(stack.admin_notifications)) == 1

    run_stack(api, receiver, scenario)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _at_least(receiver: Receiver, count: int) -> bool:
    return receiver.requests() >= count


class _NoDeadLetters:
    async def send(self, key: str, letter: Any) -> None:
        raise AssertionError(f"unexpected dead letter {key}: {letter}")
