"""Customers as the tickets read model knows them."""

from __future__ import annotations

from dotmac.ticketing.projections.read_model import ReadModel


def customer_id_with_email(
    read_model: ReadModel, tenant_id: str, address: str
) -> str | None:
    """The customer of the tenant's first ticket with this address, if any.

    ``address`` is normalised (``domain.customers.normalize_email``); the
    stored addresses are compared lower-cased. The first ticket decides,
    so the answer never changes as tickets with the address come and go
    (two customers given one address keep the one that had it first).
    """
    rows = read_model.run(
        "SELECT customer_id FROM tickets"
        " WHERE tenant_id = %s AND customer_email IS NOT NULL"
        " AND lower(customer_email) = lower(%s)"
        " ORDER BY created_at, number LIMIT 1",
        (tenant_id, address),
    )
    return str(rows[0]["customer_id"]) if rows else None
