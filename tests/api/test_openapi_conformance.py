"""The API keeps the contract its OpenAPI document states.

Schemathesis reads ``/openapi.json`` and, for every operation in it, sends
requests generated from the document to the real app (on a database of
this module's own, with the projection worker running): valid ones, which
must be accepted, and invalid ones, which must be refused. Each answer is
checked against the document: no 5xx, a documented status, content type,
headers and body schema, and a 401 when the token is left out. A second
test sends every method a documented path does not list: 405, with
``Allow`` naming the methods the document lists.

Bounded and deterministic: a fixed number of examples per operation, a
fixed seed, derandomized generation and no example database, so every run
sends the same requests. Each request carries a valid token of a role
chosen from the request itself, and valid requests mostly name the
tickets, attachment and webhook opened below, so they get past
authentication and lookup to the code behind them.
"""

from __future__ import annotations

import re
import secrets
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import AuthContext, Case
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from dotmac.ticketing.entry.processes import start_projection_worker
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.settings import Settings
from tests.api.route_table import route_table_app
from tests.conftest import fresh_database

API = "/api/v1"
SEED = 20261202
# Generated requests per operation (valid and invalid ones); the examples
# phase adds the document's own examples. Schemathesis' coverage phase is
# left out: it sends every boundary case the schema defines, thousands,
# without a bound per operation. Its wrong-method probes are
# ``test_a_wrong_method_is_answered_405_with_the_methods_of_the_path``.
MAX_EXAMPLES = 15
# Half the requests as an admin, who may call every route, so that most of
# them get past the role checks; the others as each of the other roles.
ROLES = ("customer", "agent", "supervisor", "admin", "admin", "admin")
CUSTOMER = "cust-1"
# Server-sent events never end by themselves; the stream has its own tests
# (tests/api/test_notifications_api.py).
# Inbound e-mail takes a raw message (message/rfc822), which schemathesis
# cannot generate; tests/api/test_inbound_email_api.py posts real ones.
EXCLUDED_PATHS = (f"{API}/notifications/stream", f"{API}/inbound/email")
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "ignored_auth",
]


# This module's app signs and checks tokens with its own secret, so tokens
# can be made before any fixture runs.
SECRET = secrets.token_urlsafe(48)
TENANT = "tenant-conformance"


def token(role: str) -> str:
    sub = CUSTOMER if role == "customer" else f"{role}-1"
    return issue_token(SECRET, tenant_id=TENANT, sub=sub, roles=[role])


@dataclass
class World:
    app: FastAPI
    # Path parameter → ids that exist in the tenant.
    ids: dict[str, list[str]] = field(default_factory=dict)


def _config() -> SchemathesisConfig:
    config = SchemathesisConfig(seed=SEED)
    project = config.projects.override
    project.generation.update(
        modes=["positive", "negative"],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        database="none",
        no_shrink=True,
    )
    project.phases.update(phases=["examples", "fuzzing"])
    project.checks.update(included_check_names=CHECKS)
    checks = project.checks
    # A valid If-Match naming another version is refused on the ticket's
    # state, not on its form: 412, like a state conflict's 409.
    accepted = checks.positive_data_acceptance
    accepted.expected_statuses = [*accepted.expected_statuses, "412"]
    # A body over the size limit is refused before it is read: 413.
    rejected = checks.negative_data_rejection
    rejected.expected_statuses = [*rejected.expected_statuses, "413"]
    return config


@pytest.fixture(scope="module")
def world(settings: Settings, postgres_server_url: str) -> Iterator[World]:
    with fresh_database(postgres_server_url) as url:
        settings = settings.model_copy(
            update={
                "database_url": url,
                "jwt_secret": SECRET,
                # Whether a webhook host is private is a DNS answer, not a
                # form the document can state; test_webhooks_api.py tests it.
                "webhook_allow_private": True,
                # Hundreds of requests a second from one caller: the limits
                # would answer 429 (their own tests: test_rate_limits.py).
                "rate_limit_tenant": None,
                "rate_limit_subject": None,
            }
        )
        core = initialize_ticketing(settings)
        worker = start_projection_worker(settings)
        app = create_app(settings, ticketing=core)
        world = World(app)
        with TestClient(app) as client:
            world.ids = _open_tickets(client)
        # The lists read the projection: wait until it has the tickets.
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_model.active(refresh=True)
                break
            except Exception:
                assert time.monotonic() < deadline, "the projection did not start"
                time.sleep(0.05)
        assert core.read_model.wait_for(core.app.head_position(), 30)
        yield world
        worker.stop()
        core.close()


def _open_tickets(client: TestClient) -> dict[str, list[str]]:
    """An open ticket with an attachment, a resolved one, a webhook, a macro
    and a trigger."""
    agent = {"Authorization": f"Bearer {token('agent')}"}
    admin = {"Authorization": f"Bearer {token('admin')}"}
    tickets = []
    for title in ("Printer on fire", "Cannot log in"):
        created = client.post(
            f"{API}/tickets/",
            json={"title": title, "customer_id": CUSTOMER},
            headers=agent,
        )
        assert created.status_code == 201, created.text
        tickets.append(created.json()["id"])
    upload = client.post(
        f"{API}/tickets/{tickets[0]}/attachments",
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers=agent,
    )
    assert upload.status_code == 201, upload.text
    resolved = client.post(
        f"{API}/tickets/{tickets[1]}/resolve", json={"resolution": "ok"}, headers=agent
    )
    assert resolved.status_code == 200, resolved.text
    webhook = client.post(
        f"{API}/webhooks",
        json={"url": "https://hooks.example.com/ticketing", "event_types": []},
        headers=admin,
    )
    assert webhook.status_code == 201, webhook.text
    macro = client.post(
        f"{API}/macros",
        json={
            "name": "Bump",
            "actions": [{"type": "set_priority", "priority": "high"}],
        },
        headers=admin,
    )
    assert macro.status_code == 201, macro.text
    trigger = client.post(
        f"{API}/triggers",
        json={
            "name": "Answered",
            "when": {"type": "event", "events": ["customer_comment"]},
            "actions": [{"type": "set_status", "status": "open"}],
        },
        headers=admin,
    )
    assert trigger.status_code == 201, trigger.text
    return {
        "ticket_id": tickets,
        "attachment_id": [upload.json()["id"]],
        "webhook_id": [webhook.json()["id"]],
        "macro_id": [macro.json()["id"]],
        "trigger_id": [trigger.json()["id"]],
    }


# Read at collection time, so that each operation is a test of its own; the
# document comes from the same app factory without a database
# (``test_the_tested_document_is_the_one_served`` compares the two).
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", route_table_app(Settings(jwt_secret=SECRET)), config=_config()
).exclude(path=list(EXCLUDED_PATHS))


@schema.auth(refresh_interval=None)
class Tokens:
    """A valid token of a role picked by the request's content."""

    def get(self, case: Case, ctx: AuthContext) -> str:
        return _pick(case, ROLES, "role")

    def set(self, case: Case, role: str, ctx: AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {token(role)}"


def test_the_tested_document_is_the_one_served(world: World) -> None:
    with TestClient(world.app) as client:
        served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == schema.raw_schema


HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE")
ANY_ID = "00000000-0000-4000-8000-000000000000"


def test_a_wrong_method_is_answered_405_with_the_methods_of_the_path(
    world: World,
) -> None:
    """Every path of the document, every method it does not list: 405, and
    ``Allow`` names exactly the methods the document lists for the path."""
    wrong = []
    with TestClient(world.app) as client:
        for path, item in schema.raw_schema["paths"].items():
            documented = {method.upper() for method in item if method != "parameters"}
            url = re.sub(r"\{[^}]+\}", ANY_ID, path)
            for method in sorted(set(HTTP_METHODS) - documented):
                answer = client.request(
                    method, url, headers={"Authorization": f"Bearer {token('admin')}"}
                )
                allow = {m.strip() for m in answer.headers.get("allow", "").split(",")}
                if answer.status_code != 405 or allow != documented:
                    wrong.append((method, path, answer.status_code, sorted(allow)))
                elif answer.headers["content-type"] != "application/problem+json":
                    wrong.append((method, path, "not a problem", answer.text))
    assert not wrong, wrong


@pytest.mark.parametrize(
    "upload",
    [
        {"files": {"file": ("empty.txt", b"", "text/plain")}},
        # What a client sends for ``file: null``: a text part, not a file.
        {"data": {"file": "null"}, "files": {"other": ("a.txt", b"x", "text/plain")}},
    ],
    ids=["empty-file", "null-file"],
)
def test_an_upload_without_content_is_refused(
    world: World, upload: dict[str, Any]
) -> None:
    ticket = world.ids["ticket_id"][0]
    headers = {"Authorization": f"Bearer {token('agent')}"}
    with TestClient(world.app) as client:
        before = client.get(f"{API}/tickets/{ticket}", headers=headers).json()
        answer = client.post(
            f"{API}/tickets/{ticket}/attachments", headers=headers, **upload
        )
        after = client.get(f"{API}/tickets/{ticket}", headers=headers).json()
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in answer.json()["errors"]] == [["body", "file"]]
    assert after["attachments"] == before["attachments"]


@schema.parametrize()
def test_the_api_keeps_its_openapi_contract(case: Case, world: World) -> None:
    if case.meta is not None and case.meta.generation.mode.is_positive:
        _aim_at_existing(case, world)
    excluded = [positive_data_acceptance] if _states_more_than_schema(case) else []
    case.call_and_validate(app=world.app, excluded_checks=excluded)


def _pick(case: Case, options: Sequence[str], salt: str) -> str:
    """One of ``options``, chosen by the request's content (deterministic)."""
    key = repr((salt, case.operation.label, case.path_parameters, case.query))
    return options[zlib.crc32(key.encode()) % len(options)]


def _aim_at_existing(case: Case, world: World) -> None:
    """Most valid requests name a ticket (attachment, webhook) that exists.

    Chosen by the generated request alone (``_pick`` runs before any id is
    replaced), so the same requests aim at the same ids in every run.
    """
    generated = dict(case.path_parameters or {})
    aims = {
        name: _pick(case, ("generated", "known", "known"), name)
        for name in generated
        if world.ids.get(name)
    }
    indexes = {name: _pick(case, ("0", "1"), f"{name}:index") for name in aims}
    for name, aim in aims.items():
        if aim == "known":
            known = world.ids[name]
            case.path_parameters[name] = known[int(indexes[name]) % len(known)]
    # Staff open tickets for a customer they name (a rule on the caller's
    # role, which one body schema for every caller cannot state).
    body = case.body
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == f"{API}/tickets/"
        and _pick(case, ROLES, "role") != "customer"
        and isinstance(body, dict)
        and body.get("customer_id") is None
        and body.get("customer_email") is None
    ):
        body["customer_id"] = CUSTOMER
    # A key names one request: the generator may pair one key with two
    # bodies, which the service refuses (422, a rule no schema can state).
    headers = case.headers or {}
    for name in [h for h in headers if h.lower() == "idempotency-key"]:
        salt = zlib.crc32(repr(body).encode())
        headers[name] = f"{headers[name][:191]}-{salt:08x}"


def _states_more_than_schema(case: Case) -> bool:
    """A valid-looking request that a rule no JSON schema can state refuses.

    Only these may answer a schema-valid request with 422: a cursor is valid
    only if the service handed it out, the dashboard's ``from`` must be
    before its ``to`` (at most a year apart), and so must a simulation's
    period (whose settings document must also make sense as a whole, as
    ``PUT /settings`` asks); a saved view names a team only when shared with
    it, and one of the tenant's settings; time is logged for another agent
    by a supervisor or admin only; a trigger's ``apply_macro`` must name one
    of the tenant's macros, its ``call_webhook`` one of its webhooks and its
    ``notify`` one of its teams, and a macro applied (or previewed) must still
    fit the ticket (the generated macro adds more tags or custom fields than
    a ticket holds, say).
    """
    query = case.query or {}
    if "cursor" in query:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    if case.operation.path.startswith(f"{API}/views"):
        return body.get("shared") == "team" or body.get("team") is not None
    if case.operation.path.endswith("/time-entries"):
        return body.get("agent_id") is not None
    if case.operation.path.startswith(f"{API}/tickets/{{ticket_id}}/macros/"):
        return True
    if case.operation.path.startswith(f"{API}/triggers") and isinstance(
        case.body, dict
    ):
        actions = case.body.get("actions")
        if isinstance(actions, list) and any(
            isinstance(a, dict)
            and (
                a.get("type") in ("apply_macro", "call_webhook")
                or (a.get("type") == "notify" and a.get("team") is not None)
            )
            for a in actions
        ):
            return True
    if case.operation.path == f"{API}/tickets/analytics/dashboard":
        return "from" in query or "to" in query
    return case.operation.method.upper() == "POST" and case.operation.path == (
        f"{API}/simulations"
    )
