"""What every ticket command route does: run one use case as the caller and
answer the ticket, with its version as the ``ETag``.

A command route declares ``Command`` (or ``VersionedCommand``, which also
takes ``If-Match``) and is one call::

    def close(ticket_id: UUID, command: VersionedCommand) -> TicketRead:
        return command.run(command.tickets.close, ticket_id)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Concatenate, ParamSpec
from uuid import UUID

from fastapi import Depends, Response

from dotmac.ticketing.schemas import TicketRead
from dotmac.ticketing.service.api.deps import Caller, ExpectedVersion, Tickets
from dotmac.ticketing.service.api.presenters import ticket_read
from dotmac.ticketing.service.api.versions import etag
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tickets import CommandResult, TicketService

P = ParamSpec("P")


@dataclass(frozen=True)
class TicketCommand:
    """The caller, the use cases and the response of one command request."""

    ctx: RequestContext
    tickets: TicketService
    response: Response
    # If-Match's version, passed on by ``run`` when the route honours it.
    versioned: bool = False
    expected_version: int | None = None

    def run(
        self,
        use_case: Callable[Concatenate[RequestContext, UUID, P], CommandResult],
        ticket_id: UUID,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> TicketRead:
        """``use_case(ctx, ticket_id, *args, **kwargs)``, answered.

        Typed so that the route's arguments are checked against the use
        case's; ``expected_version`` is added here, hence the untyped call.
        """
        call: Callable[..., CommandResult] = use_case
        version: dict[str, Any] = (
            {"expected_version": self.expected_version} if self.versioned else {}
        )
        return self.answer(call(self.ctx, ticket_id, *args, **kwargs, **version))

    def answer(self, result: CommandResult) -> TicketRead:
        """The ticket as the caller sees it, its version as the ``ETag``."""
        self.response.headers["ETag"] = etag(result.ticket.version)
        return ticket_read(
            result.ticket,
            now=self.tickets.now(),
            bouncing=self.tickets.customer_email_bouncing(result.ticket),
            position=result.position,
            staff=self.ctx.is_staff,
            hidden=self.tickets.hidden_tickets(self.ctx, result.ticket),
        )


async def ticket_command(
    ctx: Caller, tickets: Tickets, response: Response
) -> TicketCommand:
    return TicketCommand(ctx, tickets, response)


Command = Annotated[TicketCommand, Depends(ticket_command)]


async def versioned_ticket_command(
    # First: a host's document lists If-Match before its own headers.
    expected_version: ExpectedVersion,
    command: Command,
) -> TicketCommand:
    return replace(command, versioned=True, expected_version=expected_version)


VersionedCommand = Annotated[TicketCommand, Depends(versioned_ticket_command)]
