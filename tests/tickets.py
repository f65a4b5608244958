"""A ticket built straight from the aggregate, for tests of the store."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from dotmac.ticketing.domain.provenance import Actor, Provenance
from dotmac.ticketing.domain.ticket import Ticket


def new_ticket(number: int, at: datetime, *, tenant: str) -> Ticket:
    """Ticket ``number`` of ``tenant``, opened by its customer at ``at``."""
    return Ticket.create(
        ticket_id=uuid4(),
        number=number,
        title=f"Ticket {number}",
        description="",
        category="general",
        priority="normal",
        channel="api",
        customer_id="customer-1",
        customer_email=None,
        tags=[],
        custom_fields={},
        provenance=Provenance(tenant, Actor("customer-1", "customer")),
        at=at,
    )
