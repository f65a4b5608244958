"""Inbound e-mail: from IMAP APPEND to a ticket, against Dovecot's own FETCH.

One fresh database, one private Dovecot (``tests.dovecot``), the service's
write side, the projection worker and the mail-in worker on threads of this
process (production code, IDLE on):

1. baseline: Dovecot answering ``UID FETCH BODY.PEEK[]`` of one stored
   message, per message (the least a reader of the mailbox waits for);
2. a burst: ``--mail-burst`` messages appended at once, each from another
   sender (so each opens a ticket); messages/s from the first APPEND to the
   last ticket stored;
3. a steady rate: ``--mail-rate`` messages/s for ``--mail-seconds``;
   latency from each APPEND's answer to its ticket stored (the row saying
   what the message became is written after the ticket's events commit).
"""

from __future__ import annotations

import argparse
import imaplib
import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from tests.bench.harness import BenchError, bench_database, percentile

TENANT_MAIL = "bench-mail"


@dataclass
class MailRow:
    name: str
    messages: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inbound e-mail")
    group.add_argument("--mail-burst", type=int, default=200)
    group.add_argument("--mail-rate", type=float, default=10.0)
    group.add_argument("--mail-seconds", type=float, default=10.0)


def _message(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"sender{n}@bench.example"
    mail["To"] = "support@bench.example"
    mail["Subject"] = f"Bench message {n}"
    mail["Message-ID"] = make_msgid(domain="bench.example")
    mail.set_content(f"Message number {n}.\n")
    return mail.as_bytes()


def run_mail_in(args: argparse.Namespace, *, progress: Console) -> list[MailRow]:
    from dotmac.ticketing.entry.processes import start_mail_in, start_projection_worker
    from dotmac.ticketing.service.bootstrap import initialize_ticketing
    from dotmac.ticketing.service.context import RequestContext
    from dotmac.ticketing.service.settings import Settings
    from tests.dovecot import DOVECOT, DovecotServer

    if not Path(DOVECOT).exists():
        raise BenchError("dovecot is not installed (apt-get install dovecot-imapd)")
    with bench_database() as db, ExitStack() as cleanup:
        root = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        os.chmod(root, 0o755)
        imap = DovecotServer(root)
        cleanup.callback(imap.stop)
        user, password = imap.new_user()
        settings = Settings(
            database_url=db.url,
            mail_in_allow_private=True,
            mail_in_idle_seconds=5.0,
        )
        core = initialize_ticketing(settings)
        cleanup.callback(core.close)
        admin = RequestContext(
            tenant_id=TENANT_MAIL, user_id="admin", roles=frozenset({"admin"})
        )
        core.settings_service.replace(
            admin,
            {
                "inbound_email": {
                    "mailboxes": [
                        {
                            "name": "bench",
                            "host": "127.0.0.1",
                            "port": imap.port,
                            "security": "plain",
                            "username": user,
                            "password": password,
                        }
                    ],
                    "max_messages_per_sender_per_minute": 10_000,
                }
            },
        )
        for worker in (start_projection_worker(settings), start_mail_in(settings)):
            cleanup.callback(worker.stop)
        client = imaplib.IMAP4(imap.host, imap.port)
        client.login(user, password)
        cleanup.callback(client.logout)
        progress.log("mail-in: Dovecot, projections and mail-in worker running")
        _wait_taken(db.url, 0, timeout=30)  # the first build, the worker's login
        rows = [_fetch_baseline(client, args.mail_burst)]
        _wait_taken(db.url, 0, timeout=30)
        rows.append(_burst(client, db.url, args.mail_burst))
        rows.append(_steady(client, db.url, args.mail_rate, args.mail_seconds))
        return rows


def _taken(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM inbound_messages WHERE outcome = 'ticket'"
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_taken(url: str, count: int, *, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while _taken(url) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"fewer than {count} messages became tickets in time")
        time.sleep(0.02)
    return time.monotonic()


def _fetch_baseline(client: imaplib.IMAP4, count: int) -> MailRow:
    """Dovecot alone: FETCH of stored messages (appended to another folder)."""
    client.create("Baseline")
    for n in range(count):
        client.append("Baseline", "", None, _message(-n - 1))
    client.select("Baseline")
    _, data = client.uid("SEARCH", "ALL")
    uids = data[0].split()
    latencies = []
    started = time.monotonic()
    for uid in uids:
        t0 = time.perf_counter()
        client.uid("FETCH", uid, "(BODY.PEEK[])")
        latencies.append((time.perf_counter() - t0) * 1000)
    seconds = time.monotonic() - started
    client.select("INBOX")
    return MailRow("Dovecot UID FETCH (baseline)", len(uids), seconds, latencies)


def _burst(client: imaplib.IMAP4, url: str, count: int) -> MailRow:
    before = _taken(url)
    started = time.monotonic()
    for n in range(count):
        client.append("INBOX", "", None, _message(n))
    ended = _wait_taken(url, before + count, timeout=600)
    return MailRow(f"burst of {count}: APPEND → ticket", count, ended - started, [])


def _steady(client: imaplib.IMAP4, url: str, rate: float, seconds: float) -> MailRow:
    total = max(1, int(rate * seconds))
    appended: dict[str, float] = {}
    first = 1_000_000
    started = time.monotonic()
    for i in range(total):
        due = started + i / rate
        time.sleep(max(0.0, due - time.monotonic()))
        n = first + i
        client.append("INBOX", "", None, _message(n))
        appended[f"sender{n}@bench.example"] = time.time()
    latencies: list[float] = []
    deadline = time.monotonic() + 120
    while len(latencies) < total and time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT sender, extract(epoch FROM processed_at) FROM inbound_messages"
                " WHERE sender = ANY(%s) AND outcome = 'ticket'",
                (list(appended),),
            ).fetchall()
        if len(rows) == total:
            latencies = [(float(at) - appended[s]) * 1000 for s, at in rows]
            break
        time.sleep(0.1)
    if len(latencies) < total:
        raise BenchError("the steady-rate messages did not all become tickets")
    elapsed = time.monotonic() - started
    return MailRow(
        f"{rate:g} messages/s for {seconds:g} s: APPEND → ticket",
        total,
        elapsed,
        latencies,
    )


def print_mail_in(console: Console, rows: list[MailRow]) -> None:
    table = Table(title="Inbound e-mail: IMAP APPEND to ticket stored")
    for column in ("run", "messages", "messages/s", "p50 ms", "p99 ms", "vs baseline"):
        table.add_column(column, justify="left" if column == "run" else "right")
    baseline = rows[0]
    for row in rows:
        p50 = percentile(row.latencies_ms, 50)
        p99 = percentile(row.latencies_ms, 99)
        ratio = (
            f"{p50 / percentile(baseline.latencies_ms, 50):,.0f}× p50"
            if row is not baseline and row.latencies_ms
            else ""
        )
        table.add_row(
            row.name,
            f"{row.messages:,}",
            f"{row.per_second:,.1f}",
            "" if not row.latencies_ms else f"{p50:,.1f}",
            "" if not row.latencies_ms else f"{p99:,.1f}",
            ratio,
        )
    console.print(table)
    console.print(
        "One mailbox, one mail-in worker (threads of this process) with IDLE; each"
        " message from its own sender opens a ticket (customer matched by address"
        " through the read model, the .eml kept as an attachment). Latency: from"
        " the APPEND's answer to the row recording the ticket (written after the"
        " ticket's events committed). Baseline: Dovecot's FETCH of one stored"
        " message over the same loopback.",
        style="dim",
        highlight=False,
    )
