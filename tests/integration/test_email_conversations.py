"""E-mail a person would neither call spam nor broken (issue 11, point 6).

Everything real: the API over HTTP (FastAPI's TestClient over the real
app), the relay, the workflow runtime and the timers on one movable clock,
the notifier on that clock too, and an SMTP server (aiosmtpd) keeping every
message. Each test is a tenant of its own, configured over HTTP
(``PUT /api/v1/settings``):

- a workflow's comments are not mailed to agents;
- what happens to a ticket within the tenant's window reaches each person
  as one mail, held durably in the ledger across a restart;
- every mail threads: Message-ID, In-Reply-To, References, Reply-To, [#N];
- times read in the tenant's zone and locale, people by their names;
- the resolution's rating links work from a mail client (GET).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from dotmac.ticketing.entry.processes import start_notifier
from dotmac.ticketing.schemas.locales import readable_moment
from tests.integration.mail_desk import SENDER, MailDesk, running_mail_desk
from tests.integration.mailboxes import mailbox, notified, settle
from tests.integration.timers_running import wait_until
from tests.integration.workflow_stack import API, WorkflowStack, new_tenant
from tests.notifications.servers import ReceivedMail

PUBLIC_URL = "https://help.acme.test"
WEEK = {
    day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
BROWSER = {"Accept": "text/html"}


@dataclass
class Desk(MailDesk):
    notifier: Any

    def restart_notifier(self) -> None:
        self.notifier.stop()
        self.notifier = start_notifier(
            self.stack.settings, config={}, clock=self.stack.clock
        )


@pytest.fixture(scope="module")
def desk(postgres_server_url: str) -> Iterator[Desk]:
    with running_mail_desk(postgres_server_url, public_url=PUBLIC_URL) as mail:
        running = Desk(
            mail.stack,
            mail.smtp,
            start_notifier(mail.settings, config={}, clock=mail.stack.clock),
        )
        try:
            yield running
        finally:
            running.notifier.stop()


def agent_mail(tenant: str) -> str:
    """Grace's address at the tenant (every tenant's tickets start at #1)."""
    return f"grace@{tenant}.test"


def configure(stack: WorkflowStack, tenant: str, **notifications: Any) -> None:
    """The tenant's desk: Berlin hours, Grace on Support taking every ticket."""
    stack.put_settings(
        tenant,
        {
            "business_hours": {"timezone": "Europe/Berlin", "week": WEEK},
            "sla_config": {"high": {"response": 60, "resolution": 480}},
            "teams": [
                {
                    "name": "Support",
                    "agents": [
                        {
                            "id": "agent-1",
                            "name": "Grace Hopper",
                            "email": agent_mail(tenant),
                        }
                    ],
                }
            ],
            "assignment_rules": [{"name": "everything", "assigned_team": "Support"}],
            "notifications": notifications,
        },
    )


def post(stack: WorkflowStack, path: str, headers: dict[str, str], **body: Any) -> Any:
    response = stack.client.post(f"{API}{path}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def open_ticket(desk: Desk, tenant: str, address: str, **body: Any) -> tuple[str, int]:
    opened = desk.stack.open_ticket(
        tenant,
        title=body.pop("title", "Cannot log in"),
        description=body.pop("description", "The reset link says it expired."),
        priority="high",
        customer_email=address,
        customer_name="Ada Lovelace",
        **body,
    )
    desk.stack.wait_until_completed(tenant, opened["id"])
    settle(desk.stack, tenant, opened["id"])
    return opened["id"], opened["number"]


def subjects(mails: list[ReceivedMail]) -> list[str]:
    return [mail.subject for mail in mails]


# -- 1. the desk's own bots are not news to agents ----------------------------------


def test_a_workflows_comment_is_mailed_to_the_customer_but_not_to_agents(
    desk: Desk,
) -> None:
    tenant, address = new_tenant("bots"), "ada@bots.test"
    configure(desk.stack, tenant)
    # No description: the customer_support workflow asks for one, as a
    # comment of workflow:customer_support on a ticket Grace was assigned.
    ticket_id, number = open_ticket(desk, tenant, address, description="")
    (asked,) = [
        c
        for c in desk.stack.comments(tenant, ticket_id)
        if not c["internal"] and "description of the problem" in c["body"]
    ]
    assert asked["author_id"] == "workflow:customer_support"

    to_agent = mailbox(desk.smtp, agent_mail(tenant))
    assert [s for s in subjects(to_agent) if str(number) in s] == [
        f"[#{number}] Assigned to you: Cannot log in"
    ]
    assert not any("workflow:" in m.subject + m.part("plain") for m in to_agent)
    (to_customer,) = mailbox(desk.smtp, address)
    assert "please reply with a description" in " ".join(
        to_customer.part("plain").split()
    )


# -- 2. one mail for what happens within the window ------------------------------


def test_a_reply_then_a_resolution_reach_the_customer_as_one_mail(
    desk: Desk,
) -> None:
    stack = desk.stack
    tenant, address = new_tenant("merge"), "ada@merge.test"
    configure(stack, tenant, email_coalesce_seconds=45)
    ticket_id, number = open_ticket(desk, tenant, address)
    before = len(mailbox(desk.smtp, address))
    started = stack.clock()

    post(
        stack,
        f"/tickets/{ticket_id}/comments",
        stack.agent(tenant),
        body="Please check your spam folder; we resent the link.",
    )
    post(
        stack,
        f"/tickets/{ticket_id}/resolve",
        stack.agent(tenant),
        resolution="Reset link resent",
        resolution_code="fixed",
    )
    notified(stack, tenant, ticket_id)
    # Both are decided and one mail is held for the window: nothing sent yet.
    assert len(mailbox(desk.smtp, address)) == before
    rows = _email_rows(stack, ticket_id, address)
    held = [r for r in rows if r["status"] == "pending" and r["merged_into"] is None]
    assert len(held) == 1
    assert held[0]["hold_until"] == started + timedelta(seconds=45)
    assert [r["merged_into"] for r in rows if r["merged_into"]] == [
        held[0]["delivery_key"]
    ]

    stack.clock.set(started + timedelta(seconds=45))
    wait_until(
        lambda: len(mailbox(desk.smtp, address)) > before, what="the merged mail"
    )
    settle(stack, tenant, ticket_id)
    (mail,) = mailbox(desk.smtp, address)[before:]
    assert mail.subject == f"[#{number}] Resolved: Cannot log in"
    text = mail.part("plain")
    assert "There are 2 updates on your request" in text
    assert text.index("we resent the link") < text.index("Reset link resent")
    assert text.count("Hello Ada Lovelace,") == 1
    assert {r["status"] for r in _email_rows(stack, ticket_id, address)} == {"sent"}


def test_a_window_of_zero_sends_each_update_at_once(desk: Desk) -> None:
    stack = desk.stack
    tenant, address = new_tenant("nomerge"), "ada@nomerge.test"
    configure(stack, tenant, email_coalesce_seconds=0)
    ticket_id, number = open_ticket(desk, tenant, address)
    post(stack, f"/tickets/{ticket_id}/comments", stack.agent(tenant), body="Done?")
    post(
        stack,
        f"/tickets/{ticket_id}/resolve",
        stack.agent(tenant),
        resolution="Fixed",
        resolution_code="fixed",
    )
    notified(stack, tenant, ticket_id)
    wait_until(lambda: len(mailbox(desk.smtp, address)) == 3, what="three mails")
    assert subjects(mailbox(desk.smtp, address)) == [
        f"[#{number}] We received your request: Cannot log in",
        f"[#{number}] New reply: Cannot log in",
        f"[#{number}] Resolved: Cannot log in",
    ]


def test_a_held_mail_survives_a_restart_of_the_notifier(desk: Desk) -> None:
    stack = desk.stack
    tenant, address = new_tenant("durable"), "ada@durable.test"
    configure(stack, tenant, email_coalesce_seconds=60)
    ticket_id, number = open_ticket(desk, tenant, address)
    before = len(mailbox(desk.smtp, address))
    post(stack, f"/tickets/{ticket_id}/comments", stack.agent(tenant), body="One")
    notified(stack, tenant, ticket_id)

    desk.restart_notifier()  # the held mail is a ledger row, not memory
    post(stack, f"/tickets/{ticket_id}/comments", stack.agent(tenant), body="Two")
    settle(stack, tenant, ticket_id)
    (mail,) = mailbox(desk.smtp, address)[before:]
    assert mail.subject == f"[#{number}] New reply: Cannot log in"
    assert mail.part("plain").index("One") < mail.part("plain").index("Two")


# -- 3. threading -------------------------------------------------------------------


def test_every_mail_about_a_ticket_threads_and_says_where_replies_go(
    desk: Desk,
) -> None:
    stack = desk.stack
    tenant, address = new_tenant("thread"), "ada@thread.test"
    configure(stack, tenant, reply_to="replies@acme.test")
    ticket_id, number = open_ticket(desk, tenant, address)
    post(stack, f"/tickets/{ticket_id}/comments", stack.agent(tenant), body="Hi")
    settle(stack, tenant, ticket_id)
    post(
        stack,
        f"/tickets/{ticket_id}/resolve",
        stack.agent(tenant),
        resolution="Fixed",
        resolution_code="fixed",
    )
    settle(stack, tenant, ticket_id)

    root = f"<ticket-{ticket_id}@acme.test>"
    first, *later = mailbox(desk.smtp, address)
    assert len(later) == 2
    assert first.message_id == root
    assert first.message["In-Reply-To"] is None
    for mail in later:
        assert re.fullmatch(
            rf"<ticket-{ticket_id}\.\d+\.[0-9a-f]{{8}}@acme\.test>", mail.message_id
        )
        assert mail.message["In-Reply-To"] == root
        assert mail.message["References"] == root
    assert len({m.message_id for m in [first, *later]}) == 3
    for mail in [first, *later]:
        assert str(mail.message["Reply-To"]) == "replies@acme.test"
        assert f"[#{number}]" in mail.subject
    (assigned,) = [
        m for m in mailbox(desk.smtp, agent_mail(tenant)) if f"[#{number}]" in m.subject
    ]
    assert assigned.message["In-Reply-To"] == root


def test_replies_go_to_the_sender_unless_the_tenant_says_otherwise(
    desk: Desk,
) -> None:
    tenant, address = new_tenant("replyto"), "ada@replyto.test"
    configure(desk.stack, tenant)
    open_ticket(desk, tenant, address)
    (ack,) = mailbox(desk.smtp, address)
    assert str(ack.message["Reply-To"]) == SENDER


# -- 4. and 5. the tenant's time and people's names --------------------------------


def test_times_read_in_the_tenants_zone_and_locale_and_people_by_name(
    desk: Desk,
) -> None:
    stack = desk.stack
    tenant, address = new_tenant("local"), "ada@local.test"
    configure(stack, tenant, locale="en_GB")
    ticket_id, number = open_ticket(desk, tenant, address)
    sla = stack.client.get(
        f"{API}/tickets/{ticket_id}/sla", headers=stack.agent(tenant)
    ).json()
    due = datetime.fromisoformat(sla["first_response"]["due_at"])
    (ack,) = mailbox(desk.smtp, address)
    text = ack.part("plain")
    promised = readable_moment(due, timezone="Europe/Berlin", locale="en_GB")
    assert re.fullmatch(r"\w+day, \d{1,2} \w+ \d{4}, \d\d:\d\d CES?T", promised)
    assert f"An agent will reply by {promised}." in text
    assert "UTC" not in text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", text)  # no ISO 8601
    assert text.startswith("Hello Ada Lovelace,")

    post(
        stack,
        f"/tickets/{ticket_id}/comments",
        stack.customer(tenant),
        body="Any news?",
    )
    settle(stack, tenant, ticket_id)
    (answer,) = [
        m
        for m in mailbox(desk.smtp, agent_mail(tenant))
        if f"[#{number}]" in m.subject and "comment" in m.subject
    ]
    assert answer.subject == f"[#{number}] New comment from Ada Lovelace: Cannot log in"
    assert "cust-1" not in answer.part("plain")
    assert "(customer)" not in answer.part("plain") + answer.part("html")


# -- 6. rating from the mail client ---------------------------------------------


def test_the_resolutions_rating_links_work_from_a_mail_client(desk: Desk) -> None:
    stack = desk.stack
    tenant, address = new_tenant("csat"), "ada@csat.test"
    configure(stack, tenant)
    ticket_id, _ = open_ticket(desk, tenant, address)
    post(
        stack,
        f"/tickets/{ticket_id}/resolve",
        stack.agent(tenant),
        resolution="Fixed",
        resolution_code="fixed",
    )
    settle(stack, tenant, ticket_id)
    resolved = mailbox(desk.smtp, address)[-1]
    links = re.findall(
        rf'href="({re.escape(PUBLIC_URL)}/api/v1/satisfaction/[^"?]+\?rating=(\d))"',
        resolved.part("html"),
    )
    assert [rating for _, rating in links] == ["1", "2", "3", "4", "5"]
    five = dict((rating, url) for url, rating in links)["5"]
    assert f"5 - Excellent: {five}" in resolved.part("plain")

    # A click in a mail program is a GET, without a login.
    clicked = stack.client.get(five.removeprefix(PUBLIC_URL), headers=BROWSER)
    assert clicked.status_code == 200, clicked.text
    assert "5 out of 5 (Excellent)" in clicked.text
    assert stack.ticket(tenant, ticket_id)["satisfaction"] == {
        "rating": 5,
        "comment": "",
    }
    (rated,) = [
        e for e in stack.history(tenant, ticket_id) if e["event"] == "SatisfactionRated"
    ]
    assert rated["actor"]["id"] == "cust-1"


def _email_rows(
    stack: WorkflowStack, ticket_id: str, address: str
) -> list[dict[str, Any]]:
    url = stack.settings.database_url
    assert url is not None
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT delivery_key, status, hold_until, merged_into, created_at"
            " FROM notification_deliveries WHERE ticket_id = %s"
            " AND channel = 'email' AND recipient = %s ORDER BY created_at",
            (ticket_id, address),
        ).fetchall()
