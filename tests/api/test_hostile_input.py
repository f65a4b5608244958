"""Malformed and hostile input on every endpoint.

The endpoints are read from the app's route table (every route under
``/api/v1``, plus ``/health`` and ``/ready``), and the cases from each
route's parameters and body model, so a new endpoint or field is attacked
without anyone listing it here. Each case sends one bad request and checks:

- the answer is a 4xx, never a 5xx, and where the right status is known
  (413 for an oversized body, 401 for a bad token, ...), that one;
- it is an RFC 9457 problem: ``application/problem+json`` with ``type``,
  ``title`` and a ``status`` equal to the HTTP status, naming the field at
  fault when a field is at fault, and not echoing the input back;
- nothing was half-written: the event log's head position and the stored
  attachment bytes are what they were before.

The module runs on a database of its own: input that is wrongly accepted (a
NUL byte in a title, a NaN custom field) would otherwise sit in the event
log that the other modules' projection worker reads, and stall it.
"""

from __future__ import annotations

import json
import secrets
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import jwt
import pytest
import structlog
from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import BaseModel

from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workflow import WorkflowResult
from dotmac.ticketing.service.api.app import MULTIPART_OVERHEAD, create_app
from dotmac.ticketing.service.auth import issue_token
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.satisfaction_links import (
    SatisfactionClaims,
    link_secret,
    sign,
)
from dotmac.ticketing.service.settings import Settings
from tests.api.route_table import route_table_app
from tests.conftest import fresh_database

API = "/api/v1"
OPERATIONS = ("/health", "/ready")
PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
# A problem names what is wrong; it must not reflect a megabyte back.
PROBLEM_MAX_BYTES = 32 * 1024

ANY_4XX: frozenset[int] = frozenset(range(400, 500))
NOT_FOUND = frozenset({404})
INVALID = frozenset({422})
UNPARSABLE = frozenset({400, 422})
TOO_LARGE = frozenset({413})

OTHER = "<the other ticket>"
APPROVAL_RULE = "needs-approval"
VALID_BODIES: dict[str, dict[str, Any]] = {
    "TicketCreate": {
        "title": "Printer on fire",
        "description": "Third floor",
        "category": "technical_support",
        "priority": "high",
        "customer_id": "cust-1",
        "customer_email": "cust@example.com",
        "tags": ["printer"],
        "custom_fields": {"floor": "3"},
        "channel": "web",
    },
    "TicketUpdate": {
        "title": "Printer still on fire",
        "description": "Third floor, east wing",
        "category": "technical_support",
        "priority": "urgent",
        "tags": ["printer", "fire"],
        "custom_fields": {"floor": "3"},
    },
    "TicketAssign": {"assignee_id": "agent-2", "team": "Facilities"},
    "TriggerWrite": {
        "name": "Answered",
        "when": {"type": "event", "events": ["customer_comment"]},
        "conditions": {"priority": ["high"]},
        "actions": [{"type": "set_status", "status": "open"}],
    },
    "MacroWrite": {
        "name": "Triage",
        "description": "Bump and note",
        "actions": [
            {"type": "set_priority", "priority": "high"},
            {"type": "internal_note", "body": "Seen by {{ actor.id }}"},
        ],
    },
    "TicketStatusChange": {"status": "in_progress", "reason": "On it"},
    "TicketEscalate": {"reason": "Smoke", "team": "Fire brigade"},
    "TicketResolve": {"resolution": "Extinguished", "resolution_code": "fixed"},
    "TicketReopen": {"reason": "Smoulders again"},
    "CommentCreate": {"body": "On my way", "internal": False},
    "TicketMerge": {"into": OTHER},
    "TicketLink": {"ticket_id": OTHER, "relation": "blocks"},
    "SatisfactionRate": {"rating": 5, "comment": "Quick"},
    "EscalationDecision": {"comment": "Engineering should look"},
    "TimeEntryCreate": {
        "minutes": 30,
        "billable": True,
        "type": "support",
        "note": "Phoned the customer",
    },
    "ViewCreate": {
        "name": "Urgent and mine",
        "filters": {"priority": ["urgent"], "assignee_id": ["me"], "q": "printer"},
        "sort": "-priority",
        # A team view needs the tenant's teams; the world has no settings.
        "shared": "tenant",
    },
    "WorkflowStepCompletion": {"data": {"approved": True, "note": "checked"}},
    "TenantSettingsDocument": {
        "sla_config": {"critical": {"response": 10, "resolution": 120}},
        "business_hours": {
            "timezone": "Europe/Berlin",
            "week": {"mon": ["08:00", "18:00"]},
            "holidays": ["2026-12-25"],
        },
        "teams": [{"name": "Support", "agents": [{"id": "agent-1"}]}],
        "assignment_rules": [
            {
                "name": "all",
                "conditions": {"text": {"contains": "printer"}},
                "assigned_team": "Support",
            }
        ],
        "escalation_rules": [
            {
                "name": "slow",
                "escalation_time_hours": 0.5,
                "escalate_to_team": "Support",
            },
            {
                # Due at once on real time: long before a first response is.
                "name": APPROVAL_RULE,
                "measured_from": "first_response_due",
                "escalation_time_hours": -1000,
                "escalate_to_team": "Support",
                "requires_approval": True,
            },
        ],
    },
}
# Commands that need the ticket in another state first (for the baseline):
# the action of another endpoint, or a step of the service's own workers.
PREPARE: dict[str, str | Callable[[World, str], None]] = {
    "reopen": "resolve",
    "close": "resolve",
    "satisfaction": "resolve",
    # /satisfaction/{token}: a resolution e-mail's link rates a resolved ticket.
    "{token}": "resolve",
    "approve": lambda world, ticket_id: world.request_escalation(ticket_id),
    "reject": lambda world, ticket_id: world.request_escalation(ticket_id),
    # What the workflow runtime does: a step waits for a person, or fails.
    "complete": lambda world, ticket_id: world.run_first_step(
        ticket_id, requires_action=True, message="waiting for a person"
    ),
    "retry": lambda world, ticket_id: world.run_first_step(
        ticket_id, success=False, message="integration 'crm' is down"
    ),
}
# The step the prepared workflows wait on (``{step}`` in paths).
WAITING_STEP = "validate_ticket"
# Commands only the ticket's customer may give.
AS_CUSTOMER = frozenset({"satisfaction"})
# Routes whose credential is the signed token in their path (the links of
# e-mail), not a bearer token: an Authorization header means nothing there.
LINK_PATHS = frozenset({f"{API}/satisfaction/{{token}}"})
# A valid value of each form field (forms of the pages those links open).
VALID_FORM_VALUES = {"rating": "5", "comment": "Quick"}


# -- the route table ---------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A query or header parameter: its wire name, type and bounds."""

    where: Literal["query", "header", "form"]
    name: str
    annotation: Any
    bounds: dict[str, int] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body_model: type[BaseModel] | None = None
    body_required: bool = False
    upload_field: str | None = None
    params: tuple[Param, ...] = ()
    path_params: tuple[str, ...] = ()
    form_params: tuple[Param, ...] = ()

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_api(self) -> bool:
        return self.path.startswith(API + "/")

    @property
    def reads_body(self) -> bool:
        return (
            self.body_model is not None
            or self.upload_field is not None
            or bool(self.form_params)
        )

    @property
    def action(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def _route_contexts(app: FastAPI) -> Iterator[tuple[str, set[str], APIRoute]]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, route.methods, route
        return
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path and context.methods:
            yield context.path, set(context.methods), route


def _dependants(dependant: Any) -> Iterator[Any]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _bounds(*sources: Any) -> dict[str, int]:
    """max_length, ge, le, ... from pydantic/annotated-types metadata."""
    found: dict[str, int] = {}
    for source in sources:
        for item in getattr(source, "metadata", None) or ():
            for name in ("min_length", "max_length", "ge", "le", "gt", "lt"):
                value = getattr(item, name, None)
                if isinstance(value, int) and not isinstance(value, bool):
                    found.setdefault(name, value)
    return found


def discover(app: FastAPI) -> list[Endpoint]:
    endpoints = []
    for path, methods, route in _route_contexts(app):
        if not (path.startswith(API + "/") or path in OPERATIONS):
            continue
        model, required, upload = None, False, None
        forms: list[Param] = []
        for body in route.dependant.body_params:
            info = body.field_info
            if isinstance(info, params.File):
                upload = body.alias
                continue
            if isinstance(info, params.Form):
                forms.append(Param("form", body.alias, info.annotation, _bounds(info)))
                continue
            candidates = get_args(info.annotation) or (info.annotation,)
            model = next(
                c
                for c in candidates
                if isinstance(c, type) and issubclass(c, BaseModel)
            )
            required = info.is_required()
        found: dict[tuple[str, str], Param] = {}
        for dependant in _dependants(route.dependant):
            for where, group in (
                ("query", dependant.query_params),
                ("header", dependant.header_params),
            ):
                for p in group:
                    info = p.field_info
                    found.setdefault(
                        (where, p.alias),
                        Param(where, p.alias, info.annotation, _bounds(info)),
                    )
        for method in sorted(methods):
            endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    body_model=model,
                    body_required=required,
                    upload_field=upload,
                    params=tuple(found.values()),
                    path_params=tuple(p.name for p in route.dependant.path_params),
                    form_params=tuple(forms),
                )
            )
    return sorted(endpoints, key=str)


def _collected_endpoints() -> list[Endpoint]:
    # ``test_every_served_route_is_attacked`` checks that the real app has
    # the same routes.
    settings = Settings(jwt_secret=secrets.token_urlsafe(48))
    return discover(route_table_app(settings))


ENDPOINTS = _collected_endpoints()


# -- the world the requests go to -------------------------------------------


@dataclass
class Call:
    """One request, with ids and credentials still to be filled in."""

    method: str
    path: str
    path_values: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # A role to sign a good token for, a raw Authorization header, or None.
    authorization: str | None = "admin"
    body: Any = None  # JSON-encoded (NaN allowed) when content is None
    content: bytes | Iterator[bytes] | None = None
    files: Any = None
    data: Any = None


@dataclass
class World:
    client: TestClient
    core: Ticketing
    settings: Settings
    tenant: str
    target: str = ""  # the ticket GET cases read; it has an attachment
    other: str = ""  # the other ticket of merges and links
    attachment_id: str = ""
    view_id: str = ""  # a view the caller (admin-1) sees
    macro_id: str = ""  # the macro the macro routes name
    trigger_id: str = ""  # the trigger the trigger routes name
    untouched: dict[str, str] = field(default_factory=dict)

    def authorization(self, role: str) -> str:
        # The customer is the one every ticket here is opened for.
        sub = "cust-1" if role == "customer" else f"{role}-1"
        token = issue_token(self.secret, tenant_id=self.tenant, sub=sub, roles=[role])
        return f"Bearer {token}"

    @property
    def secret(self) -> str:
        assert self.settings.jwt_secret
        return self.settings.jwt_secret

    def send(self, call: Call) -> Response:
        values = {
            "ticket_id": self.target,
            "attachment_id": self.attachment_id,
            "view_id": self.view_id,
            "macro_id": self.macro_id,
            "trigger_id": self.trigger_id,
            "step": WAITING_STEP,
            **call.path_values,
        }
        if "{token}" in call.path and "token" not in values:
            values["token"] = self.link_token(values["ticket_id"])
        path = call.path
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        headers = dict(call.headers)
        if call.authorization in ("admin", "agent", "customer"):
            headers["Authorization"] = self.authorization(call.authorization)
        elif call.authorization is not None:
            headers["Authorization"] = call.authorization
        content = call.content
        if content is None and call.body is not None:
            content = json.dumps(_fill(call.body, self.other)).encode()
            headers = {**JSON, **headers}
        return self.client.request(
            call.method,
            path,
            params=call.params,
            headers=headers,
            content=content,
            files=call.files,
            data=call.data,
        )

    def link_token(self, ticket_id: str) -> str:
        """A resolution e-mail's satisfaction token for the ticket."""
        secret = link_secret(self.settings)
        assert secret is not None
        expires = datetime.now(UTC) + timedelta(days=1)
        return sign(
            SatisfactionClaims(self.tenant, ticket_id, "cust-1", expires), secret
        )

    def head(self) -> tuple[int, int, int]:
        """(event log head position, stored attachments, webhooks): what a
        write moves."""
        with self.core.app.transaction() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM attachment_blobs) AS blobs,"
                " (SELECT count(*) FROM webhooks) AS webhooks"
            )
            row = cursor.fetchone()
        assert row is not None
        return self.core.app.head_position(), int(row["blobs"]), int(row["webhooks"])

    def ticket_for(self, endpoint: Endpoint) -> str:
        """A ticket whose state allows the endpoint's command, reused until
        a request writes to it (see ``forget_tickets``)."""
        key = endpoint.action if endpoint.action in PREPARE else ""
        if key not in self.untouched:
            self.untouched[key] = self.open_ticket(endpoint)
        return self.untouched[key]

    def forget_tickets(self) -> None:
        self.untouched.clear()

    def open_ticket(self, ready_for: Endpoint | None = None) -> str:
        """A new ticket; resolved first if ``ready_for`` needs that."""
        body = {"title": "A fresh ticket", "customer_id": "cust-1"}
        response = self.send(Call("POST", f"{API}/tickets/", body=body))
        assert response.status_code == 201, response.text
        ticket_id = str(response.json()["id"])
        if ready_for is not None and ready_for.action in PREPARE:
            prepare = PREPARE[ready_for.action]
            if callable(prepare):
                prepare(self, ticket_id)
                return ticket_id
            step = next(e for e in ENDPOINTS if e.action == prepare)
            prepared = self.send(baseline(step, ticket_id=ticket_id))
            assert prepared.is_success, prepared.text
        return ticket_id

    def request_escalation(self, ticket_id: str) -> None:
        """What the timers worker does when a rule with approval is due."""
        document = VALID_BODIES["TenantSettingsDocument"]
        stored = self.send(Call("PUT", f"{API}/settings", body=document))
        assert stored.is_success, stored.text
        self.core.tickets.apply_escalation_rule(
            self.tenant, UUID(ticket_id), APPROVAL_RULE
        )
        ticket: Ticket = self.core.app.repository.get(UUID(ticket_id))
        assert ticket.pending_escalation() is not None

    def run_first_step(self, ticket_id: str, **result: Any) -> None:
        """Start the ticket's workflow and record its first step's ``result``."""
        self.core.workflows.start(self.tenant, UUID(ticket_id))
        ticket = self.core.tickets.find(UUID(ticket_id))
        assert ticket is not None
        run = self.core.workflows.step_to_run(ticket)
        assert run is not None and run.step == WAITING_STEP
        outcome = WorkflowResult(step_name=run.step, **{"success": True, **result})
        self.core.workflows.record(run, outcome)


def _fill(body: Any, other: str) -> Any:
    if body == OTHER:
        return other
    if isinstance(body, dict):
        return {k: _fill(v, other) for k, v in body.items()}
    return body


@pytest.fixture(scope="module", autouse=True)
def plain_tracebacks() -> Iterator[None]:
    """Log server errors with plain tracebacks while this module runs.

    The default console renderer draws every local of every frame (the whole
    app among them): tens of seconds per 5xx, and finding those is the point.
    """
    saved = structlog.get_config()
    plain = structlog.dev.ConsoleRenderer(
        exception_formatter=structlog.dev.plain_traceback
    )
    structlog.configure(
        processors=[
            plain if isinstance(p, structlog.dev.ConsoleRenderer) else p
            for p in saved["processors"]
        ]
    )
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def own_database(postgres_server_url: str) -> Iterator[str]:
    """A database of this module's own, on the session's server."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def world(settings: Settings, own_database: str) -> Iterator[World]:
    settings = settings.model_copy(update={"database_url": own_database})
    core = initialize_ticketing(settings)
    app = create_app(settings, ticketing=core)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = World(client, core, settings, tenant=f"tenant-{secrets.token_hex(4)}")
        world.target = world.open_ticket()
        world.other = world.open_ticket()
        upload = world.send(
            Call(
                "POST",
                f"{API}/tickets/{world.target}/attachments",
                files={"file": ("a.txt", b"hello", "text/plain")},
            )
        )
        assert upload.status_code == 201, upload.text
        world.attachment_id = upload.json()["id"]
        view = world.send(Call("POST", f"{API}/views", body={"name": "All"}))
        assert view.status_code == 201, view.text
        world.view_id = view.json()["id"]
        macro = world.send(
            Call("POST", f"{API}/macros", body=VALID_BODIES["MacroWrite"])
        )
        assert macro.status_code == 201, macro.text
        world.macro_id = macro.json()["id"]
        trigger = world.send(
            Call("POST", f"{API}/triggers", body=VALID_BODIES["TriggerWrite"])
        )
        assert trigger.status_code == 201, trigger.text
        world.trigger_id = trigger.json()["id"]
        yield world
    core.close()


# -- what a good request looks like ------------------------------------------


def valid_body(model: type[BaseModel]) -> dict[str, Any]:
    if model.__name__ in VALID_BODIES:
        return dict(VALID_BODIES[model.__name__])
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    return dict(examples[0]) if isinstance(examples, list) and examples else {}


def baseline(endpoint: Endpoint, **path_values: str) -> Call:
    """The endpoint's request with everything valid; cases spoil one part."""
    call = Call(endpoint.method, endpoint.path, path_values=path_values)
    if endpoint.action in AS_CUSTOMER:
        call.authorization = "customer"
    if endpoint.body_model is not None:
        call.body = valid_body(endpoint.body_model)
    if endpoint.upload_field is not None:
        call.files = {endpoint.upload_field: ("notes.txt", b"notes", "text/plain")}
    if endpoint.form_params:
        call.data = {p.name: VALID_FORM_VALUES[p.name] for p in endpoint.form_params}
    return call


# -- the cases ----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    endpoint: Endpoint
    name: str
    build: Callable[[World], Call]
    expect: frozenset[int] = ANY_4XX
    blames: str | None = None  # the parameter or field the problem must name
    challenge: bool = False  # a 401 must carry WWW-Authenticate
    may_succeed: bool = False  # odd, not wrong: only never a 5xx

    @property
    def id(self) -> str:
        return f"{self.endpoint} | {self.name}"


def _with(endpoint: Endpoint, **changes: Any) -> Callable[[World], Call]:
    return lambda world: replace(baseline(endpoint), **changes)


def _chunks(total: int, prefix: bytes = b"", suffix: bytes = b"") -> Iterator[bytes]:
    """A body streamed without Content-Length (chunked)."""
    yield prefix
    for _ in range(total // 16384 + 1):
        yield b"x" * 16384
    yield suffix


def method_cases(e: Endpoint) -> Iterator[Case]:
    served = {x.method for x in ENDPOINTS if x.path == e.path}
    unused = next(m for m in ("DELETE", "PATCH", "PUT", "POST") if m not in served)
    yield Case(e, f"method-{unused}", _with(e, method=unused), frozenset({405}))


def size_cases(e: Endpoint) -> Iterator[Case]:
    def oversized(world: World) -> Call:
        body = {"title": "x" * (world.settings.request_max_bytes + 1)}
        return replace(baseline(e), files=None, body=body)

    yield Case(e, "body-over-request-limit", oversized, TOO_LARGE)
    if not e.reads_body:
        return

    def chunked(world: World) -> Call:
        if e.upload_field:
            limit = world.settings.attachment_max_bytes + MULTIPART_OVERHEAD
            head = f'--b\r\nContent-Disposition: form-data; name="{e.upload_field}"; '
            head += 'filename="a"\r\n\r\n'
            content = _chunks(limit, head.encode(), b"\r\n--b--\r\n")
            kind = "multipart/form-data; boundary=b"
        elif e.form_params:
            limit = world.settings.request_max_bytes
            content = _chunks(limit, b"rating=5&comment=")
            kind = "application/x-www-form-urlencoded"
        else:
            limit = world.settings.request_max_bytes
            content = _chunks(limit, b'{"title": "', b'"}')
            kind = "application/json"
        return replace(
            baseline(e), files=None, content=content, headers={"Content-Type": kind}
        )

    yield Case(e, "chunked-body-over-limit", chunked, TOO_LARGE)


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    part = [
        jwt.utils.base64url_encode(json.dumps(x).encode()).decode()
        for x in (header, claims)
    ]
    return f"Bearer {part[0]}.{part[1]}."


def _signed(world: World, **overrides: Any) -> str:
    claims = {
        "sub": "admin-1",
        "tenant_id": world.tenant,
        "roles": ["admin"],
        "exp": datetime.now(UTC) + timedelta(hours=1),
        **overrides,
    }
    return "Bearer " + jwt.encode(
        {k: v for k, v in claims.items() if v is not None},
        world.secret,
        algorithm="HS256",
    )


def _claims(world: World) -> dict[str, Any]:
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    return {"sub": "a", "tenant_id": world.tenant, "roles": ["admin"], "exp": exp}


BAD_TOKENS: dict[str, Callable[[World], str | None]] = {
    "no-authorization": lambda w: None,
    "empty-bearer": lambda w: "Bearer ",
    "basic-scheme": lambda w: "Basic dXNlcjpwYXNz",
    "not-a-jwt": lambda w: "Bearer not.a.jwt",
    "huge-token": lambda w: "Bearer " + "a" * 65536,
    "expired": lambda w: (
        "Bearer "
        + issue_token(
            w.secret,
            tenant_id=w.tenant,
            sub="admin-1",
            roles=["admin"],
            now=datetime.now(UTC) - timedelta(days=2),
            ttl=timedelta(hours=1),
        )
    ),
    "another-secret": lambda w: (
        "Bearer "
        + issue_token(
            secrets.token_urlsafe(48), tenant_id=w.tenant, sub="a", roles=["admin"]
        )
    ),
    "alg-none": lambda w: _unsigned({"alg": "none"}, _claims(w)),
    "alg-not-a-string": lambda w: _unsigned({"alg": ["HS256"]}, _claims(w)),
    "unknown-role": lambda w: _signed(w, roles=["root"]),
    "roles-not-a-list": lambda w: _signed(w, roles="admin"),
    "roles-nested-list": lambda w: _signed(w, roles=[["admin"]]),
    "no-tenant-claim": lambda w: _signed(w, tenant_id=None),
}


def auth_cases(e: Endpoint) -> Iterator[Case]:
    if not e.is_api or e.path in LINK_PATHS:
        return
    for name, token in BAD_TOKENS.items():
        yield Case(
            e,
            f"token-{name}",
            lambda w, token=token: replace(baseline(e), authorization=token(w)),
            frozenset({401}),
            challenge=True,
        )
    # Signed by the real issuer, but the tenant id is not text PostgreSQL
    # can store: refusing (401) or finding nothing (404) are both fine, and
    # so is answering an endpoint that is not about any tenant's data.
    yield Case(
        e,
        "token-tenant-with-nul-byte",
        lambda w: replace(baseline(e), authorization=_signed(w, tenant_id="t\x00x")),
        may_succeed=True,
    )


BAD_IDS: dict[str, tuple[str, frozenset[int]]] = {
    "not-a-uuid": ("not-a-uuid", INVALID),
    "very-long": ("a" * 10_000, INVALID),
    "nul-byte": ("%00", INVALID),
    "path-traversal": ("../../etc/passwd", frozenset({404, 405, 422})),
    "encoded-path-traversal": ("..%2F..%2Fetc%2Fpasswd", frozenset({404, 422})),
    "unknown": (str(uuid.UUID(int=0xDEAD)), NOT_FOUND),
    "nil-uuid": (str(uuid.UUID(int=0)), NOT_FOUND),
}
BAD_ATTACHMENT_IDS: dict[str, tuple[str, frozenset[int]]] = {
    "too-long": ("a" * 65, INVALID),
    "unknown": (uuid.uuid4().hex, NOT_FOUND),
    "nul-byte": ("%00", NOT_FOUND),
    "encoded-path-traversal": ("..%2F..%2Fetc%2Fpasswd", frozenset({404, 422})),
}


def path_cases(e: Endpoint) -> Iterator[Case]:
    tables = {"ticket_id": BAD_IDS, "attachment_id": BAD_ATTACHMENT_IDS}
    for name in e.path_params:
        generic = {
            "very-long": ("a" * 10_000, ANY_4XX),
            "nul-byte": ("%00", ANY_4XX),
        }
        for label, (value, expect) in tables.get(name, generic).items():
            blames = name if expect == INVALID else None
            yield Case(
                e,
                f"{name}-{label}",
                _with(e, path_values={name: value}),
                expect,
                blames,
            )


# Parameters the service parses itself, with what they must refuse.
KNOWN_PARAMS: dict[str, dict[str, tuple[str, frozenset[int]]]] = {
    "as_of": {
        "words": ("yesterday", INVALID),
        "naive-time": ("2024-01-01T00:00:00", INVALID),
        "impossible-date": ("2024-13-45T00:00:00Z", INVALID),
        "offset-out-of-range": ("2024-01-01T00:00:00+25:00", INVALID),
        "negative": ("-1", INVALID),
        "nan": ("NaN", INVALID),
        "superscript-digit": ("\u00b2", INVALID),
        "nul-byte": ("1\x00", INVALID),
        "too-long": ("1" * 65, INVALID),
        "version-zero": ("0", NOT_FOUND),
        "version-from-the-future": ("9" * 40, NOT_FOUND),
    },
    "if-match": {
        "garbage": ("abc", INVALID),
        "weak-garbage": ('W/"abc"', INVALID),
        "list": ('"1", "2"', INVALID),
        "negative": ('"-1"', INVALID),
        "thirteen-digits": ("1" * 13, INVALID),
        "too-long": ("1" * 65, INVALID),
        "stale": ('"999999"', frozenset({412})),
    },
    "idempotency-key": {
        "empty": ("", INVALID),
        "too-long": ("k" * 201, INVALID),
    },
}


def _shape(annotation: Any) -> tuple[str, Any, bool]:
    """(kind, the inner annotation, nullable) of a field or parameter type."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            nullable = nullable or len(members) < len(get_args(annotation))
            if len(members) != 1:
                return "union", annotation, nullable
            annotation = members[0]
        else:
            break
    origin = get_origin(annotation)
    if origin is Literal or (
        isinstance(annotation, type) and issubclass(annotation, Enum)
    ):
        return "enum", annotation, nullable
    if origin in (list, set, tuple):
        return (
            "list",
            get_args(annotation)[0] if get_args(annotation) else Any,
            nullable,
        )
    if origin is dict or annotation is dict:
        return "dict", annotation, nullable
    if annotation is bool:
        return "bool", annotation, nullable
    if annotation is int:
        return "int", annotation, nullable
    if annotation is float:
        return "float", annotation, nullable
    if annotation is str:
        return "text", annotation, nullable
    if annotation is UUID:
        return "uuid", annotation, nullable
    if isinstance(annotation, type) and (
        issubclass(annotation, datetime) or "Datetime" in annotation.__name__
    ):  # datetime, or pydantic's AwareDatetime and friends
        return "datetime", annotation, nullable
    return "other", annotation, nullable


def _param_values(p: Param) -> dict[str, tuple[str, frozenset[int]]]:
    """Generic refusals for a query or header parameter, by its type."""
    kind, inner, _ = _shape(p.annotation)
    bounds = dict(p.bounds)
    if kind == "list":  # a repeated parameter: each value is checked alone
        bounds = _inner_bounds(inner)
        kind, inner, _ = _shape(inner)
    values: dict[str, tuple[str, frozenset[int]]] = {}
    if kind in ("int", "float"):
        values |= {
            "not-a-number": ("abc", INVALID),
            "huge-number": ("9" * 5000, INVALID),
            "infinity": ("inf", INVALID),
        }
        if kind == "int":
            values["fraction"] = ("1.5", INVALID)
        if "ge" in bounds:
            values["below-minimum"] = (str(bounds["ge"] - 1), INVALID)
        if "le" in bounds:
            values["above-maximum"] = (str(bounds["le"] + 1), INVALID)
    elif kind == "enum":
        values["not-a-member"] = ("no-such-value", INVALID)
    elif kind == "bool":
        values["not-a-boolean"] = ("maybe", INVALID)
    elif kind == "uuid":
        values["not-a-uuid"] = ("not-a-uuid", INVALID)
    elif kind == "datetime":
        values["not-a-time"] = ("yesterday", INVALID)
        values["naive-time"] = ("2024-01-01T00:00:00", INVALID)
    elif kind == "text":
        if "max_length" in bounds:
            values["too-long"] = ("x" * (bounds["max_length"] + 1), INVALID)
        if p.where == "query":
            # Text PostgreSQL cannot store or compare: refuse it up front.
            values["nul-byte"] = ("a\x00b", INVALID)
    return values


def _inner_bounds(annotation: Any) -> dict[str, int]:
    if get_origin(annotation) is Annotated:
        return _bounds(*get_args(annotation)[1:])
    return {}


def param_cases(e: Endpoint) -> Iterator[Case]:
    for p in e.params:
        values = KNOWN_PARAMS.get(p.name) or _param_values(p)
        for label, (value, expect) in values.items():
            where = "params" if p.where == "query" else "headers"
            blames = p.name if expect == INVALID else None
            yield Case(
                e,
                f"{p.where}-{p.name}-{label}",
                _with(e, **{where: {p.name: value}}),
                expect,
                blames,
            )


def _with_form(e: Endpoint, **fields: str | None) -> Callable[[World], Call]:
    """The baseline's form with ``fields`` changed (None: left out)."""

    def build(world: World) -> Call:
        data = {**(baseline(e).data or {}), **fields}
        return replace(
            baseline(e), data={k: v for k, v in data.items() if v is not None}
        )

    return build


def form_cases(e: Endpoint) -> Iterator[Case]:
    for p in e.form_params:
        values = _param_values(p)
        if _shape(p.annotation)[0] == "text":
            values["nul-byte"] = ("a\x00b", INVALID)
        for label, (value, expect) in values.items():
            blames = p.name if expect == INVALID else None
            yield Case(
                e,
                f"form-{p.name}-{label}",
                _with_form(e, **{p.name: value}),
                expect,
                blames,
            )
    if e.form_params:
        first = e.form_params[0].name
        yield Case(
            e, f"form-without-{first}", _with_form(e, **{first: None}), INVALID, first
        )


def _raw(
    e: Endpoint, content: bytes, kind: str = "application/json"
) -> Callable[[World], Call]:
    return _with(e, body=None, content=content, headers={"Content-Type": kind})


def body_cases(e: Endpoint) -> Iterator[Case]:
    model = e.body_model
    if model is None:
        return
    # An absent body is a valid request where the body is optional (reopen).
    absent = {"may_succeed": not e.body_required}
    missing = INVALID if e.body_required else ANY_4XX
    nested = b"[" * 10_000 + b"]" * 10_000
    first = next(iter(model.model_fields))
    good = json.dumps(valid_body(model)).encode()
    yield Case(e, "malformed-json", _raw(e, b'{"title": '), INVALID)
    yield Case(e, "trailing-garbage", _raw(e, good + b" }{"), INVALID)
    yield Case(e, "array-body", _raw(e, b"[]"), INVALID)
    yield Case(e, "string-body", _raw(e, b'"text"'), INVALID)
    yield Case(e, "number-body", _raw(e, b"42"), INVALID)
    yield Case(e, "null-body", _raw(e, b"null"), missing, **absent)
    yield Case(e, "empty-body", _raw(e, b""), missing, **absent)
    yield Case(e, "text-plain", _raw(e, good, "text/plain"), INVALID)
    yield Case(e, "xml", _raw(e, b"<title>x</title>", "application/xml"), INVALID)
    yield Case(
        e,
        "form-urlencoded",
        _with(e, body=None, data={first: "x"}),
        INVALID,
    )
    yield Case(
        e,
        "multipart",
        _with(e, body=None, files={first: ("a.txt", b"x")}),
        INVALID,
    )
    yield Case(e, "invalid-utf-8", _raw(e, b'{"' + b"\xff\xfe" + b'": 1}'), UNPARSABLE)
    # JSON must be UTF-8 (RFC 8259), but decoding UTF-16 leniently is harmless.
    utf16 = json.dumps(valid_body(model)).encode("utf-16")
    yield Case(e, "utf-16", _raw(e, utf16), may_succeed=True)
    yield Case(e, "deeply-nested-body", _raw(e, nested), UNPARSABLE)
    head = json.dumps(valid_body(model))[:-1].encode()
    yield Case(
        e,
        "deeply-nested-field",
        _raw(e, head + b', "' + first.encode() + b'": ' + nested + b"}"),
        UNPARSABLE,
    )
    yield Case(
        e,
        "number-with-5000-digits",
        _raw(e, b'{"' + first.encode() + b'": ' + b"9" * 5000 + b"}"),
        UNPARSABLE,
    )
    yield Case(
        e,
        "unknown-field",
        _with(e, body={**valid_body(model), "unexpected": 1}),
        INVALID,
        "unexpected",
    )
    # Fields the server owns must not be settable by the client.
    owned = {
        "id": str(uuid.uuid4()),
        "tenant_id": "another-tenant",
        "version": 99,
        "number": 1,
        "created_at": "2000-01-01T00:00:00Z",
        "merged_into": str(uuid.uuid4()),
    }
    for name, value in owned.items():
        if name not in model.model_fields:
            yield Case(
                e,
                f"server-owned-field-{name}",
                _with(e, body={**valid_body(model), name: value}),
                INVALID,
                name,
            )
    for name, info in model.model_fields.items():
        yield from field_cases(e, model, name, info.annotation)


WRONG_TYPES: dict[str, dict[str, Any]] = {
    "text": {"number": 12345, "boolean": True, "list": ["x"], "object": {"x": "y"}},
    "enum": {"not-a-member": "no-such-value", "number": 7, "list": ["x"]},
    "bool": {"string": "maybe", "number": 2, "list": [True]},
    "uuid": {"not-a-uuid": "not-a-uuid", "number": 12345, "object": {}},
    "int": {"string": "x", "fraction": 1.5, "list": [1]},
    "float": {"string": "x", "list": [1.0]},
    "list": {"string": "x", "object": {"x": 1}, "nested-list": [["x"]]},
    "dict": {"list": ["x"], "string": "x", "nested-object": {"k": {"deep": 1}}},
    "datetime": {"string": "yesterday", "list": []},
    "other": {"nested-list": [[[]]], "nested-object": {"k": {"deep": {}}}},
}


def _nul(value: Any) -> str:
    text = value if isinstance(value, str) and value else "text"
    return text[:1] + "\x00" + text[1:]


# Values the generic cases call wrong that a field takes on purpose: they
# must still never cause a 5xx. A step completion's data is bounded JSON
# like a workflow's options (depth 5, 16 KiB, no NaN or NUL): a person may
# answer a step with structure, under keys of any length within that size.
ACCEPTED_BY_DESIGN = frozenset(
    {
        ("WorkflowStepCompletion", "data", "as-nested-object"),
        ("WorkflowStepCompletion", "data", "key-100-chars"),
    }
)


def field_cases(
    e: Endpoint, model: type[BaseModel], name: str, annotation: Any
) -> Iterator[Case]:
    kind, inner, nullable = _shape(annotation)
    good = valid_body(model)

    def case(label: str, value: Any, expect: frozenset[int] = INVALID) -> Case:
        blames = name if expect == INVALID else None
        body = {**good, name: value}
        return Case(
            e,
            f"field-{name}-{label}",
            _with(e, body=body),
            expect,
            blames,
            may_succeed=(model.__name__, name, label) in ACCEPTED_BY_DESIGN,
        )

    for label, value in WRONG_TYPES.get(kind, WRONG_TYPES["other"]).items():
        yield case(f"as-{label}", value)
    if not nullable:
        yield case("null", None)
    if kind == "text":
        yield case("200k-chars", "x" * 200_000)
        yield case("one-megabyte", "x" * 1024 * 1024, TOO_LARGE)
        yield case("lone-surrogate", "a\ud800b")
        # PostgreSQL text cannot hold NUL: accepting one poisons the read side.
        yield case("nul-byte", _nul(good.get(name)))
    if kind == "list" and _shape(inner)[0] == "text":
        yield case("item-100k-chars", ["x" * 100_000])
        yield case("10k-items", [f"t{i}" for i in range(10_000)])
        yield case("item-with-nul-byte", [_nul("tag")])
    if kind == "dict":
        yield case("1000-keys", {f"k{i}": i for i in range(1000)})
        yield case("value-100k-chars", {"k": "x" * 100_000})
        yield case("key-100-chars", {"k" * 100: "v"})
        yield case("key-with-nul-byte", {_nul("key"): "v"})
        yield case("value-with-nul-byte", {"key": _nul("value")})
        # JSON has no NaN; stored, it cannot be projected or read back.
        yield case("value-nan", {"k": float("nan")})
        yield case("value-infinity", {"k": float("inf")})


def _multipart(e: Endpoint, content: bytes, kind: str) -> Callable[[World], Call]:
    return _with(e, files=None, content=content, headers={"Content-Type": kind})


def upload_cases(e: Endpoint) -> Iterator[Case]:
    name = e.upload_field
    if name is None:
        return

    def sized(extra: int) -> Callable[[World], Call]:
        def build(world: World) -> Call:
            size = world.settings.attachment_max_bytes + extra
            return replace(baseline(e), files={name: ("big.bin", b"x" * size)})

        return build

    boundary = "multipart/form-data; boundary=zz"
    yield Case(e, "upload-as-json", _with(e, files=None, body={name: "x"}), INVALID)
    yield Case(
        e,
        "upload-without-file-part",
        _with(e, files={"other": ("a.txt", b"x")}),
        INVALID,
        name,
    )
    yield Case(
        e,
        "upload-file-as-text-field",
        _with(e, files={"other": ("a.txt", b"x")}, data={name: "not a file"}),
        INVALID,
        name,
    )
    yield Case(
        e,
        "upload-without-boundary",
        _multipart(e, b"--zz\r\n", "multipart/form-data"),
        UNPARSABLE,
    )
    yield Case(e, "upload-garbage", _multipart(e, b"garbage", boundary), UNPARSABLE)
    yield Case(e, "upload-empty-body", _multipart(e, b"", boundary), ANY_4XX)
    yield Case(
        e,
        "upload-empty-filename",
        _with(e, files={name: ("", b"x")}),
        ANY_4XX,
    )
    # Refused after the bytes were stored: they must be removed again.
    yield Case(
        e,
        "upload-filename-too-long",
        _with(e, files={name: ("a" * 300 + ".txt", b"x")}),
        INVALID,
    )
    yield Case(e, "upload-one-byte-over-limit", sized(1), TOO_LARGE)
    yield Case(e, "upload-over-body-limit", sized(MULTIPART_OVERHEAD + 1), TOO_LARGE)


def cases_for(e: Endpoint) -> Iterator[Case]:
    yield from method_cases(e)
    yield from size_cases(e)
    yield from auth_cases(e)
    yield from path_cases(e)
    yield from param_cases(e)
    yield from form_cases(e)
    yield from body_cases(e)
    yield from upload_cases(e)


CASES = [case for endpoint in ENDPOINTS for case in cases_for(endpoint)]


# -- assertions -------------------------------------------------------------


def assert_problem(response: Response, case: Case) -> dict[str, Any]:
    status = response.status_code
    shown = f"{status}: {response.text[:500]}"
    assert status < 500, f"server error {shown}"
    assert 400 <= status < 500, f"accepted {shown}"
    assert status in case.expect, f"expected {sorted(case.expect)}, got {shown}"
    assert response.headers["content-type"] == PROBLEM, shown
    assert len(response.content) < PROBLEM_MAX_BYTES, "the problem echoes the input"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert isinstance(problem["type"], str) and problem["type"]
    assert isinstance(problem["title"], str) and problem["title"]
    if case.blames:
        named = blamed(problem) | {problem.get("detail", "")}
        assert any(case.blames in name for name in named), problem
    if case.challenge:
        assert response.headers["www-authenticate"].startswith("Bearer"), shown
    return problem


def blamed(problem: dict[str, Any]) -> set[str]:
    """The parameters and fields a problem says are at fault."""
    names = {
        str(error["loc"][1])
        for error in problem.get("errors", ())
        if len(error.get("loc", ())) > 1
    }
    if problem.get("field"):
        names.add(str(problem["field"]).split(".")[0])
    return names


# -- the tests --------------------------------------------------------------


def test_every_served_route_is_attacked(app: FastAPI) -> None:
    """The collected route table is the one the service serves."""
    assert [str(e) for e in discover(app)] == [str(e) for e in ENDPOINTS]
    assert {"/health", "/ready"} <= {e.path for e in ENDPOINTS}
    attacked = {case.endpoint for case in CASES}
    assert attacked == set(ENDPOINTS)


def test_every_body_model_has_a_valid_example() -> None:
    """Cases spoil one part of a valid request: it must exist."""
    models = {e.body_model for e in ENDPOINTS if e.body_model is not None}
    missing = sorted(m.__name__ for m in models if not valid_body(m))
    assert not missing, f"add these to VALID_BODIES: {missing}"


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.reads_body],
    ids=str,
)
def test_the_valid_request_is_accepted(world: World, endpoint: Endpoint) -> None:
    """The control: without the spoiled part, each request succeeds, so a
    refusal below is the spoiled part's doing."""
    ticket = world.open_ticket(endpoint)
    world.other = world.open_ticket()
    response = world.send(baseline(endpoint, ticket_id=ticket))
    assert response.is_success, response.text


def test_an_upload_of_exactly_the_limit_is_accepted(world: World) -> None:
    uploads = [e for e in ENDPOINTS if e.upload_field]
    for endpoint in uploads:
        call = baseline(endpoint, ticket_id=world.open_ticket(endpoint))
        size = world.settings.attachment_max_bytes
        call.files = {endpoint.upload_field: ("limit.bin", b"x" * size)}
        response = world.send(call)
        assert response.status_code == 201, response.text
        assert response.json()["size"] == size


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_input_is_refused(world: World, case: Case) -> None:
    call = case.build(world)
    if call.method != "GET" and "{ticket_id}" in call.path:
        call.path_values.setdefault("ticket_id", world.ticket_for(case.endpoint))
    before = world.head()

    response = world.send(call)

    after = world.head()
    if after != before:
        # Wrongly accepted or half-written: the next case gets a clean ticket.
        world.forget_tickets()
    if case.may_succeed and response.is_success:
        return
    assert_problem(response, case)
    assert after == before, "a refused request wrote something"


# Text that is odd but legitimate: it may be refused, but never with a 5xx,
# and if it is stored in a ticket, the ticket must still read back.
ODD_TEXT = {
    # Right-to-left override, zero-width joiner in an emoji family, a byte
    # order mark, combining accents, full-width and mathematical letters.
    "unicode-mix": "\u202etxt.exe \U0001f469\u200d\U0001f467\ufeff e\u0301\u0301 "
    "\uff34 \U0001d57f",
    "markup-sql-format": "<script>x</script>' OR 1=1;--%s%n{0}${jndi:x}",
    "crlf": "line\r\nX-Injected: 1",
    "unicode-spaces-only": "\u3000\u2003",
}


def _text_fields(model: type[BaseModel]) -> Iterator[tuple[str, str]]:
    for name, info in model.model_fields.items():
        kind, inner, _ = _shape(info.annotation)
        if kind in ("text", "dict") or (kind == "list" and _shape(inner)[0] == "text"):
            yield name, kind


ODD_CASES = [
    pytest.param(e, name, kind, label, id=f"{e} | field-{name}-{label}")
    for e in ENDPOINTS
    if e.body_model is not None
    for name, kind in _text_fields(e.body_model)
    for label in ODD_TEXT
]


@pytest.mark.parametrize(("endpoint", "name", "kind", "label"), ODD_CASES)
def test_odd_text_is_stored_safely_or_refused(
    world: World, endpoint: Endpoint, name: str, kind: str, label: str
) -> None:
    assert endpoint.body_model is not None
    text = ODD_TEXT[label]
    value: Any = {"list": [text], "dict": {"note": text}}.get(kind, text)
    ticket = world.open_ticket(endpoint) if "{ticket_id}" in endpoint.path else ""
    call = baseline(endpoint, ticket_id=ticket)
    call.body = {**valid_body(endpoint.body_model), name: value}

    response = world.send(call)

    assert response.status_code < 500, response.text
    if not response.is_success:
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == response.status_code
        return
    if not endpoint.path.startswith(f"{API}/tickets/"):
        # Not a ticket (a webhook): the collection must still read back.
        listed = world.send(Call("GET", endpoint.path))
        assert listed.status_code == 200, listed.text
        return
    if endpoint.path == f"{API}/tickets/":
        ticket = response.json()["id"]
    for suffix in ("", "/comments", "/history"):
        staff = world.send(Call("GET", f"{API}/tickets/{ticket}{suffix}"))
        assert staff.status_code == 200, staff.text
    # 404 when the odd text went into the customer id itself.
    customer = world.send(
        Call("GET", f"{API}/tickets/{ticket}", authorization="customer")
    )
    assert customer.status_code in (200, 404), customer.text
