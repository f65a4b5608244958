"""Notifications end to end: HTTP commands in, e-mail, SMS, webhooks and in-app out.

Everything is real: the API over PostgreSQL, the relay publishing to the
bundled Kafka-protocol broker, the notifier consuming it, an SMTP server
(aiosmtpd) and an HTTP server standing in for the SMS provider and the
webhook receivers. The crash test runs the relay and the notifier as the
production commands (``ticketing worker relay|notifier``) and SIGKILLs them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from dotmac.ticketing.consumers.kafka.broker import (
    DevBroker,
    ensure_topics,
    start_dev_broker,
)
from dotmac.ticketing.consumers.kafka.topics import service_topics
from dotmac.ticketing.consumers.notify.channels.webhook import verify_signature
from dotmac.ticketing.domain.mail_threading import mail_domain, thread_headers
from dotmac.ticketing.entry.processes import start_notifier, start_relay
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.settings import Settings
from tests.integration.worker_process import WorkerProcess
from tests.notifications.events import TicketStory
from tests.notifications.running import publish, read_topic
from tests.notifications.servers import (
    HttpSink,
    SmtpSink,
    http_sink,
    smtp_sink,
    wait_until,
)

TENANT = "acme-e2e"
PUBLIC_URL = "https://help.acme.test"
SMTP_FROM = "Acme Support <support@acme.test>"
ALL_SECRET = "all-events-secret-0123456789"
TENANT_CONFIG: dict[str, Any] = {
    # Every tenant's e-mail at once (the deployment's default): these tests
    # count notifications; merging them within a window is tested in
    # test_email_conversations.py.
    "notifications": {"email_coalesce_seconds": 0},
    "tenants": {
        TENANT: {
            "teams": [
                {
                    "name": "Support",
                    "agents": [
                        {
                            "id": "agent-1",
                            "email": "a1@acme.test",
                            "phone": "+15550001",
                        },
                        {"id": "lead-1", "email": "lead@acme.test"},
                    ],
                },
                {
                    "name": "Engineering",
                    "agents": [
                        {"id": "eng-1", "email": "e1@acme.test"},
                        {"id": "eng-2"},
                    ],
                },
            ]
        }
    },
}


@pytest.fixture
def broker() -> Iterator[DevBroker]:
    """A broker per test (it starts in a blink): no test sees another's topic."""
    with start_dev_broker() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def http() -> Iterator[HttpSink]:
    with http_sink() as sink:
        yield sink


def service_settings(
    database_url: str, broker: DevBroker, smtp: SmtpSink, http: HttpSink, **extra: Any
) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_partitions=3,
        # A restarted consumer joins (and a dead one's partitions move) in
        # about a second on the development broker, instead of five.
        kafka_session_timeout_ms=2000,
        jwt_secret="e2e-secret-" + "x" * 40,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=SMTP_FROM,
        sms_url=http.url("/sms"),
        sms_user="AC-test",
        sms_password="sms-token",
        sms_from="+15559999",
        webhook_allow_private=True,  # the receivers listen on loopback
        public_url=PUBLIC_URL,
        **extra,
    )


def email_ids(database_url: str) -> set[str]:
    """The Message-ID of each e-mail row: from its event and its recipient."""
    ids = set()
    for row in ledger(database_url, "channel = 'email'"):
        thread = thread_headers(
            row["event_id"], row["recipient"], mail_domain(SMTP_FROM)
        )
        assert thread is not None
        ids.add(thread.message_id)
    return ids


def ledger(database_url: str, where: str = "true") -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(
            f"SELECT * FROM notification_deliveries WHERE {where}"
        ).fetchall()


# ----------------------------------------------------------------------
# Acceptance: over HTTP, every channel


def test_ticket_lifecycle_notifies_everyone_once_on_every_channel(
    isolated_database_url: str, broker: DevBroker, smtp: SmtpSink, http: HttpSink
) -> None:
    settings = service_settings(isolated_database_url, broker, smtp, http)
    ticketing = initialize_ticketing(settings)
    relay = start_relay(settings, idle_wait=0.2)
    notifier = start_notifier(settings, config=TENANT_CONFIG)
    try:
        with TestClient(create_app(settings, ticketing=ticketing)) as client:
            run_lifecycle(client, settings, smtp, http, isolated_database_url)
    finally:
        notifier.stop()
        relay.stop()
        ticketing.close()


def run_lifecycle(
    client: TestClient,
    settings: Settings,
    smtp: SmtpSink,
    http: HttpSink,
    database_url: str,
) -> None:
    def auth(sub: str, role: str) -> dict[str, str]:
        assert settings.jwt_secret is not None
        token = issue_token(
            settings.jwt_secret, tenant_id=TENANT, sub=sub, roles=[role]
        )
        return {"Authorization": f"Bearer {token}"}

    admin, lead = auth("admin-1", "admin"), auth("lead-1", "agent")
    agent, eng = auth("agent-1", "agent"), auth("eng-1", "agent")
    customer = auth("cust-1", "customer")

    def post(path: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        response = client.post(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    # Two webhooks: every event (with our secret), and resolutions only
    # (with a secret the service generates and shows once).
    post(
        "/webhooks",
        admin,
        url=http.url("/hooks/all"),
        event_types=[],
        secret=ALL_SECRET,
    )
    resolved_hook = post(
        "/webhooks",
        admin,
        url=http.url("/hooks/resolved"),
        event_types=["ticketing.ticket.ticket_resolved.v1"],
    )

    ticket = post(
        "/tickets/",
        customer,
        title="Printer <on> fire",
        description="Smoke everywhere",
        customer_email="cust-1@example.test",
        priority="high",
    )
    tid, number = ticket["id"], ticket["number"]
    post(f"/tickets/{tid}/assign", lead, assignee_id="agent-1", team="Support")
    post(f"/tickets/{tid}/comments", agent, body="Which printer model & floor?")
    post(f"/tickets/{tid}/comments", agent, body="Fuser again", internal=True)
    post(f"/tickets/{tid}/comments", customer, body="HP 4250, 3rd floor")
    post(f"/tickets/{tid}/escalate", lead, reason="Hardware fault", team="Engineering")
    post(
        f"/tickets/{tid}/resolve",
        eng,
        resolution="Replaced the fuser.",
        resolution_code="fixed",
    )
    history = client.get(f"/api/v1/tickets/{tid}/history", headers=agent).json()

    # --- e-mail: exactly these, to exactly these people -----------------
    mails = smtp.wait_for(6)
    time.sleep(0.5)  # anything extra would arrive now
    mails = smtp.received()
    by_recipient = Counter(to for m in mails for to in m.rcpt_tos)
    assert by_recipient == {
        "cust-1@example.test": 3,  # acknowledgment, the reply, the resolution
        "a1@acme.test": 2,  # assigned to them, the customer's answer
        "e1@acme.test": 1,  # escalated to Engineering
    }
    assert {m.mail_from for m in mails} == {"support@acme.test"}
    subjects = {m.subject: m for m in mails}
    ack = subjects[f"[#{number}] We received your request: Printer <on> fire"]
    assert ack.rcpt_tos == ("cust-1@example.test",)
    assert "Printer &lt;on&gt; fire" in ack.part("html")
    assert "Printer <on> fire" in ack.part("plain")
    reply = subjects[f"[#{number}] New reply: Printer <on> fire"]
    assert "Which printer model & floor?" in reply.part("plain")
    assert "Which printer model &amp; floor?" in reply.part("html")
    assert all("Fuser again" not in m.part("plain") for m in mails)  # internal
    assigned = subjects[f"[#{number}] Assigned to you: Printer <on> fire"]
    assert assigned.rcpt_tos == ("a1@acme.test",)
    assert "by lead-1" in assigned.part("plain")
    # The customer has no name on the ticket: their address names them.
    answer = subjects[
        f"[#{number}] New comment from cust-1@example.test: Printer <on> fire"
    ]
    assert answer.rcpt_tos == ("a1@acme.test",)
    assert "HP 4250, 3rd floor" in answer.part("plain")
    escalated = subjects[
        f"[#{number}] Escalated to Engineering (level 1): Printer <on> fire"
    ]
    assert escalated.rcpt_tos == ("e1@acme.test",)
    assert "Reason: Hardware fault" in escalated.part("plain")
    resolved = subjects[f"[#{number}] Resolved: Printer <on> fire"]
    link = f"{PUBLIC_URL}/api/v1/satisfaction/"
    assert f"5 - Excellent: {link}" in resolved.part("plain")
    assert f'href="{link}' in resolved.part("html")
    assert "Replaced the fuser." in resolved.part("plain")
    # Each Message-ID is the one its ledger row's event and recipient give.
    assert {m.message_id for m in mails} == email_ids(database_url)

    # --- SMS: the agent with a phone number, for the same two notices ---
    texts = http.wait_for(2, "/sms")
    assert len(texts) == 2
    forms = [parse_qs(r.body.decode()) for r in texts]
    assert {f["To"][0] for f in forms} == {"+15550001"}
    assert {f["From"][0] for f in forms} == {"+15559999"}
    bodies = sorted(f["Body"][0] for f in forms)
    assert bodies == [
        f"#{number} comment from cust-1@example.test: HP 4250, 3rd floor",
        f"Ticket #{number} assigned to you: Printer <on> fire",
    ]
    assert len({r.header("Idempotency-Key") for r in texts}) == 2

    # --- webhooks: every event, signed; resolutions to the second -------
    everything = http.wait_for(len(history), "/hooks/all")
    only_resolved = http.wait_for(1, "/hooks/resolved")
    time.sleep(0.3)
    everything = http.received("/hooks/all")
    assert len(everything) == len(history)
    for request in everything:
        assert request.header("Content-Type") == "application/cloudevents+json"
        signature = request.header("X-Ticketing-Signature") or ""
        assert verify_signature(ALL_SECRET, request.body, signature)
    events = [json.loads(r.body) for r in everything]
    assert sorted(e["data"]["version"] for e in events) == list(
        range(1, len(history) + 1)
    )
    assert {e["subject"] for e in events} == {tid}
    assert {e["tenantid"] for e in events} == {TENANT}
    (resolution,) = http.received("/hooks/resolved")
    assert len(only_resolved) == 1
    assert json.loads(resolution.body)["type"] == "ticketing.ticket.ticket_resolved.v1"
    assert verify_signature(
        resolved_hook["secret"],
        resolution.body,
        resolution.header("X-Ticketing-Signature") or "",
    )

    # --- in-app, read over the API ---------------------------------------
    def unread(headers: dict[str, str]) -> list[dict[str, Any]]:
        response = client.get("/api/v1/notifications?unread=true", headers=headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    mine = unread(customer)
    assert [n["event_type"].split(".")[2] for n in reversed(mine)] == [
        "ticket_created",
        "comment_added",
        "ticket_resolved",
    ]
    assert all(UUID(n["ticket_id"]) == UUID(tid) for n in mine)
    assert len(unread(agent)) == 2
    assert len(unread(eng)) == 1
    assert len(unread(auth("eng-2", "agent"))) == 1  # no address: in-app only
    assert unread(lead) == []  # lead-1 acted; they are told nothing

    # --- the ledger: everything sent, nothing pending or failed ----------
    rows = ledger(database_url, f"ticket_id = '{tid}'")
    assert Counter(r["status"] for r in rows) == {"sent": len(rows)}
    assert Counter(r["channel"] for r in rows) == {
        "email": 6,
        "sms": 2,
        "in_app": 7,  # customer 3, agent-1 2, eng-1 and eng-2 1 each
        "webhook": len(history) + 1,
    }


# ----------------------------------------------------------------------
# Duplicates on the topic


def test_the_same_cloudevent_published_twice_is_delivered_once(
    isolated_database_url: str, broker: DevBroker, smtp: SmtpSink, http: HttpSink
) -> None:
    settings = service_settings(isolated_database_url, broker, smtp, http)
    story = TicketStory(tenant_id=TENANT, customer_email="twice@example.test")
    asyncio.run(ensure_topics(broker.bootstrap_servers, service_topics(3)))
    notifier = start_notifier(settings, config=TENANT_CONFIG)
    try:
        asyncio.run(publish(broker.bootstrap_servers, [story.created, story.created]))
        (mail,) = smtp.wait_for(1)
        # The second copy is consumed too (the notifier's position passes it).
        wait_until(
            lambda: _position_covers_both(isolated_database_url),
            what="the notifier to consume both copies",
        )
        time.sleep(0.3)
    finally:
        notifier.stop()
    assert [m.rcpt_tos for m in smtp.received()] == [("twice@example.test",)]
    assert mail.subject.startswith("[#7] We received your request")
    rows = ledger(isolated_database_url, f"event_id = '{story.created['id']}'")
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("email", "sent"),
        ("in_app", "sent"),
    ]


def test_an_event_that_cannot_be_processed_is_dead_lettered_and_passed(
    isolated_database_url: str, broker: DevBroker, smtp: SmtpSink, http: HttpSink
) -> None:
    # One partition: the poison blocks the next event unless it is parked.
    settings = service_settings(isolated_database_url, broker, smtp, http).model_copy(
        update={"kafka_partitions": 1}
    )
    poisoned = TicketStory(tenant_id=TENANT)
    poisoned.created["subject"] = (
        "not-a-ticket-id"  # cannot be stored: retried, then parked
    )
    after = TicketStory(tenant_id=TENANT, customer_email="after@example.test")
    asyncio.run(ensure_topics(broker.bootstrap_servers, service_topics(1)))
    notifier = start_notifier(settings, config=TENANT_CONFIG)
    try:
        asyncio.run(
            publish(broker.bootstrap_servers, [poisoned.created, after.created])
        )
        (mail,) = smtp.wait_for(1)
    finally:
        notifier.stop()
    assert mail.rcpt_tos == ("after@example.test",)
    letters = asyncio.run(read_topic(broker.bootstrap_servers))
    (letter,) = [x for x in letters if x.get("consumer") == "ticketing-notifier"]
    assert "invalid input syntax for type uuid" in letter["error"]
    assert json.loads(base64.b64decode(letter["original"])) == poisoned.created


def _position_covers_both(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT sum(next_offset) FROM consumer_positions"
            " WHERE consumer = 'ticketing-notifier'"
        ).fetchone()
    return row is not None and row[0] == 2


# ----------------------------------------------------------------------
# Crash test: SIGKILL the relay and the notifier while 500 events stream by

TICKETS = 100  # × 5 notable events: created, assigned, reply, answer, resolved
# With the SLA clocks every ticket has 11 events on the topic: created with
# two SLAStarted; assigned; the reply and the SLAStopped of first response;
# the customer's answer and the SLAStarted of next reply; the resolution
# and the SLAStopped of resolution and next reply.
EVENTS_PER_TICKET = 11
# Per ticket: e-mail to the customer (acknowledgment, reply, resolution) and
# to agent-1 (assignment, the customer's answer); SMS to agent-1 for the
# same two; in-app for each notice; the tenant's webhook for every event.
EMAILS, TEXTS, INAPP = 5 * TICKETS, 2 * TICKETS, 5 * TICKETS
HOOKS = EVENTS_PER_TICKET * TICKETS


def test_killed_workers_deliver_every_notification_exactly_once(
    isolated_database_url: str,
    broker: DevBroker,
    smtp: SmtpSink,
    http: HttpSink,
    tmp_path: Path,
) -> None:
    seed = random.randrange(2**32)
    chance = random.Random(seed)
    settings = service_settings(isolated_database_url, broker, smtp, http)
    ticketing = initialize_ticketing(settings)
    config_file = tmp_path / "tenants.json"
    config_file.write_text(json.dumps(TENANT_CONFIG))
    env = {
        **os.environ,
        "DATABASE_URL": isolated_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "TICKETING_KAFKA_PARTITIONS": "3",
        "TICKETING_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "TICKETING_SMTP_HOST": "127.0.0.1",
        "TICKETING_SMTP_PORT": str(smtp.port),
        "TICKETING_SMTP_FROM": SMTP_FROM,
        "TICKETING_SMS_URL": http.url("/sms"),
        "TICKETING_SMS_USER": "AC-test",
        "TICKETING_SMS_PASSWORD": "sms-token",
        "TICKETING_WEBHOOK_ALLOW_PRIVATE": "true",
        "TICKETING_PUBLIC_URL": PUBLIC_URL,
        "TICKETING_CONFIG": str(config_file),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "warning",
    }
    with psycopg.connect(isolated_database_url) as conn:
        conn.execute(
            "INSERT INTO webhooks (id, tenant_id, url, event_types, secret,"
            " created_by) VALUES (gen_random_uuid(), %s, %s, '{}', %s, 'admin-1')",
            (TENANT, http.url("/hooks/all"), ALL_SECRET),
        )
    workers = {
        name: WorkerProcess(name, env, tmp_path) for name in ("relay", "notifier")
    }
    for worker in workers.values():
        worker.start()

    # The stream is written in chunks, one per phase; between phases a
    # victim is killed at a random moment once it has made progress since
    # its last start, so every kill lands mid-stream and mid-work.
    rounds = [["relay"], ["notifier"], ["relay", "notifier"]]
    chance.shuffle(rounds)
    phases = [threading.Event() for _ in range(len(rounds) + 1)]
    per_phase = -(-TICKETS // len(phases))
    errors: list[BaseException] = []

    def write_stream() -> None:
        tickets = ticketing.tickets
        lead = RequestContext(TENANT, "lead-1", frozenset({"agent"}))
        agent = RequestContext(TENANT, "agent-1", frozenset({"agent"}))
        try:
            for i in range(TICKETS):
                phases[i // per_phase].wait()
                customer = RequestContext(TENANT, f"cust-{i}", frozenset({"customer"}))
                ticket = tickets.create_ticket(
                    customer,
                    title=f"Request {i}",
                    customer_email=f"cust-{i}@example.test",
                ).ticket
                tickets.assign(lead, ticket.id, assignee_id="agent-1", team="Support")
                tickets.add_comment(agent, ticket.id, body=f"Reply {i}")
                tickets.add_comment(customer, ticket.id, body=f"Answer {i}")
                tickets.resolve(
                    agent, ticket.id, resolution=f"Done {i}", resolution_code="fixed"
                )
                time.sleep(0.02)
        except BaseException as error:
            errors.append(error)

    def count(query: str) -> int:
        with psycopg.connect(isolated_database_url, autocommit=True) as conn:
            try:
                row = conn.execute(query).fetchone()
            except psycopg.errors.UndefinedTable:  # the worker has not begun
                return 0
        return int(row[0]) if row and row[0] is not None else 0

    def progress() -> dict[str, int]:
        sent = len(smtp.received()) + len(http.received())
        return {
            "relay": count("SELECT max(notification_id) FROM relay_tracking"),
            "notifier": sent
            + count(
                "SELECT sum(next_offset) FROM consumer_positions"
                " WHERE consumer = 'ticketing-notifier'"
            ),
        }

    writer = threading.Thread(target=write_stream)
    writer.start()
    try:
        for phase, victims in zip(phases, rounds, strict=False):
            before = progress()
            phase.set()
            for name in victims:
                wait_until(
                    lambda name=name, before=before: progress()[name] > before[name],
                    timeout=30,
                    what=f"the {name} to make progress",
                )
            time.sleep(chance.uniform(0.0, 0.5))
            for name in victims:
                workers[name].kill()
                workers[name].start()
        phases[-1].set()
        writer.join()
        assert not errors, errors

        def delivered() -> bool:
            return (
                len({m.message_id for m in smtp.received()}) >= EMAILS
                and len(_keys(http, "/sms", "Idempotency-Key")) >= TEXTS
                and len(_keys(http, "/hooks/all", "X-Ticketing-Delivery")) >= HOOKS
            )

        wait_until(delivered, timeout=60, what="every notification")
        time.sleep(0.5)  # a late duplicate would arrive now
    except BaseException:
        for phase in phases:
            phase.set()  # let the writer finish
        print(
            f"seed={seed} e-mails={len({m.message_id for m in smtp.received()})}"
            f" sms={len(_keys(http, '/sms', 'Idempotency-Key'))}"
            f" hooks={len(_keys(http, '/hooks/all', 'X-Ticketing-Delivery'))}"
        )
        for worker in workers.values():
            print(f"--- {worker.name} (kills: {worker.kills})\n{worker.tail()}")
        raise
    finally:
        writer.join()
        for worker in workers.values():
            worker.stop()
        ticketing.close()

    kills = {name: worker.kills for name, worker in workers.items()}
    print(f"seed={seed} kills={kills}")
    assert kills == {"relay": 2, "notifier": 2}
    mails = smtp.received()
    texts = http.received("/sms")
    hooks = http.received("/hooks/all")
    rows = ledger(isolated_database_url)
    # Exactly once, as the recipient sees it. A crash between "the provider
    # accepted it" and "the ledger says sent" makes the dispatcher send that
    # delivery again after the restart, but with the same key: the same
    # Message-ID (a mail store or client shows one message per Message-ID),
    # the same Idempotency-Key (the SMS provider answers the first result
    # instead of sending a second text) and the same X-Ticketing-Delivery
    # (a webhook receiver skips what it processed). So we count distinct
    # keys: one per notification, none missing, none extra.
    email_keys = {r["delivery_key"] for r in rows if r["channel"] == "email"}
    assert len(email_keys) == EMAILS
    assert {m.message_id for m in mails} == email_ids(isolated_database_url)
    assert _keys(http, "/sms", "Idempotency-Key") == {
        r["delivery_key"] for r in rows if r["channel"] == "sms"
    }
    assert len(_keys(http, "/sms", "Idempotency-Key")) == TEXTS
    assert _keys(http, "/hooks/all", "X-Ticketing-Delivery") == {
        r["delivery_key"] for r in rows if r["channel"] == "webhook"
    }
    # Every event reached the topic and the notifier: its webhook call.
    event_ids = {json.loads(r.body)["id"] for r in hooks}
    assert len(event_ids) == EVENTS_PER_TICKET * TICKETS
    assert all(
        verify_signature(ALL_SECRET, r.body, r.header("X-Ticketing-Signature") or "")
        for r in hooks
    )
    assert Counter(r["channel"] for r in rows) == {
        "email": EMAILS,
        "sms": TEXTS,
        "in_app": INAPP,
        "webhook": HOOKS,
    }
    assert {r["status"] for r in rows} == {"sent"}
    with psycopg.connect(isolated_database_url) as conn:
        (inapp,) = conn.execute("SELECT count(*) FROM inapp_notifications").fetchone()
    assert inapp == INAPP
    # Re-sends are the exception, bounded by what was in flight per crash.
    resent = (len(mails) - EMAILS) + (len(texts) - TEXTS) + (len(hooks) - HOOKS)
    print(f"re-sent after crashes (recognisable by their keys): {resent}")
    assert resent <= 100 * kills["notifier"]


def _keys(http: HttpSink, path: str, header: str) -> set[str]:
    return {r.header(header) or "" for r in http.received(path)}
