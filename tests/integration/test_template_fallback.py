"""A tenant template that fails, through the notifier, to the customer's inbox.

The notifier renders a ticket_created event for a tenant whose subject
template raises and whose text template loops for ever: the e-mail still
goes out (built-in subject and text, the tenant's HTML), the delivery
records what failed, and the tenant's admins see it over the API.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi.testclient import TestClient

from dotmac.ticketing.consumers.notify.channels.email import EmailChannel, SmtpConfig
from dotmac.ticketing.consumers.notify.dispatcher import Dispatcher
from dotmac.ticketing.consumers.notify.notifier import Notifier
from dotmac.ticketing.consumers.notify.rendering import NotificationTemplates
from dotmac.ticketing.consumers.notify.rules import ConfigTenantDirectory
from dotmac.ticketing.consumers.notify.template_sandbox import (
    RenderBudget,
    TemplateSandbox,
)
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.settings import Settings
from tests.notifications.events import TicketStory
from tests.notifications.running import deliveries, handle, notifier_pool
from tests.notifications.servers import smtp_sink

BUDGET = RenderBudget(seconds=0.5, max_chars=10_000)
CONFIG = {
    "tenants": {
        "acme": {
            "templates": {
                "ticket_created": {
                    "subject": "{{ range(10**7) }}",
                    "text": (
                        "{% for i in range(100000) %}{% for j in range(100000) %}"
                        "{% endfor %}{% endfor %}"
                    ),
                    "html": "<p>ACME has ticket {{ ticket.number }}</p>",
                }
            }
        }
    }
}


class _no_dead_letters:
    async def send(self, key: str, letter: Any) -> None:
        raise AssertionError(f"unexpected dead letter {key}: {letter}")


def test_failing_tenant_templates_fall_back_and_the_email_goes_out(
    isolated_database_url: str, jwt_secret: str
) -> None:
    db = isolated_database_url
    story = TicketStory(tenant_id="acme")
    sandbox = TemplateSandbox(BUDGET)

    async def scenario(port: int) -> tuple[list[dict[str, Any]], float]:
        async with notifier_pool(db) as pool:
            notifier = Notifier(
                directory=ConfigTenantDirectory(
                    {
                        "tenants": {
                            "acme": {"notifications": {"email_coalesce_seconds": 0}}
                        }
                    }
                ),
                templates=NotificationTemplates(CONFIG, sandbox=sandbox),
                public_url="https://help.acme.test",
            )
            started = time.monotonic()
            await handle(pool, notifier, story.created)
            handled_in = time.monotonic() - started
            dispatcher = Dispatcher(
                pool,
                {"email": EmailChannel(SmtpConfig(host="127.0.0.1", port=port))},
                _no_dead_letters(),
            )
            assert await dispatcher.dispatch_due() == 1
            return await deliveries(pool, "ticket_id = %s", (story.ticket_id,)), (
                handled_in
            )

    try:
        with smtp_sink() as sink:
            rows, handled_in = asyncio.run(scenario(sink.port))
            (mail,) = sink.wait_for(1)
    finally:
        sandbox.close()

    # Two renders (the e-mail and the in-app row share one), each waiting
    # out the loop's budget once, and a worker restarted after each.
    assert handled_in < 8, handled_in
    assert mail.subject == "[#7] We received your request: Printer on fire"
    assert "We received your request" in mail.part("plain")
    assert mail.part("html") == "<p>ACME has ticket 7</p>\n"
    failures = {
        row["channel"]: {f["part"]: f["error"] for f in row["template_fallback"]}
        for row in rows
    }
    assert set(failures) == {"email", "in_app"}
    assert failures["email"] == {
        "subject": (
            "OverflowError: Range too big. The sandbox blocks ranges larger than"
            " MAX_RANGE (100000)."
        ),
        "text": "did not finish within 0.5 s",
    }

    app = create_app(Settings(database_url=db, jwt_secret=jwt_secret))
    admin = issue_token(jwt_secret, tenant_id="acme", sub="admin-1", roles=["admin"])
    other = issue_token(jwt_secret, tenant_id="globex", sub="admin-2", roles=["admin"])
    agent = issue_token(jwt_secret, tenant_id="acme", sub="agent-1", roles=["agent"])
    with TestClient(app) as client:
        seen = client.get(
            "/api/v1/templates/fallbacks",
            headers={"Authorization": f"Bearer {admin}"},
        )
        elsewhere = client.get(
            "/api/v1/templates/fallbacks",
            headers={"Authorization": f"Bearer {other}"},
        )
        refused = client.get(
            "/api/v1/templates/fallbacks",
            headers={"Authorization": f"Bearer {agent}"},
        )
    assert seen.status_code == 200, seen.text
    assert sorted(
        (item["channel"], sorted(f["part"] for f in item["failures"]))
        for item in seen.json()
    ) == [("email", ["subject", "text"]), ("in_app", ["subject", "text"])]
    assert elsewhere.json() == []
    assert refused.status_code == 403
