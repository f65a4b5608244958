"""Which customer an e-mail address stands for, within a tenant.

One named use: :meth:`CustomerDirectory.customer_for_email`. Staff opening
a ticket with only ``customer_email`` go through it, and so will anything
else that knows a customer by address only (inbound e-mail).
"""

from __future__ import annotations

from collections.abc import Callable

from dotmac.ticketing.domain.customers import derived_customer_id, normalize_email
from dotmac.ticketing.projections.customers import customer_id_with_email
from dotmac.ticketing.projections.read_model import ProjectionNotReady, ReadModel


class CustomerDirectory:
    """Customers as the tickets read model knows them, by address.

    ``head_position`` is the event log's last position: a lookup first
    waits (at most ``wait_seconds``) until the read model has applied it,
    so a ticket created a moment ago for the same address is seen and its
    customer reused rather than a second id made up for the same person.
    Without a read model (a bare ``TicketService``) only derived ids are
    known.
    """

    def __init__(
        self,
        read_model: ReadModel | None = None,
        head_position: Callable[[], int] = lambda: 0,
        *,
        wait_seconds: float = 5.0,
    ) -> None:
        self._read_model = read_model
        self._head_position = head_position
        self._wait = wait_seconds

    def customer_for_email(self, tenant_id: str, address: str) -> str:
        """The id of the tenant's customer with this address.

        The customer of the tenant's first ticket that carries the address
        (compared case-insensitively), else the stable id derived from the
        normalised address (``domain.customers.derived_customer_id``), which
        the next ticket for that address then finds. Raises
        ``InvalidCommand`` for something that is not an address and
        ``ProjectionNotReady`` (answered 503, retry) while the read model is
        not built or not caught up: a guess could split one customer in two.
        """
        normalised = normalize_email(address)
        known = self._known_customer(tenant_id, normalised)
        return known or derived_customer_id(tenant_id, normalised)

    def _known_customer(self, tenant_id: str, normalised: str) -> str | None:
        if self._read_model is None:
            return None
        self._read_model.active()  # not built yet: ProjectionNotReady at once
        position = self._head_position()
        if position and not self._read_model.wait_for(position, self._wait):
            raise ProjectionNotReady(
                "the tickets read model is behind; customers cannot be looked"
                " up by e-mail right now"
            )
        return customer_id_with_email(self._read_model, tenant_id, normalised)
