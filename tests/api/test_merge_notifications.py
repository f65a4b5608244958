"""Who hears of a merge or a reopen, from the HTTP command to the in-app list.

The commands go over HTTP; the events they stored are handed, as the relay
publishes them (``to_cloudevent``), to the real notifier over the same
database, and each person reads what they got from
``GET /api/v1/notifications``. Only the Kafka hop is left out: the notifier's
transport is tested in tests/integration.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.cloudevents import to_cloudevent
from dotmac.ticketing.consumers.notify.notifier import Notifier
from dotmac.ticketing.consumers.notify.rendering import NotificationTemplates
from dotmac.ticketing.consumers.notify.rules import ConfigTenantDirectory
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import AuthFor, Headers
from tests.notifications.running import handle, notifier_pool

API = "/api/v1"
PUBLIC_URL = "https://help.acme.test"


def notify(settings: Settings, ticketing: Ticketing, *ticket_ids: str) -> None:
    """Run every event of the tickets so far through the notifier (again:
    the ledger keeps each delivery once)."""
    events = [
        to_cloudevent(event)
        for ticket_id in ticket_ids
        for event in ticketing.app.events.get(UUID(ticket_id))
        if isinstance(event, Ticket.Event)
    ]
    assert settings.database_url is not None

    async def run() -> None:
        templates = NotificationTemplates()
        notifier = Notifier(
            directory=ConfigTenantDirectory({}),
            templates=templates,
            public_url=PUBLIC_URL,
        )
        try:
            async with notifier_pool(str(settings.database_url)) as pool:
                for event in events:
                    await handle(pool, notifier, event)
        finally:
            templates.close()

    asyncio.run(run())


def inbox(client: TestClient, headers: Headers, kind: str) -> list[dict[str, Any]]:
    """The caller's in-app notifications about events of type ``kind``."""
    response = client.get(f"{API}/notifications", headers=headers)
    assert response.status_code == 200, response.text
    return [
        item
        for item in response.json()["items"]
        if item["event_type"] == f"ticketing.ticket.{kind}.v1"
    ]


def post(client: TestClient, path: str, headers: Headers, **body: Any) -> Any:
    response = client.post(f"{API}/tickets{path}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_merge_tells_the_customer_where_to_follow_and_both_assignees(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    settings: Settings,
    ticketing: Ticketing,
) -> None:
    merger = auth_for(tenant, "agent-1", "agent")
    owner = auth_for(tenant, "cust-1", "customer")
    target = post(client, "/", owner, title="Printer on fire")
    source = post(client, "/", owner, title="Printer smokes")
    post(client, f"/{target['id']}/assign", merger, assignee_id="agent-2")
    post(client, f"/{source['id']}/assign", merger, assignee_id="agent-3")
    post(client, f"/{source['id']}/comments", owner, body="Any news?")

    post(client, f"/{source['id']}/merge", merger, into=target["id"])
    notify(settings, ticketing, target["id"], source["id"])

    (told,) = inbox(client, owner, "ticket_merged")
    assert told["ticket_id"] == source["id"]
    assert told["title"] == (
        f"[#{source['number']}] Combined with your request #{target['number']}:"
        " Printer smokes"
    )
    assert f"{PUBLIC_URL}/api/v1/tickets/{target['id']}" in told["body"]
    for assignee in ("agent-2", "agent-3"):
        (note,) = inbox(client, auth_for(tenant, assignee, "agent"), "ticket_merged")
        assert note["title"].startswith(
            f"[#{source['number']}] Merged into #{target['number']}"
        )
    assert inbox(client, merger, "ticket_merged") == []
    # The comments the merge carried over are not sent as new replies.
    assert inbox(client, owner, "comment_added") == []


def test_a_merge_across_customers_tells_the_customer_no_other_ticket(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    settings: Settings,
    ticketing: Ticketing,
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    first = auth_for(tenant, "cust-1", "customer")
    second = auth_for(tenant, "cust-2", "customer")
    source = post(client, "/", first, title="Outage at Ada's")
    target = post(client, "/", second, title="Outage at Bob's")
    post(client, f"/{target['id']}/assign", agent, assignee_id="agent-2")

    post(
        client,
        f"/{source['id']}/merge",
        agent,
        into=target["id"],
        confirm_cross_customer=True,
    )
    notify(settings, ticketing, target["id"], source["id"])

    (told,) = inbox(client, first, "ticket_merged")
    assert "another request" in told["title"]
    text = json.dumps(told)
    for trace in (target["id"], f"#{target['number']}", "Bob's"):
        assert trace not in text
    (note,) = inbox(client, auth_for(tenant, "agent-2", "agent"), "ticket_merged")
    assert "internal note" in note["body"]
    # cust-2 hears nothing of it: neither the merge nor what was carried.
    response = client.get(f"{API}/notifications", headers=second)
    assert "Ada's" not in response.text
    assert source["id"] not in response.text
    assert inbox(client, second, "comment_added") == []


def test_a_customers_reopen_tells_the_assignee(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    settings: Settings,
    ticketing: Ticketing,
) -> None:
    agent = auth_for(tenant, "agent-1", "agent")
    assignee = auth_for(tenant, "agent-2", "agent")
    owner = auth_for(tenant, "cust-1", "customer")
    resolution = {"resolution": "Replaced the fuser", "resolution_code": "fixed"}
    explicit = post(client, "/", owner, title="Printer on fire")
    answered = post(client, "/", owner, title="Scanner on fire")
    for ticket in (explicit, answered):
        post(client, f"/{ticket['id']}/assign", agent, assignee_id="agent-2")
        post(client, f"/{ticket['id']}/resolve", agent, **resolution)

    post(client, f"/{explicit['id']}/reopen", owner, reason="Still smoking")
    # An answer on the resolved ticket reopens it too (customer_replies).
    post(client, f"/{answered['id']}/comments", owner, body="It smokes again")
    notify(settings, ticketing, explicit["id"], answered["id"])

    told = {n["ticket_id"]: n for n in inbox(client, assignee, "ticket_reopened")}
    assert told[explicit["id"]]["title"] == (
        f"[#{explicit['number']}] Reopened by the customer: Printer on fire"
    )
    assert "Still smoking" in told[explicit["id"]]["body"]
    assert told[answered["id"]]["body"].startswith(
        f"The customer's answer reopened ticket #{answered['number']}"
    )
    assert inbox(client, owner, "ticket_reopened") == []
