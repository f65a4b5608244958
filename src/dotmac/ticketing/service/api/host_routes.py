"""The ticket routes for a host application's own FastAPI app.

The same routes as the service's app (``ticket_routes``, ``query_routes``,
``workflow_routes``), with the host's dependencies and the given services
in place of ``deps``' (``binding.bind``): the host's caller dependencies
are part of every route, as if written there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.service.api import (
    deps,
    query_routes,
    ticket_routes,
    workflow_routes,
)
from dotmac.ticketing.service.api.binding import bind
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.service.workflows import WorkflowService


def create_ticket_router(
    ticket_service: TicketService,
    *,
    get_current_tenant: Callable[..., Any],
    get_current_user: Callable[..., Any],
    attachment_max_bytes: int = deps.DEFAULT_ATTACHMENT_MAX_BYTES,
    read_model: ReadModel | None = None,
    read_wait_seconds: float = deps.DEFAULT_READ_WAIT_SECONDS,
    workflow_service: WorkflowService | None = None,
) -> APIRouter:
    """The ``/tickets`` routes, bound to a service and to caller dependencies.

    ``get_current_tenant`` returns the caller's tenant id; ``get_current_user``
    returns the caller: an object or mapping with ``sub`` (or ``id``) and
    ``roles``. Both are FastAPI dependencies of the host's choosing. With a
    ``read_model``, ``GET /tickets/`` lists and searches the projection;
    with a ``workflow_service``, ``/tickets/{id}/workflow`` shows and drives
    the ticket's workflow.
    """
    overrides: dict[Callable[..., Any], Callable[..., Any]] = {
        deps.current_tenant: get_current_tenant,
        deps.current_user: get_current_user,
        deps.ticket_service: _giving(ticket_service),
        deps.attachment_max_bytes: _giving(attachment_max_bytes),
        deps.read_wait_seconds: _giving(read_wait_seconds),
    }
    routers = []
    if read_model is not None:
        overrides[deps.read_model] = _giving(read_model)
        routers.append(query_routes.router)
    if workflow_service is not None:
        overrides[deps.workflow_service] = _giving(workflow_service)
        routers.append(workflow_routes.router)
    routers.append(ticket_routes.router)
    return bind(routers, overrides)


def _giving(value: Any) -> Callable[[], Any]:
    async def provide() -> Any:
        return value

    return provide
