"""Reading what people received about a ticket, once the notifier is done.

For tests with the workflow stack (API, relay, timers, workflows on one
movable clock) and the notifier on the same clock, sending to aiosmtpd.
E-mail may be held for the tenant's merging window: :func:`settle` moves
the clock to the end of every held window, never further, so each mail
goes out as it would in production, and waits until all of them are sent.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from dotmac.ticketing.consumers.notify.notifier import NOTIFIER_NAME
from tests.integration.timers_running import wait_until
from tests.integration.workflow_stack import WorkflowStack
from tests.notifications.servers import ReceivedMail, SmtpSink


def notified(stack: WorkflowStack, tenant: str, ticket_id: str) -> None:
    """Wait until the notifier has handled the ticket's latest event."""
    version = stack.ticket(tenant, ticket_id)["version"]
    url = stack.settings.database_url
    assert url is not None

    def handled() -> bool:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT 1 FROM consumer_processed_events"
                " WHERE consumer = %s AND event_id = %s",
                (NOTIFIER_NAME, f"{ticket_id}:{version}"),
            ).fetchone()
        return row is not None

    wait_until(handled, what=f"the notifier to handle version {version}")


def held_until(stack: WorkflowStack, ticket_id: str) -> datetime | None:
    """When the last e-mail held for the ticket is due (None: none held)."""
    url = stack.settings.database_url
    assert url is not None
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT max(hold_until) FROM notification_deliveries"
            " WHERE ticket_id = %s AND channel = 'email' AND status = 'pending'"
            " AND merged_into IS NULL",
            (ticket_id,),
        ).fetchone()
    return None if row is None else row[0]


def unsent(stack: WorkflowStack, ticket_id: str) -> int:
    url = stack.settings.database_url
    assert url is not None
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notification_deliveries WHERE ticket_id = %s"
            " AND channel = 'email' AND status <> 'sent'",
            (ticket_id,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def settle(stack: WorkflowStack, tenant: str, ticket_id: str) -> None:
    """Let every e-mail about the ticket go out: its held windows close."""
    notified(stack, tenant, ticket_id)
    due = held_until(stack, ticket_id)
    if due is not None and due > stack.clock():
        stack.clock.set(due)
    wait_until(lambda: unsent(stack, ticket_id) == 0, what="every e-mail sent")


def mailbox(smtp: SmtpSink, address: str) -> list[ReceivedMail]:
    """Every mail to ``address`` so far, in the order the server took them."""
    return [mail for mail in smtp.received() if address in mail.rcpt_tos]
