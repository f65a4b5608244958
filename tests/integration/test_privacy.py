"""Erasure end to end: the customer's data is gone from every table, the facts stay.

Everything is real: the API over PostgreSQL, the relay publishing to the
bundled broker, the notifier consuming it (e-mail to an SMTP server, a
webhook to an HTTP server, in-app rows), and the projection worker. A
customer's ticket carries unique words in its title, description, a
comment, an attachment's name and bytes, and an address; after the
erasure a scan of every table and view of the database finds none of
them, while another customer's words are all still there.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.rows import dict_row

from dotmac.ticketing.consumers.kafka.broker import DevBroker
from dotmac.ticketing.entry.processes import start_notifier, start_relay
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from tests.integration.projecting import project
from tests.notifications.running import read_topic
from tests.notifications.servers import HttpSink, SmtpSink, wait_until

API = "/api/v1"
TENANT = "privacy-e2e"
SECRET = "privacy-e2e-" + "k" * 40
TICKET_TOPIC = "ticketing.ticket-events.v1"
CONFIG: dict[str, Any] = {"notifications": {"email_coalesce_seconds": 0}}


def auth(sub: str, role: str, tenant: str = TENANT) -> dict[str, str]:
    token = issue_token(SECRET, tenant_id=tenant, sub=sub, roles=[role])
    return {"Authorization": f"Bearer {token}"}


def markers(prefix: str) -> dict[str, str]:
    """A unique word per place the customer's data goes."""
    return {
        place: f"{prefix}{place}{secrets.token_hex(4)}"
        for place in (
            "title",
            "description",
            "comment",
            "file",
            "bytes",
            "mail",
            "reply",
        )
    }


def open_ticket(
    client: TestClient, customer: str, words: dict[str, str]
) -> dict[str, Any]:
    who = auth(customer, "customer")
    created = client.post(
        f"{API}/tickets/",
        json={
            "title": f"Printer {words['title']}",
            "description": f"It says {words['description']}",
            "customer_email": f"{words['mail']}@example.test",
            "customer_name": "Ada Lovelace",
        },
        headers=who,
    )
    assert created.status_code == 201, created.text
    ticket: dict[str, Any] = created.json()
    tid = ticket["id"]
    commented = client.post(
        f"{API}/tickets/{tid}/comments",
        json={"body": f"Also {words['comment']}"},
        headers=who,
    )
    assert commented.is_success, commented.text
    attached = client.post(
        f"{API}/tickets/{tid}/attachments",
        files={"file": (f"{words['file']}.txt", words["bytes"].encode(), "text/plain")},
        headers=who,
    )
    assert attached.is_success, attached.text
    replied = client.post(
        f"{API}/tickets/{tid}/comments",
        json={"body": "Which model is it?"},
        headers=auth("agent-1", "agent"),
    )
    assert replied.is_success, replied.text
    # The customer answers by e-mail too (inbound mail keeps its own rows).
    message = (
        f"From: Ada <{words['mail']}@example.test>\r\n"
        "To: desk@privacy.test\r\n"
        f"Subject: Re: [#{ticket['number']}] Printer {words['title']}\r\n"
        f"Message-ID: <{words['reply']}@example.test>\r\n"
        "Content-Type: text/plain\r\n\r\n"
        f"It is the {words['reply']} model.\r\n"
    )
    mailed = client.post(
        f"{API}/inbound/email",
        content=message.encode(),
        headers={**auth("mta", "service"), "Content-Type": "message/rfc822"},
    )
    assert mailed.status_code == 202, mailed.text
    assert mailed.json()["outcome"] == "comment", mailed.text
    return ticket


def scan(database_url: str, words: list[str]) -> dict[str, list[str]]:
    """Every table and view of every schema the service writes, as text:
    which of ``words`` each holds."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        relations = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for relation in relations:
            name = sql.Identifier(relation["table_schema"], relation["table_name"])
            # bytea as text is hex: look for the words' bytes as well.
            text = conn.execute(
                sql.SQL(
                    "SELECT coalesce(string_agg(r::text, ' '), '') AS t FROM {} r"
                ).format(name)
            ).fetchone()
            assert text is not None
            blob = str(text["t"])
            hits = [w for w in words if w in blob or w.encode().hex() in blob.lower()]
            if hits:
                found[f"{relation['table_schema']}.{relation['table_name']}"] = hits
    return found


def read_tables(database_url: str, schema: str) -> dict[str, list[dict[str, Any]]]:
    """The tenant's rows of every read table of a build (positions aside:
    a rebuild gives the same rows at the same positions)."""
    tables = {}
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        for table in (
            "tickets",
            "daily_metrics",
            "escalations",
            "escalation_requests",
            "sla_clocks",
            "sla_alerts",
        ):
            rows = conn.execute(
                sql.SQL("SELECT * FROM {} WHERE tenant_id = %s").format(
                    sql.Identifier(schema, table)
                ),
                (TENANT,),
            ).fetchall()
            tables[table] = sorted(
                (
                    {
                        k: v
                        for k, v in r.items()
                        if k not in ("search", "internal_search")
                    }
                    for r in rows
                ),
                key=repr,
            )
    return tables


def test_an_erased_customer_is_in_no_table_and_the_facts_stay(
    isolated_database_url: str,
    fresh_broker: DevBroker,
    smtp_server: SmtpSink,
    http_server: HttpSink,
) -> None:
    broker, smtp, http = fresh_broker, smtp_server, http_server
    settings = Settings(
        database_url=isolated_database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_partitions=3,
        kafka_session_timeout_ms=2000,
        jwt_secret=SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="Desk <desk@privacy.test>",
        webhook_allow_private=True,
    )
    ticketing = initialize_ticketing(settings)
    relay = start_relay(settings, idle_wait=0.2)
    notifier = start_notifier(settings, config=CONFIG)
    try:
        with TestClient(create_app(settings, ticketing=ticketing)) as client:
            erase_and_check(client, ticketing, settings, smtp, http)
    finally:
        notifier.stop()
        relay.stop()
        ticketing.close()


def erase_and_check(
    client: TestClient,
    ticketing: Ticketing,
    settings: Settings,
    smtp: SmtpSink,
    http: HttpSink,
) -> None:
    url = settings.database_url
    assert url is not None
    admin = auth("admin-1", "admin")
    hook = client.post(
        f"{API}/webhooks",
        json={"url": http.url("/hooks/all"), "event_types": []},
        headers=admin,
    )
    assert hook.status_code == 201, hook.text
    ada, other = markers("ada"), markers("bob")
    ticket = open_ticket(client, "cust-ada", ada)
    open_ticket(client, "cust-bob", other)
    tid = ticket["id"]
    # The notifier has e-mailed both customers and called the webhook.
    wait_until(
        lambda: (
            {f"{ada['mail']}@example.test", f"{other['mail']}@example.test"}
            <= {to for m in smtp.received() for to in m.rcpt_tos}
        ),
        timeout=30,
        what="e-mail to both customers",
    )
    wait_until(
        lambda: any(ada["title"] in r.body.decode() for r in http.requests),
        timeout=30,
        what="the webhook's call",
    )
    project(ticketing, url)
    everything = [*ada.values(), *other.values()]
    before = scan(url, everything)
    # The scan finds them: every word is somewhere (read models, deliveries),
    # except the files' bytes, which are only ever stored sealed.
    files = {ada["bytes"], other["bytes"]}
    assert {w for hits in before.values() for w in hits} == set(everything) - files
    attachments = client.get(f"{API}/tickets/{tid}/attachments", headers=admin).json()
    (attachment,) = [a for a in attachments if a["filename"].endswith(".txt")]
    download = f"{API}/tickets/{tid}/attachments/{attachment['id']}"
    assert client.get(download, headers=admin).content == ada["bytes"].encode()
    dashboard = client.get(f"{API}/analytics/dashboard", headers=admin).json()

    erased = client.post(f"{API}/privacy/subjects/cust-ada/erase", headers=admin)
    assert erased.status_code == 200, erased.text
    receipt = erased.json()
    assert receipt["tickets"] == [tid]
    assert receipt["keys_destroyed"] == 1
    assert receipt["attachments_deleted"] == 2  # the file, and the reply's .eml
    assert receipt["addresses_suppressed"] == 1
    assert receipt["already_erased"] is False

    # The notifier meets the erasure (and clears what it wrote since);
    # the projection blanks the read rows.
    def notifier_forgot() -> bool:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT customer_email FROM notifier_tickets WHERE ticket_id = %s",
                (tid,),
            ).fetchone()
        return row is not None and row[0] is None

    wait_until(notifier_forgot, timeout=30, what="the notifier to see the erasure")
    schema = project(ticketing, url)

    after = scan(url, everything)
    assert not any(w in hits for hits in after.values() for w in ada.values()), after
    assert {w for hits in after.values() for w in hits} == set(other.values()) - files

    # Reads say erased, now and in the past; the file is gone.
    now = client.get(f"{API}/tickets/{tid}", headers=admin).json()
    assert now["title"] == now["description"] == "[erased]"
    assert now["customer_email"] is None
    assert now["number"] == ticket["number"]  # the facts are kept
    then = client.get(f"{API}/tickets/{tid}", params={"as_of": 1}, headers=admin)
    assert then.json()["title"] == "[erased]"
    assert then.json()["customer_email"] == "[erased]"
    comments = client.get(f"{API}/tickets/{tid}/comments", headers=admin).json()
    assert {c["body"] for c in comments} == {"[erased]"}
    listed = client.get(f"{API}/tickets/{tid}/attachments", headers=admin).json()
    assert [f["filename"] for f in listed] == ["[erased]", "[erased]"]
    assert client.get(download, headers=admin).status_code == 404

    # The facts: the dashboard counts the same.
    assert client.get(f"{API}/analytics/dashboard", headers=admin).json() == dashboard

    # A rebuild from the log gives the same tables (minus the data).
    tables = read_tables(url, schema)
    rebuilt = project(ticketing, url, rebuild=True)
    assert rebuilt != schema
    assert read_tables(url, rebuilt) == tables

    # The erasure was published: subscribers forget too, and it carries
    # none of the data.
    records = asyncio.run(read_topic(settings.kafka_bootstrap_servers, TICKET_TOPIC))
    erasures = [r for r in records if r["type"].endswith("subject_erased.v1")]
    assert [r["subject"] for r in erasures] == [tid]
    assert not any(w in json.dumps(erasures) for w in ada.values())

    # Nothing is sent to the address again.
    mails = len(smtp.received())
    client.post(
        f"{API}/tickets/{tid}/comments",
        json={"body": "Anything else?"},
        headers=auth("agent-1", "agent"),
    )
    wait_until(
        lambda: sum(b"Anything else?" in r.body for r in http.requests) == 1,
        timeout=30,
        what="the webhook's call for the new comment",
    )
    assert len(smtp.received()) == mails

    # Again: what was written since (that comment, under a new key) goes;
    # then nothing is left to erase. Every request is on record.
    again = client.post(f"{API}/privacy/subjects/cust-ada/erase", headers=admin)
    assert again.status_code == 200
    assert (again.json()["tickets"], again.json()["keys_destroyed"]) == ([tid], 1)
    comments = client.get(f"{API}/tickets/{tid}/comments", headers=admin).json()
    assert {c["body"] for c in comments} == {"[erased]"}
    third = client.post(f"{API}/privacy/subjects/cust-ada/erase", headers=admin)
    assert third.json()["already_erased"] is True
    assert third.json()["tickets"] == []
    requests = client.get(f"{API}/privacy/requests", headers=admin).json()
    assert [r["kind"] for r in requests] == ["erasure"] * 3
    assert {r["requested_by"]["id"] for r in requests} == {"admin-1"}
    assert not any(w in json.dumps(requests) for w in ada.values())
