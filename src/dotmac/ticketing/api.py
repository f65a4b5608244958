"""The HTTP routes for a host's FastAPI app (``dotmac.ticketing.api``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from dotmac.ticketing.embedding import TicketManager, TicketService
from dotmac.ticketing.service.api.host_routes import (
    create_ticket_router as _create_ticket_router,
)
from dotmac.ticketing.service.api.problems import install_problem_handlers
from dotmac.ticketing.service.tickets import TicketService as TicketUseCases

__all__ = ["create_ticket_router", "install_problem_handlers"]


def create_ticket_router(
    ticket_service: TicketService | TicketManager | TicketUseCases,
    *,
    get_current_tenant: Callable[..., Any],
    get_current_user: Callable[..., Any],
    get_db: Callable[..., Any] | None = None,
    **options: Any,
) -> APIRouter:
    """The ``/tickets`` routes behind the host's own auth dependencies.

    ``get_current_tenant`` returns the caller's tenant id and
    ``get_current_user`` the caller (``sub`` or ``id``, and ``roles``).
    Given the ``TicketService`` (or the ``TicketManager``) of
    ``initialize_ticketing``, the router also lists and searches the read
    model and serves the tickets' workflows. ``get_db`` is accepted as the
    original product's router took it; the event store keeps its own
    connections, so it is not called. Further ``options`` are those of
    ``dotmac.ticketing.service.api.host_routes.create_ticket_router``.
    """
    del get_db  # see the docstring: the service opens its own transactions
    manager = (
        ticket_service.manager
        if isinstance(ticket_service, TicketService)
        else ticket_service
    )
    if isinstance(manager, TicketManager):
        options.setdefault("read_model", manager.read_model)
        options.setdefault("workflow_service", manager.workflows)
        options.setdefault(
            "attachment_max_bytes", manager.settings.attachment_max_bytes
        )
        use_cases = manager.tickets
    else:
        use_cases = manager
    return _create_ticket_router(
        use_cases,
        get_current_tenant=get_current_tenant,
        get_current_user=get_current_user,
        **options,
    )
