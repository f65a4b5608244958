"""Per-tenant human ticket numbers (#1, #2, ...)."""

from dotmac.ticketing.store.application import TicketApplication


class TicketNumbers:
    """Hands out the next number of a tenant.

    Runs in its own short transaction before the ticket is saved: a create
    that then fails leaves a gap in the numbers, never a duplicate. The row
    lock is held only for the increment, so creates of one tenant do not
    wait on each other's event-store writes.
    """

    def __init__(self, app: TicketApplication) -> None:
        self._app = app

    def next(self, tenant_id: str) -> int:
        with self._app.transaction() as cursor:
            cursor.execute(
                "INSERT INTO ticket_numbers (tenant_id, last_number) VALUES (%s, 1)"
                " ON CONFLICT (tenant_id) DO UPDATE"
                " SET last_number = ticket_numbers.last_number + 1"
                " RETURNING last_number",
                (tenant_id,),
            )
            row = cursor.fetchone()
        assert row is not None
        return int(row["last_number"])
