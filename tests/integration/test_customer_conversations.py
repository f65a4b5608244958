"""What a customer receives: every e-mail of a ticket, in order, per workflow.

Everything real, as in production: the API (FastAPI's TestClient over the
real app), the relay publishing to the bundled broker, the workflow runtime
and the timers on one movable clock, the notifier with its dispatcher, and
an SMTP server (aiosmtpd) that keeps every message. No integration is
configured, as out of the box: steps that would call another system wait
for a person, who completes them over HTTP.

The rule under test (issue 10): a customer is acknowledged once, by the
"We received your request" e-mail that states when an agent will reply;
a workflow's own acknowledgment is recorded on the ticket, not mailed again.
What happens within the tenant's merging window (30 s by default) reaches
the customer as one mail (issue 11): the acknowledgment together with the
question a workflow asks at once, a reply together with the resolution.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.domain.acknowledgment import readable
from dotmac.ticketing.domain.diagnostics import DEFAULT_QUESTIONS, DEVICE
from dotmac.ticketing.entry.processes import start_notifier
from dotmac.ticketing.schemas.locales import readable_moment
from tests.conftest import fresh_database
from tests.integration.mailboxes import settle
from tests.integration.timers_running import MovableClock
from tests.integration.workflow_stack import (
    API,
    WorkflowStack,
    events_named,
    new_tenant,
    running_workflow_stack,
    step_of,
    workflow_settings,
)
from tests.notifications.servers import SmtpSink, smtp_sink


@dataclass
class Desk:
    """The stack, and the mail server the customers' e-mail goes to."""

    stack: WorkflowStack
    smtp: SmtpSink


@pytest.fixture(scope="module")
def desk(postgres_server_url: str) -> Iterator[Desk]:
    with ExitStack() as cleanup:
        database_url = cleanup.enter_context(fresh_database(postgres_server_url))
        broker = cleanup.enter_context(start_dev_broker())
        smtp = cleanup.enter_context(smtp_sink())
        settings = workflow_settings(
            database_url,
            broker,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_from="Acme Support <support@acme.test>",
            public_url="https://help.acme.test",
        )
        stack = cleanup.enter_context(
            running_workflow_stack(settings, clock=MovableClock())
        )
        notifier = start_notifier(settings, config={}, clock=stack.clock)
        cleanup.callback(notifier.stop)
        yield Desk(stack, smtp)


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str


def conversation(desk: Desk, tenant: str, ticket_id: str, address: str) -> list[Mail]:
    """Every e-mail the customer got about the ticket so far, in order.

    Waits until the notifier has handled the ticket's latest event and the
    dispatcher has sent every e-mail that decided (the clock moved to the
    end of a merging window that is open), so that a mail missing or one
    too many is seen, not raced.
    """
    settle(desk.stack, tenant, ticket_id)
    return [
        Mail(mail.subject, mail.part("plain"))
        for mail in desk.smtp.received()
        if address in mail.rcpt_tos
    ]


def subjects(mails: list[Mail]) -> list[str]:
    return [mail.subject for mail in mails]


def first_response_due(stack: WorkflowStack, tenant: str, ticket_id: str) -> datetime:
    sla = stack.client.get(
        f"{API}/tickets/{ticket_id}/sla", headers=stack.agent(tenant)
    ).json()
    return datetime.fromisoformat(sla["first_response"]["due_at"])


def reply_by(stack: WorkflowStack, tenant: str, ticket_id: str) -> str:
    """The first-response due time, as the acknowledgment mail words it.

    The tenant has no calendar of its own: UTC, in its default locale (en).
    """
    return readable_moment(first_response_due(stack, tenant, ticket_id))


def post(stack: WorkflowStack, path: str, headers: dict[str, str], **body: Any) -> Any:
    response = stack.client.post(f"{API}{path}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def complete(stack: WorkflowStack, tenant: str, ticket_id: str, step: str, **data: Any):
    return post(
        stack,
        f"/tickets/{ticket_id}/workflow/steps/{step}/complete",
        stack.agent(tenant),
        data=data,
    )


def assert_acknowledged_once(
    mails: list[Mail], number: int, title: str, due: str
) -> None:
    ack = mails[0]
    assert ack.subject == f"[#{number}] We received your request: {title}"
    assert f"An agent will reply by {due}." in ack.text
    others = [m for m in mails[1:] if "received your request" in m.text.casefold()]
    assert others == [], "acknowledged more than once"


# -- customer support (general) ---------------------------------------------------


def test_customer_support_acknowledges_once_then_replies_and_resolves(
    desk: Desk,
) -> None:
    stack = desk.stack
    tenant, address = new_tenant("conv-cs"), "ada@example.test"
    title = "Cannot log in to my account"
    opened = stack.open_ticket(
        tenant,
        title=title,
        description="The password reset e-mail never arrives.",
        customer_email=address,
    )
    ticket_id, number = opened["id"], opened["number"]
    flow = stack.wait_until_completed(tenant, ticket_id)
    due = reply_by(stack, tenant, ticket_id)

    # The workflow acknowledged on the ticket too, promising the same time:
    # recorded there, not mailed a second time.
    assert step_of(flow, "send_acknowledgment")["data"]["acknowledged"] is True
    (comment,) = stack.comments(tenant, ticket_id)
    assert comment["author_role"] == "automation"
    # (The workflow's comment words the time in its own way.)
    written = readable(first_response_due(stack, tenant, ticket_id))
    assert f"An agent will reply by {written}." in comment["body"]
    mails = conversation(desk, tenant, ticket_id, address)
    assert subjects(mails) == [f"[#{number}] We received your request: {title}"]
    assert_acknowledged_once(mails, number, title, due)

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
    # The reply and the resolution a moment later: one mail, both in order.
    mails = conversation(desk, tenant, ticket_id, address)
    assert subjects(mails) == [
        f"[#{number}] We received your request: {title}",
        f"[#{number}] Resolved: {title}",
    ]
    assert "There are 2 updates on your request" in mails[1].text
    assert mails[1].text.index("we resent the link") < mails[1].text.index(
        "Reset link resent"
    )


# -- technical support -------------------------------------------------------------


def test_technical_support_acknowledges_once_and_asks_for_diagnostics(
    desk: Desk,
) -> None:
    stack = desk.stack
    tenant, address = new_tenant("conv-tech"), "grace@example.test"
    # The team the ticket is with: told of escalations by e-mail (issue 11:
    # four "Escalated" mails for an escalation that changed nothing).
    team = [f"agent-{n}" for n in range(1, 5)]
    stack.put_settings(
        tenant,
        {
            "teams": [
                {
                    "name": "Support",
                    "agents": [{"id": a, "email": f"{a}@acme.test"} for a in team],
                }
            ]
        },
    )
    title = "VPN drops every few minutes"
    opened = stack.open_ticket(
        tenant,
        title=title,
        description="It keeps disconnecting.",
        category="technical_support",
        customer_email=address,
    )
    ticket_id, number = opened["id"], opened["number"]
    stack.wait_until_waiting_on(tenant, ticket_id, "collect_diagnostics")
    due = reply_by(stack, tenant, ticket_id)
    post(
        stack,
        f"/tickets/{ticket_id}/assign",
        stack.agent(tenant),
        team="Support",
        assignee_id="agent-1",
    )

    # One acknowledgment, with the question the customer has to answer
    # (asked in the same moment: one mail). A VPN client is a device
    # problem, so the device question.
    mails = conversation(desk, tenant, ticket_id, address)
    assert subjects(mails) == [f"[#{number}] We received your request: {title}"]
    assert_acknowledged_once(mails, number, title, due)
    assert DEFAULT_QUESTIONS[DEVICE] in " ".join(mails[0].text.split())

    # The answer; no diagnostics system is configured, so an agent judges.
    post(
        stack,
        f"/tickets/{ticket_id}/comments",
        stack.customer(tenant),
        body="Windows 11, VPN client 5.2.1, error 'TLS handshake failed'.",
    )
    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "analyze", message="no integration 'diagnostics'"
    )
    assert step_of(flow, "analyze")["data"]["settings_section"] == "integrations"
    complete(stack, tenant, ticket_id, "analyze", complex=True, summary="old client")
    # Complex, but no rule or option names another team: Support keeps it,
    # and no escalation is recorded (so nobody is mailed "Escalated").
    flow = stack.wait_until_waiting_on(tenant, ticket_id, "provide_solution")
    kept = step_of(flow, "escalate_complex")
    assert kept["data"]["escalated"] is False, kept
    assert kept["data"]["kept_by"] == "team Support (agent agent-1)"
    assert events_named(stack.history(tenant, ticket_id), "TicketEscalated") == []

    # An agent's question is no solution: the workflow waits on.
    post(
        stack,
        f"/tickets/{ticket_id}/comments",
        stack.agent(tenant),
        body="Which version of the VPN client do you run now?",
    )
    stack.wait_until_waiting_on(tenant, ticket_id, "provide_solution")
    solution = post(
        stack,
        f"/tickets/{ticket_id}/comments",
        stack.agent(tenant),
        body="Please update the VPN client to 5.2.2.",
        solution=True,
    )
    flow = stack.wait_until_waiting_on(
        tenant, ticket_id, "verify_resolution", message="to be resolved"
    )
    solved = step_of(flow, "provide_solution")["data"]
    assert solved["solution_comment_id"] == solution["id"]
    resolved = post(
        stack,
        f"/tickets/{ticket_id}/resolve",
        stack.agent(tenant),
        resolution="Client updated",
        resolution_code="fixed",
    )
    stack.wait_until_waiting_on(
        tenant, ticket_id, "verify_resolution", message="closes at"
    )
    resolved_at = datetime.fromisoformat(resolved["resolved_at"])
    stack.clock.set(resolved_at + timedelta(hours=72))
    stack.wait_until_completed(tenant, ticket_id)

    # The solution and the resolution right after it: one mail.
    mails = conversation(desk, tenant, ticket_id, address)
    assert subjects(mails) == [
        f"[#{number}] We received your request: {title}",
        f"[#{number}] Resolved: {title}",
    ]
    assert "Which version of the VPN client" in mails[1].text
    assert "update the VPN client to 5.2.2" in mails[1].text
    assert "Client updated" in mails[1].text
    assert stack.ticket(tenant, ticket_id)["status"] == "closed"
    # Nobody, in the team or elsewhere, was told of an escalation.
    escalated = [
        mail.subject
        for mail in desk.smtp.received()
        if mail.subject.startswith(f"[#{number}] Escalated")
    ]
    assert escalated == []


# -- billing ------------------------------------------------------------------------


def test_billing_without_integrations_is_done_by_people_and_acknowledged_once(
    desk: Desk,
) -> None:
    stack = desk.stack
    tenant, address = new_tenant("conv-bill"), "linus@example.test"
    title = "Charged twice for March"
    opened = stack.open_ticket(
        tenant,
        title=title,
        description="Invoice INV-2 charges me again for March.",
        category="billing",
        customer_email=address,
    )
    ticket_id, number = opened["id"], opened["number"]

    # Nothing to call: each step that would call a system hands itself to
    # a person, who does it by hand and completes it.
    for step, integration, data in (
        (
            "verify_account",
            "account_lookup",
            {"verified": True, "account_id": "ACC-7", "status": "active"},
        ),
        ("review_billing_history", "billing_history", {"disputed_amount": 40.0}),
        ("apply_adjustment", "apply_adjustment", {"applied": True, "reference": "A9"}),
    ):
        flow = stack.wait_until_waiting_on(
            tenant, ticket_id, step, message=f"no integration {integration!r}"
        )
        waiting = step_of(flow, step)
        assert (
            f"configure {integration!r} in the settings section" in (waiting["message"])
        )
        assert waiting["data"]["integration"] == integration
        complete(stack, tenant, ticket_id, step, **data)
    flow = stack.wait_until_completed(tenant, ticket_id)
    assert step_of(flow, "approve_adjustment")["data"]["approved_by"] == "automatic"
    assert events_named(stack.history(tenant, ticket_id), "WorkflowStepFailed") == []

    due = reply_by(stack, tenant, ticket_id)
    mails = conversation(desk, tenant, ticket_id, address)
    # The people did the steps at once: the adjustment's notice comes
    # with the acknowledgment, in one mail.
    assert subjects(mails) == [f"[#{number}] We received your request: {title}"]
    assert_acknowledged_once(mails, number, title, due)
    assert (
        "applied an adjustment of 40.00 EUR to your account (reference A9)."
        in " ".join(mails[0].text.split())
    )
