"""Rating a ticket from a mail client: the use case behind the signed links.

The link's token stands in for the customer's login (its claims name the
tenant, the ticket and the customer, ``service/satisfaction_links.py``):
the rating is recorded by the same command as ``POST
/tickets/{id}/satisfaction``, as that customer, so it lands in the ticket's
history and the CSAT analytics like any other. Following the same link
again changes nothing; another rating from the same mail replaces the
first, as a second rating does over the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.satisfaction_links import (
    LinkRefused,
    SatisfactionClaims,
    verify,
)
from dotmac.ticketing.service.tickets import TicketService


@dataclass(frozen=True)
class RatedTicket:
    """What the page shows: which ticket, and the rating it has now."""

    number: int
    title: str
    rating: int | None
    comment: str


class SatisfactionByLink:
    """Reads and records ratings for holders of a signed link."""

    def __init__(
        self, tickets: TicketService, *, secret: bytes | None, clock: Clock
    ) -> None:
        self._tickets = tickets
        self._secret = secret
        self._clock = clock

    def claims(self, token: str) -> SatisfactionClaims:
        """The token's claims; :class:`LinkRefused` (or ``LinkExpired``)."""
        return verify(token, self._secret, self._clock())

    def show(self, token: str) -> RatedTicket:
        claims = self.claims(token)
        return _rated(self._tickets.get_ticket(_customer(claims), _ticket_id(claims)))

    def rate(self, token: str, rating: int, comment: str | None = None) -> RatedTicket:
        """Record ``rating`` (and ``comment``, when given) as the customer.

        The same rating again without a comment is not recorded twice (a
        second click, or a mail scanner following the link once more).
        Raises what ``TicketService.rate_satisfaction`` raises: the ticket
        must be resolved, the rating from 1 to 5.
        """
        claims = self.claims(token)
        ctx, ticket_id = _customer(claims), _ticket_id(claims)
        current = self._tickets.get_ticket(ctx, ticket_id)
        given = current.satisfaction or {}
        if comment is None and given.get("rating") == rating:
            return _rated(current)
        result = self._tickets.rate_satisfaction(
            ctx, ticket_id, rating=rating, comment=comment or ""
        )
        return _rated(result.ticket)


def _customer(claims: SatisfactionClaims) -> RequestContext:
    return RequestContext(
        tenant_id=claims.tenant_id,
        user_id=claims.customer_id,
        roles=frozenset({"customer"}),
    )


def _ticket_id(claims: SatisfactionClaims) -> UUID:
    try:
        return UUID(claims.ticket_id)
    except ValueError:
        raise LinkRefused("not a satisfaction link") from None


def _rated(ticket: Ticket) -> RatedTicket:
    given = ticket.satisfaction or {}
    return RatedTicket(
        number=ticket.number,
        title=ticket.title,
        rating=given.get("rating"),
        comment=str(given.get("comment") or ""),
    )
