"""What a host application embeds: the core, and its use cases as coroutines.

The original product's Quick Start is the contract here::

    ticket_manager = initialize_ticketing({"database_url": ..., "sla_config": ...})
    ticket_service = TicketService(ticket_manager)
    ticket = await ticket_service.create_customer_ticket(
        db=db_session, tenant_id=..., customer_id=..., **ticket_data.dict()
    )

The event store keeps its own PostgreSQL connections and transactions (one
save per command, retried on a version conflict), so the host's ``db``
session is accepted where the original took it and is not used: nothing
the host has open is committed or rolled back by a ticket command.

The use cases underneath are synchronous (the ``eventsourcing`` library has
no asyncio API); each coroutine here runs one in a worker thread, so a host's
event loop is never blocked by a save.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import UUID

from dotmac.ticketing.schemas import TicketRead
from dotmac.ticketing.service.api.presenters import ticket_read
from dotmac.ticketing.service.bootstrap import Ticketing as TicketManager
from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tickets import CommandResult
from dotmac.ticketing.service.tickets import TicketService as TicketUseCases

__all__ = ["TicketManager", "TicketService", "initialize_ticketing"]


class TicketService:
    """The ticket use cases of a :class:`TicketManager`, as coroutines.

    ``user`` is the caller as the host's auth knows it: a mapping or an
    object with ``sub`` (or ``id``) and ``roles`` (``agent``,
    ``supervisor``, ``admin``, ``service``, ``customer``). Each call answers
    the ticket as that caller may see it (a ``TicketRead``); refusals raise
    the service's errors (``TicketNotFound``, ``PermissionDenied``, a
    ``DomainError`` naming the state and the command).
    """

    def __init__(self, manager: TicketManager) -> None:
        self.manager = manager

    @property
    def use_cases(self) -> TicketUseCases:
        """The synchronous use cases (what ``create_ticket_router`` serves)."""
        return self.manager.tickets

    async def create_customer_ticket(
        self,
        db: object = None,
        *,
        tenant_id: str,
        customer_id: str,
        **fields: Any,
    ) -> TicketRead:
        """Open a ticket as the customer themself."""
        ctx = RequestContext(
            tenant_id=tenant_id, user_id=customer_id, roles=frozenset({"customer"})
        )
        return await self._run(ctx, self.use_cases.create_ticket, **fields)

    async def create_ticket(
        self, db: object = None, *, tenant_id: str, user: Any, **fields: Any
    ) -> TicketRead:
        """Open a ticket as staff (``customer_id`` or ``customer_email``)."""
        ctx = RequestContext.for_user(tenant_id, user)
        return await self._run(ctx, self.use_cases.create_ticket, **fields)

    async def get_ticket(
        self, db: object = None, *, tenant_id: str, user: Any, ticket_id: UUID
    ) -> TicketRead:
        ctx = RequestContext.for_user(tenant_id, user)

        def read() -> TicketRead:
            ticket = self.use_cases.get_ticket(ctx, ticket_id)
            return self._read(ctx, CommandResult(ticket, None))

        return await asyncio.to_thread(read)

    async def assign_ticket(
        self,
        db: object = None,
        *,
        tenant_id: str,
        user: Any,
        ticket_id: UUID,
        **change: Any,
    ) -> TicketRead:
        """``assignee_id`` and/or ``team``."""
        ctx = RequestContext.for_user(tenant_id, user)
        return await self._run(ctx, self.use_cases.assign, ticket_id, **change)

    async def add_comment(
        self,
        db: object = None,
        *,
        tenant_id: str,
        user: Any,
        ticket_id: UUID,
        **comment: Any,
    ) -> TicketRead:
        """``body``, ``internal`` and ``solution`` (both staff only)."""
        ctx = RequestContext.for_user(tenant_id, user)
        return await self._run(ctx, self.use_cases.add_comment, ticket_id, **comment)

    async def escalate_ticket(
        self,
        db: object = None,
        *,
        tenant_id: str,
        user: Any,
        ticket_id: UUID,
        **why: Any,
    ) -> TicketRead:
        """``reason`` and optionally the ``team`` that takes over."""
        ctx = RequestContext.for_user(tenant_id, user)
        return await self._run(ctx, self.use_cases.escalate, ticket_id, **why)

    async def resolve_ticket(
        self,
        db: object = None,
        *,
        tenant_id: str,
        user: Any,
        ticket_id: UUID,
        **how: Any,
    ) -> TicketRead:
        """``resolution`` and ``resolution_code``."""
        ctx = RequestContext.for_user(tenant_id, user)
        return await self._run(ctx, self.use_cases.resolve, ticket_id, **how)

    async def close_ticket(
        self, db: object = None, *, tenant_id: str, user: Any, ticket_id: UUID
    ) -> TicketRead:
        ctx = RequestContext.for_user(tenant_id, user)
        return await self._run(ctx, self.use_cases.close, ticket_id)

    async def _run(
        self,
        ctx: RequestContext,
        command: Callable[..., CommandResult],
        *args: Any,
        **kwargs: Any,
    ) -> TicketRead:
        return await asyncio.to_thread(
            lambda: self._read(ctx, command(ctx, *args, **kwargs))
        )

    def _read(self, ctx: RequestContext, result: CommandResult) -> TicketRead:
        # In the worker thread: the hidden tickets are loaded from the store.
        return ticket_read(
            result.ticket,
            now=self.use_cases.now(),
            bouncing=self.use_cases.customer_email_bouncing(result.ticket),
            position=result.position,
            staff=ctx.is_staff,
            hidden=self.use_cases.hidden_tickets(ctx, result.ticket),
        )
