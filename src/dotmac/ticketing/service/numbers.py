"""Per-tenant human ticket numbers (#1, #2, ...)."""

from dotmac.ticketing.store.application import TicketApplication

# One round trip: the statements of the transaction are pipelined.
_NEXT_NUMBER = (
    "INSERT INTO ticket_numbers (tenant_id, last_number) VALUES (%s, 1)"
    " ON CONFLICT (tenant_id) DO UPDATE"
    " SET last_number = ticket_numbers.last_number + 1"
    " RETURNING last_number"
)


class TicketNumbers:
    """Hands out the next number of a tenant.

    A short transaction of its own before the ticket is saved: a create
    that then fails leaves a gap in the numbers, never a duplicate, and the
    row lock is held only for the increment, so creates of one tenant do
    not wait on each other's event-store writes.

    It does not wait for the disk (``synchronous_commit = off``): every
    create of a tenant passes through this row, and a flush per number
    would make the disk's latency the tenant's create rate. Nothing is
    risked: the ticket's own commit comes later in the write-ahead log and
    flushes the increment with it, so after a crash only numbers of
    tickets that were never saved (and never acknowledged) can return.
    """

    def __init__(self, app: TicketApplication) -> None:
        self._app = app

    def next(self, tenant_id: str) -> int:
        with self._app.datastore.get_connection() as conn:
            with conn.pipeline(), conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                cursor = conn.execute(_NEXT_NUMBER, (tenant_id,), prepare=True)
            # Read once the pipeline has sent the commit too.
            row = cursor.fetchone()
        assert row is not None
        return int(row["last_number"])
