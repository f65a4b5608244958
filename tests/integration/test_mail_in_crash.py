"""The mail-in worker SIGKILLed again and again while it takes a batch.

``ticketing worker mail-in`` runs as a child process (the production
command) reading one tenant's mailbox on the private Dovecot; the API, the
relay and the projections (customers are looked up by address) run in
this process. A batch of new messages is delivered and the worker is
killed by its PID and started again, four times: right after it stored a
ticket event (a ticket or a comment there, its attachments or its record
not yet), then right after it recorded what a message became (the
mailbox not flagged yet), and so on. Then a reply to every ticket, killed
the same way. In the end every message is exactly one ticket or one
comment, with its files once, and flagged ``$Ticketed`` in the mailbox.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import psycopg
import pytest

from dotmac.ticketing.entry.processes import start_projection_worker
from tests.dovecot import DovecotServer
from tests.integration.mail_desk import MailDesk, running_mail_desk
from tests.integration.timers_running import (
    read_model_ready,
    wait_until,
    worker_env,
)
from tests.integration.worker_process import WorkerProcess
from tests.integration.workflow_stack import new_tenant

#: Messages of each batch, and kills while it is taken: with a restart
#: taking about a second, the test stays well under a minute.
CUSTOMERS = 12
KILLS = 4
ATTACHMENT_BYTES = 200_000


@pytest.fixture(scope="module")
def desk(postgres_server_url: str) -> Iterator[MailDesk]:
    # No workflows or timers: the tickets' comments are the mail's alone.
    with running_mail_desk(postgres_server_url, workflows=False, timers=False) as mail:
        projections = start_projection_worker(mail.settings)
        try:
            wait_until(
                lambda: read_model_ready(mail.stack.ticketing), what="the read model"
            )
            yield mail
        finally:
            projections.stop()


def message(sender: str, subject: str, body: str, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "support@acme.test"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    # Something to store besides the ticket or the comment, as most mail
    # to a desk has: the window between a message's first write and its
    # record is a few of them wide.
    mail.add_attachment(
        secrets.token_bytes(ATTACHMENT_BYTES),
        maintype="application",
        subtype="octet-stream",
        filename="trace.bin",
    )
    return mail.as_bytes()


class Progress:
    """How far the tenant's mail has got, read on a connection of its own
    (polled every few milliseconds, so a kill follows a write closely)."""

    def __init__(self, desk: MailDesk, tenant: str) -> None:
        assert desk.settings.database_url is not None
        self._conn = psycopg.connect(desk.settings.database_url, autocommit=True)
        self._tenant = tenant

    def now(self) -> tuple[int, int]:
        """The tenant's tickets' versions summed (one more per event), and
        the messages recorded as done."""
        row = self._conn.execute(
            "SELECT (SELECT coalesce(sum(version), 0) FROM ticket_workload"
            "        WHERE tenant_id = %s),"
            "       (SELECT count(*) FROM inbound_messages WHERE tenant_id = %s)",
            (self._tenant, self._tenant),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def beyond(self, seen: tuple[int, int], *, part: int) -> tuple[int, int]:
        """Once ``part`` (0: events, 1: records) has moved past ``seen``."""
        deadline = time.monotonic() + 30
        while (now := self.now())[part] == seen[part]:
            assert time.monotonic() < deadline, f"no progress past {seen} in 30 s"
            time.sleep(0.002)
        return now

    def close(self) -> None:
        self._conn.close()


def kill_while_taking(worker: WorkerProcess, progress: Progress, done: int) -> None:
    """Start the worker and SIGKILL it ``KILLS`` times while it takes the
    batch, restarting it after each; leave it running.

    The kills alternate: right after a ticket event is stored (in the
    middle of a message: its ticket or comment there, its attachments or
    its record not yet), and right after a message is recorded (before
    the mailbox hears of it).
    """
    worker.start()
    seen = progress.now()
    for kill in range(KILLS):
        seen = progress.beyond(seen, part=kill % 2)
        assert seen[1] < done, f"the batch was taken before kill {kill + 1} landed"
        worker.kill()
        worker.start()


def test_every_message_is_taken_once_whatever_the_kills(
    desk: MailDesk, dovecot: DovecotServer, tmp_path: Path
) -> None:
    tenant = new_tenant("killed")
    user, password = dovecot.new_user()
    customers = [f"c{n}-{secrets.token_hex(2)}@example.com" for n in range(CUSTOMERS)]
    for n, customer in enumerate(customers):
        dovecot.append(
            user, password, message(customer, f"Problem {n}", f"Broken thing {n}.")
        )
    worker = WorkerProcess(
        "mail-in",
        worker_env(
            desk.settings,
            TICKETING_MAIL_IN_ALLOW_PRIVATE="true",
            TICKETING_MAIL_IN_IDLE_SECONDS="1",
            TICKETING_METRICS="false",
        ),
        tmp_path,
    )
    desk.read_mailbox(tenant, dovecot, user, password)
    progress = Progress(desk, tenant)
    try:
        kill_while_taking(worker, progress, done=CUSTOMERS)
        opened = {r["sender"]: r for r in desk.taken(tenant, count=CUSTOMERS)}
        worker.kill()  # idle this time, waiting for mail

        # A reply to every ticket, naming it as the notifier's mail does.
        for n, customer in enumerate(customers):
            dovecot.append(
                user,
                password,
                message(
                    customer,
                    f"Re: Problem {n}",
                    f"Still broken {n}.\n\nOn Mon, Acme wrote:\n> On it\n",
                    In_Reply_To=f"<ticket-{opened[customer]['ticket_id']}@acme.test>",
                ),
            )
        kill_while_taking(worker, progress, done=2 * CUSTOMERS)
        wait_until(
            lambda: all(
                "$Ticketed" in flags for _, flags in dovecot.messages(user, password)
            ),
            what="every message flagged",
        )
        taken = desk.taken(tenant, count=2 * CUSTOMERS)
    except BaseException:
        print(f"--- ticketing worker mail-in\n{worker.tail()}")
        raise
    finally:
        worker.stop()
        progress.close()

    assert worker.kills == 2 * KILLS + 1
    assert len(taken) == 2 * CUSTOMERS
    assert len(dovecot.messages(user, password)) == 2 * CUSTOMERS
    assert (
        sorted(r["outcome"] for r in taken)
        == ["comment"] * CUSTOMERS + ["ticket"] * CUSTOMERS
    )
    assert ticket_ids(desk, tenant) == {r["ticket_id"] for r in opened.values()}
    for n, customer in enumerate(customers):
        ticket_id = opened[customer]["ticket_id"]
        ticket = desk.stack.ticket(tenant, ticket_id)
        assert ticket["customer_email"] == customer
        assert ticket["description"] == f"Broken thing {n}."
        # The opening message's files and the reply's, each once.
        assert sorted(a["filename"] for a in ticket["attachments"]) == [
            "message.eml",
            "message.eml",
            "trace.bin",
            "trace.bin",
        ]
        comments = desk.stack.comments(tenant, ticket_id)
        assert [(c["body"], c["internal"]) for c in comments] == [
            (f"Still broken {n}.", False)
        ]
        replies = [r for r in taken if r["outcome"] == "comment"]
        assert [r["ticket_id"] for r in replies if r["sender"] == customer] == [
            ticket_id
        ]


def ticket_ids(desk: MailDesk, tenant: str) -> set[str]:
    """Every ticket of the tenant, as the store wrote them (not the read model)."""
    url = desk.settings.database_url
    assert url is not None
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ticket_id::text FROM ticket_workload WHERE tenant_id = %s",
            (tenant,),
        ).fetchall()
    return {row[0] for row in rows}
