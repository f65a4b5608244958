"""The desk of the e-mail tests: the workflow stack with a mail server each way.

One :class:`MailDesk` is the workflow stack (the API over HTTP, the relay,
and unless a test leaves them out the timers and the workflows, on one
movable clock) on a fresh database and broker, configured to send its
mail to an SMTP server (aiosmtpd) that keeps every message. A test adds
the workers it is about (the notifier, the mail-in worker, on a thread or
as a child process) and, for inbound mail, points a tenant at a mailbox
of the private Dovecot (``tests.dovecot``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dotmac.ticketing.consumers.kafka.broker import start_dev_broker
from dotmac.ticketing.service.settings import Settings
from tests.conftest import fresh_database
from tests.dovecot import DovecotServer
from tests.integration.timers_running import MovableClock, wait_until
from tests.integration.workflow_stack import (
    WorkflowStack,
    running_workflow_stack,
    workflow_settings,
)
from tests.notifications.servers import SmtpSink, smtp_sink

SENDER = "Acme Support <support@acme.test>"


@dataclass
class MailDesk:
    stack: WorkflowStack
    smtp: SmtpSink

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def read_mailbox(
        self, tenant: str, imap: DovecotServer, user: str, password: str
    ) -> None:
        """The tenant's one mailbox: ``user``'s INBOX on the private Dovecot."""
        mailbox = {
            "name": "support",
            "host": imap.host,
            "port": imap.port,
            "security": "plain",
            "username": user,
            "password": password,
        }
        self.stack.put_settings(tenant, {"inbound_email": {"mailboxes": [mailbox]}})

    def taken(
        self, tenant: str, sender: str | None = None, count: int = 1
    ) -> list[dict[str, Any]]:
        """What the tenant's messages (from ``sender``) became, oldest first,
        once at least ``count`` of them are taken."""
        url = self.settings.database_url
        assert url is not None

        def rows() -> list[dict[str, Any]] | None:
            with psycopg.connect(url, row_factory=dict_row) as conn:
                found = conn.execute(
                    "SELECT sender, subject, outcome, ticket_id::text, comment_id,"
                    " reason FROM inbound_messages WHERE tenant_id = %s"
                    " AND (%s::text IS NULL OR sender = %s) ORDER BY received_at",
                    (tenant, sender, sender),
                ).fetchall()
            return found if len(found) >= count else None

        return wait_until(
            rows, what=f"{count} message(s) from {sender or 'anyone'} taken"
        )


@contextmanager
def running_mail_desk(
    postgres_server_url: str,
    *,
    workflows: bool = True,
    timers: bool = True,
    **settings: Any,
) -> Iterator[MailDesk]:
    """The stack on a fresh database and broker, its mail going to a sink.

    ``settings`` are more of the stack's (``workflow_settings``).
    """
    with ExitStack() as cleanup:
        database_url = cleanup.enter_context(fresh_database(postgres_server_url))
        broker = cleanup.enter_context(start_dev_broker())
        smtp = cleanup.enter_context(smtp_sink())
        stack = cleanup.enter_context(
            running_workflow_stack(
                workflow_settings(
                    database_url,
                    broker,
                    smtp_host="127.0.0.1",
                    smtp_port=smtp.port,
                    smtp_from=SENDER,
                    **settings,
                ),
                clock=MovableClock(),
                workflows=workflows,
                timers=timers,
            )
        )
        yield MailDesk(stack, smtp)
