"""RFC 9457 problem details for every error the API can answer.

Each problem has a stable ``type`` URI (``PROBLEM_BASE`` + slug) that
clients may branch on; the ``title`` is the same for every occurrence of a
type and ``detail`` says what happened this time.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from dotmac.ticketing.domain.errors import CommandRefused, InvalidCommand
from dotmac.ticketing.domain.merging import CrossCustomerMerge
from dotmac.ticketing.projections.read_model import ProjectionNotReady
from dotmac.ticketing.projections.ticket_queries import InvalidCursor
from dotmac.ticketing.service.errors import (
    AttachmentNotFound,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    JobNotFound,
    MacroNotFound,
    NoSuchVersion,
    NotificationNotFound,
    PermissionDenied,
    PreconditionFailed,
    SettingsVersionNotFound,
    SimulationNotFound,
    SubjectNotFound,
    TicketNotFound,
    TimeEntryNotFound,
    TriggerNotFound,
    ViewNotFound,
    WebhookLimitReached,
    WebhookNotFound,
    WorkflowNotStarted,
)
from dotmac.ticketing.store.batch_recorder import CommitOutcomeUnknown
from dotmac.ticketing.store.deadline import DeadlinePassed

PROBLEM_BASE = "https://dotmac-ticketing.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)


class Unauthorized(Exception):
    """Missing, expired, forged or malformed credentials."""


class PayloadTooLarge(StarletteHTTPException):
    # An HTTPException, so that FastAPI's body reading lets it through
    # instead of turning it into a 400 "error parsing the body".
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(413, f"the request body is larger than {limit} bytes")

    def __str__(self) -> str:
        return str(self.detail)


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and why: never echo the input back (it may be huge or hostile).
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", ""))[:300],
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()[:50]
    ]


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_for(exc: Exception) -> JSONResponse | None:
    """The problem response for an exception, or None if it is unexpected."""
    match exc:
        case RequestValidationError():
            return problem(
                422,
                "validation-error",
                "Invalid request",
                "the request does not match the schema",
                errors=_validation_errors(exc),
            )
        case InvalidCommand():
            return problem(
                422, "invalid-command", "Invalid command", str(exc), field=exc.field
            )
        case CrossCustomerMerge():
            # Staff only (merging is): naming both customers helps them decide.
            return problem(
                409,
                "cross-customer-merge",
                "The tickets belong to different customers",
                str(exc),
                command=exc.command,
                ticket_status=exc.status,
                source_customer_id=exc.source_customer_id,
                target_customer_id=exc.target_customer_id,
                confirmable=exc.confirmable,
            )
        case CommandRefused():
            return problem(
                409,
                "command-refused",
                "Command refused in this state",
                str(exc),
                command=exc.command,
                ticket_status=exc.status,
            )
        case NoSuchVersion() | SettingsVersionNotFound():
            return problem(404, "no-such-version", "No such version", str(exc))
        case (
            TicketNotFound()
            | AttachmentNotFound()
            | TimeEntryNotFound()
            | ViewNotFound()
            | NotificationNotFound()
            | WebhookNotFound()
            | WorkflowNotStarted()
            | JobNotFound()
            | SimulationNotFound()
            | MacroNotFound()
            | TriggerNotFound()
        ):
            return problem(404, "not-found", "Not found", str(exc))
        case SubjectNotFound():
            return problem(404, "not-found", "Not found", str(exc))
        case PermissionDenied():
            return problem(403, "forbidden", "Forbidden", str(exc))
        case WebhookLimitReached():
            return problem(
                409, "webhook-limit", "Too many webhooks", str(exc), limit=exc.limit
            )
        case Unauthorized():
            return problem(
                401,
                "unauthorized",
                "Unauthorized",
                str(exc),
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        case ConcurrencyConflict():
            return problem(409, "conflict", "Concurrent modification", str(exc))
        case PreconditionFailed():
            return problem(
                412,
                "precondition-failed",
                "Version mismatch",
                str(exc),
                current_version=exc.actual,
            )
        case IdempotencyKeyReused():
            return problem(
                422, "idempotency-key-reused", "Idempotency key reused", str(exc)
            )
        case InvalidCursor():
            return problem(422, "invalid-cursor", "Invalid cursor", str(exc))
        case ProjectionNotReady():
            return problem(
                503,
                "projection-not-ready",
                "Read model not ready",
                str(exc),
                headers={"Retry-After": "2"},
            )
        case CommitOutcomeUnknown():
            return problem(
                503,
                "outcome-unknown",
                "Outcome unknown",
                "the database went away while the change was being committed:"
                " it may or may not be stored. Repeat the request with the same"
                " Idempotency-Key (a create is then answered with the ticket if"
                " it was stored), or read the resource first",
                headers={"Retry-After": "2"},
            )
        case DeadlinePassed():
            # Nothing of the request was written (store.deadline).
            return problem(
                503,
                "deadline-passed",
                "Not done in time",
                "the request could not be done within the service's deadline;"
                " nothing was changed",
                headers={"Retry-After": "1"},
            )
        case (
            StoreOperationalError()
            | StoreInterfaceError()
            | psycopg.OperationalError()
            | psycopg.InterfaceError()
        ):
            # The database is down, or every connection is busy: a bounded
            # wait (TICKETING_DB_WAIT_SECONDS), then this, never a hang.
            return problem(
                503,
                "database-unavailable",
                "Database unavailable",
                "the database did not answer in time; retry the request (with"
                " the same Idempotency-Key for a create)",
                headers={"Retry-After": "2"},
            )
        case PayloadTooLarge():
            return problem(413, "payload-too-large", "Payload too large", str(exc))
        case StarletteHTTPException():
            slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "Error"))
            return problem(
                exc.status_code,
                slug,
                title,
                exc.detail if isinstance(exc.detail, str) else None,
                headers=dict(exc.headers) if exc.headers else None,
            )
    return None


def internal_error() -> JSONResponse:
    return problem(500, "internal-error", "Internal error", "see the service log")


class ProblemRoute(APIRoute):
    """A route that answers its own errors as problem+json.

    The ticket router carries this, so a host application that mounts it
    gets the same error contract without installing anything.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                response = problem_for(exc)
                if response is None:
                    raise
                return response

        return handle


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of the app serves at ``path``, sorted.

    Starlette's 405 names only the methods of the first route whose path
    matched; ``/tickets/`` has a GET route and a POST route, so its answer
    left POST out.

    A path some route names literally is that route's alone, as Starlette
    routes it (``/tickets/bulk`` is not a ``/tickets/{ticket_id}``).
    """
    table = _route_table(app)
    literal = [methods for route_path, methods in table if route_path == path]
    matching = literal or [
        methods
        for route_path, methods in table
        if compile_path(route_path)[0].match(path)
    ]
    return sorted(set().union(*matching))


def _route_table(app: FastAPI) -> list[tuple[str, set[str]]]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers
        return [
            (route.path, set(route.methods or ()))
            for route in app.routes
            if isinstance(route, APIRoute)
        ]
    # API routes only: a plain route answers 405 for a path (bulk_routes).
    return [
        (context.path, set(context.methods))
        for context in iter_route_contexts(app.routes)
        if context.path
        and context.methods
        and isinstance(context.original_route, APIRoute)
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Errors outside routes (unknown paths, crashes) as problem+json too."""

    async def on_known(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
            allow = ", ".join(allowed_methods(app, request.scope["path"]))
            exc = StarletteHTTPException(405, headers={"Allow": allow})
        return problem_for(exc) or internal_error()

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return internal_error()

    app.add_exception_handler(StarletteHTTPException, on_known)
    app.add_exception_handler(RequestValidationError, on_known)
    app.add_exception_handler(Exception, on_unexpected)
