"""When an agent will reply to a new ticket: read from the event store.

The notifier's acknowledgment of a new ticket states the time an agent
will reply by. That is the due time of the ticket's first-response clock,
which starts in the same save as ``TicketCreated`` but in an event after
it (``SLAStarted``): so the notifier, handling ``TicketCreated``, reads the
ticket from the event store, where the whole save is already visible.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from dotmac.ticketing.domain.acknowledgment import reply_promise
from dotmac.ticketing.domain.sla import FIRST_RESPONSE
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.store.application import TicketApplication


class EventStoreReplyPromises:
    """The promised reply time of a ticket, from its stored events."""

    def __init__(self, app: TicketApplication) -> None:
        self._app = app

    async def reply_by(self, ticket_id: str, at: datetime) -> datetime | None:
        """The time an agent will reply by, as of ``at``; None if none is due."""
        return await asyncio.to_thread(self._reply_by, ticket_id, at)

    def _reply_by(self, ticket_id: str, at: datetime) -> datetime | None:
        try:
            ticket: object = self._app.repository.get(UUID(ticket_id))
        except AggregateNotFoundError:
            return None
        if not isinstance(ticket, Ticket):
            return None
        return reply_promise(
            ticket.sla_report(at).get(FIRST_RESPONSE), ticket.first_response_at
        )
