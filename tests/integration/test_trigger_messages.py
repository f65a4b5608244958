"""A trigger's messages: e-mail to a team or an address, a webhook call.

Everything real: the API over PostgreSQL, the relay and the bundled broker,
the timers' process running the triggers, the notifier's dispatcher sending
what they hand it to an SMTP server (aiosmtpd) and an HTTP server.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.kafka.broker import DevBroker
from dotmac.ticketing.consumers.notify.channels.webhook import verify_signature
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from tests.integration.timers_running import (
    MovableClock,
    running_stack,
    stack_settings,
)
from tests.notifications.servers import HttpSink, SmtpSink, wait_until

API = "/api/v1"
SECRET = "trigger-messages-" + "k" * 40
TEAMS = [
    {
        "name": "Billing",
        "agents": [
            {"id": "bea", "email": "bea@desk.test"},
            {"id": "bo", "email": "bo@desk.test"},
            {"id": "ben"},  # no address: told nothing
        ],
    }
]


def test_a_trigger_mails_a_team_and_an_address_and_calls_a_webhook_once(
    isolated_database_url: str,
    fresh_broker: DevBroker,
    smtp_server: SmtpSink,
    http_server: HttpSink,
) -> None:
    settings = stack_settings(
        isolated_database_url,
        fresh_broker,
        jwt_secret=SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_from="Desk <desk@desk.test>",
        webhook_allow_private=True,
    )
    tenant = f"t-{secrets.token_hex(4)}"

    def auth(sub: str, role: str) -> dict[str, str]:
        token = issue_token(SECRET, tenant_id=tenant, sub=sub, roles=[role])
        return {"Authorization": f"Bearer {token}"}

    admin = auth("admin-1", "admin")
    with (
        running_stack(
            settings, clock=MovableClock(datetime.now(UTC)), notifier=True
        ) as stack,
        TestClient(create_app(settings, ticketing=stack.ticketing)) as client,
    ):
        assert client.put(
            f"{API}/settings", json={"teams": TEAMS}, headers=admin
        ).is_success
        # Subscribed to closures only: what it gets here is the trigger's call.
        hook = client.post(
            f"{API}/webhooks",
            json={
                "url": http_server.url("/hooks/trigger"),
                "event_types": ["ticketing.ticket.ticket_closed.v1"],
            },
            headers=admin,
        ).json()
        trigger = client.post(
            f"{API}/triggers",
            json={
                "name": "Customer answered",
                "when": {"type": "event", "events": ["customer_comment"]},
                "actions": [
                    {
                        "type": "notify",
                        "team": "Billing",
                        "subject": "Answered: {{ ticket.title }}",
                        "body": "{{ customer.name }} wrote on #{{ ticket.number }}.",
                    },
                    {
                        "type": "notify",
                        "address": "lead@desk.test",
                        "subject": "Answered",
                        "body": "Ticket {{ ticket.number }}",
                    },
                    {"type": "call_webhook", "webhook_id": hook["id"]},
                ],
            },
            headers=admin,
        )
        assert trigger.status_code == 201, trigger.text
        trigger_id = trigger.json()["id"]
        customer = auth("cust-1", "customer")
        ticket = client.post(
            f"{API}/tickets/",
            json={"title": "Invoice twice", "customer_name": "Ada"},
            headers=customer,
        ).json()
        answered = client.post(
            f"{API}/tickets/{ticket['id']}/comments",
            json={"body": "Still charged twice"},
            headers=customer,
        )
        assert answered.status_code == 201, answered.text

        def trigger_mail() -> dict[str, list[str]]:
            sent: dict[str, list[str]] = {}
            for mail in smtp_server.received():
                if "Answered" in mail.subject:
                    for to in mail.rcpt_tos:
                        sent.setdefault(to, []).append(mail.part("plain").strip())
            return sent

        wanted = {"bea@desk.test", "bo@desk.test", "lead@desk.test"}
        wait_until(lambda: set(trigger_mail()) == wanted, timeout=30, what="mail")
        wait_until(lambda: len(http_server.requests) >= 1, timeout=30, what="hook")
        time.sleep(1.0)  # anything sent twice would have arrived by now
        mails = trigger_mail()
        assert {to: len(texts) for to, texts in mails.items()} == dict.fromkeys(
            wanted, 1
        )
        assert mails["bea@desk.test"] == [f"Ada wrote on #{ticket['number']}."]
        (call,) = http_server.requests
        fired = json.loads(call.body)
        assert fired["type"] == "ticketing.trigger.fired.v1"
        assert fired["data"]["trigger_id"] == trigger_id
        assert fired["data"]["ticket_id"] == ticket["id"]
        assert "Ada" not in call.body.decode()  # facts only
        signature = call.header("x-ticketing-signature")
        assert signature is not None
        assert verify_signature(hook["secret"], call.body, signature)
        (run,) = client.get(f"{API}/triggers/{trigger_id}/runs", headers=admin).json()
        assert (run["ticket_id"], run["outcome"]) == (ticket["id"], "fired")
