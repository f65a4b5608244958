"""What the routes depend on, declared once.

A route names what it needs with one of these ``Annotated`` aliases: the
caller, the service it calls, the version ``If-Match`` expects. Each comes
from one provider function, so an application swaps any of them by
overriding that function, the way FastAPI does it::

    app.dependency_overrides[deps.current_user] = my_principal

- **The caller.** ``current_user`` verifies the bearer JWT and gives the
  ``Principal``; the tenant (``current_tenant``), the use cases' caller
  (``current_caller``, a ``RequestContext``) and the admin check
  (``require_admin``) are derived from it. An application with its own
  authentication overrides ``current_user`` with a dependency that returns
  a ``Principal`` (``sub``, ``tenant_id``, ``roles``), and every route
  follows, the admin-only ones included.
- **The services** come from the core ``create_app`` serves
  (``request.app.state.ticketing``: ``ticketing``), one function each;
  the stores ``create_app`` builds over it from ``request.app.state`` too.
- **Versions.** ``ExpectedVersion`` is ``If-Match`` parsed
  (``versions.parse_if_match``); ``AsOf`` the ``?as_of=`` parameter, parsed
  by the route (``versions.parse_as_of``) after its other parameters.

``dotmac.ticketing.api.create_ticket_router`` mounts the ticket routes in
a host's app with the host's own dependencies in place of these
(``binding.bind``).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import WithJsonSchema

from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.service.api.problems import Unauthorized
from dotmac.ticketing.service.api.versions import (
    AS_OF_SCHEMA,
    IF_MATCH_PATTERN,
    parse_if_match,
)
from dotmac.ticketing.service.auth import AuthError, Principal, Role, TokenVerifier
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.bulk import BulkJobs
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied
from dotmac.ticketing.service.logging import bind_request_context
from dotmac.ticketing.service.macros import MacroService
from dotmac.ticketing.service.notifications import NotificationStore
from dotmac.ticketing.service.satisfaction import SatisfactionByLink
from dotmac.ticketing.service.tenant_config import TenantSettingsService
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.service.triggers import TriggerService
from dotmac.ticketing.service.views import SavedViews
from dotmac.ticketing.service.webhooks import WebhookStore
from dotmac.ticketing.service.workflows import WorkflowService

DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# How long a list waits for the read model to reach ``min_position``.
DEFAULT_READ_WAIT_SECONDS = 5.0

# -- the caller ---------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A JWT with tenant_id and roles")


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of the bearer JWT, checked by the app's ``TokenVerifier``.

    A token verified lately is answered here; a new one is verified in a
    worker thread, since a JWKS verifier may fetch keys.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("an 'Authorization: Bearer <token>' header is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    token = credentials.credentials
    known = verifier.verified(token)
    if known is not None:
        return known
    try:
        return await anyio.to_thread.run_sync(verifier.verify, token)
    except AuthError as error:
        raise Unauthorized(str(error)) from None


User = Annotated[Principal, Depends(current_user)]


async def current_tenant(user: User) -> str:
    return user.tenant_id


async def current_caller(
    request: Request,
    tenant_id: Annotated[str, Depends(current_tenant)],
    # Whatever the caller dependency gave: a host's may give a mapping.
    user: Annotated[Any, Depends(current_user)],
) -> RequestContext:
    ctx = request_context(request, tenant_id, user)
    # Async, so the bindings reach every later line of this request.
    bind_request_context(
        tenant_id=ctx.tenant_id, ticket_id=request.path_params.get("ticket_id")
    )
    return ctx


Caller = Annotated[RequestContext, Depends(current_caller)]


def require_admin(user: User) -> Principal:
    if not user.has_any(Role.ADMIN):
        raise PermissionDenied("configuration is for admins only")
    return user


Admin = Annotated[Principal, Depends(require_admin)]


def admin_caller(request: Request, user: Admin) -> RequestContext:
    return request_context(request, user.tenant_id, user)


AdminCaller = Annotated[RequestContext, Depends(admin_caller)]


def request_context(request: Request, tenant_id: str, user: Any) -> RequestContext:
    """Build the use-case caller from whatever the caller dependencies gave."""
    request_id = getattr(request.state, "request_id", None) or request.headers.get(
        "x-request-id"
    )
    try:
        return RequestContext.for_user(tenant_id, user, correlation_id=request_id)
    except ValueError as error:
        raise Unauthorized(str(error)) from error


# -- the services ---------------------------------------------------------------
# Async: each only looks an object up, which needs no worker thread.


async def ticketing(request: Request) -> Ticketing:
    """The core the app serves (``create_app`` sets ``app.state.ticketing``)."""
    core: Ticketing = request.app.state.ticketing
    return core


Core = Annotated[Ticketing, Depends(ticketing)]


async def ticket_service(core: Core) -> TicketService:
    return core.tickets


Tickets = Annotated[TicketService, Depends(ticket_service)]


async def workflow_service(core: Core) -> WorkflowService:
    return core.workflows


Workflows = Annotated[WorkflowService, Depends(workflow_service)]


async def bulk_jobs(core: Core) -> BulkJobs:
    return core.bulk


Bulk = Annotated[BulkJobs, Depends(bulk_jobs)]


async def macro_service(core: Core) -> MacroService:
    return core.macros


Macros = Annotated[MacroService, Depends(macro_service)]


async def trigger_service(core: Core) -> TriggerService:
    return core.triggers


Triggers = Annotated[TriggerService, Depends(trigger_service)]


async def read_model(core: Core) -> ReadModel:
    return core.read_model


Projection = Annotated[ReadModel, Depends(read_model)]


async def settings_service(core: Core) -> TenantSettingsService:
    return core.settings_service


TenantSettings = Annotated[TenantSettingsService, Depends(settings_service)]


async def satisfaction(core: Core) -> SatisfactionByLink:
    return core.satisfaction


Ratings = Annotated[SatisfactionByLink, Depends(satisfaction)]


async def saved_views(core: Core) -> SavedViews:
    return core.views


Views = Annotated[SavedViews, Depends(saved_views)]


async def datastore(core: Core) -> Any:
    return core.app.datastore


Datastore = Annotated[Any, Depends(datastore)]


async def notification_store(request: Request) -> NotificationStore:
    store: NotificationStore = request.app.state.notification_store
    return store


Notifications = Annotated[NotificationStore, Depends(notification_store)]


async def webhook_store(request: Request) -> WebhookStore:
    store: WebhookStore = request.app.state.webhook_store
    return store


Webhooks = Annotated[WebhookStore, Depends(webhook_store)]


async def attachment_max_bytes(request: Request) -> int:
    limit: int = getattr(
        request.app.state, "attachment_max_bytes", DEFAULT_ATTACHMENT_MAX_BYTES
    )
    return limit


AttachmentLimit = Annotated[int, Depends(attachment_max_bytes)]


async def read_wait_seconds() -> float:
    return DEFAULT_READ_WAIT_SECONDS


ReadWait = Annotated[float, Depends(read_wait_seconds)]

# -- versions and other parameters ----------------------------------------------

IfMatch = Annotated[
    str | None,
    Header(
        description='The version you expect, from the ETag ("5"), or *',
        max_length=64,
        pattern=IF_MATCH_PATTERN,
    ),
]


async def expected_version(if_match: IfMatch = None) -> int | None:
    return parse_if_match(if_match)


ExpectedVersion = Annotated[int | None, Depends(expected_version)]

#: The header is named after the parameter: declare it as ``idempotency_key``.
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="Retrying with the same key returns the same ticket.",
    ),
]

#: ``?as_of=``: the per-ticket reads that can be rebuilt from the events
#: take it; the others refuse it as an unknown parameter (422).
AsOf = Annotated[
    str | None,
    Query(
        max_length=64,
        description="A version number or an RFC 3339 time: as it was then, "
        "rebuilt from the ticket's events.",
    ),
    WithJsonSchema(AS_OF_SCHEMA),
]
