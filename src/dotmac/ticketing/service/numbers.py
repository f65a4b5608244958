"""Per-tenant human ticket numbers (#1, #2, ...)."""

from psycopg import sql

from dotmac.ticketing.store.application import TicketApplication

# The whole transaction in one simple query, so one round trip: psycopg's
# pipeline mode would do the same at four times the CPU. Hence the tenant
# id as a quoted literal rather than a parameter.
_NEXT_NUMBER = sql.SQL(
    "BEGIN; SET LOCAL synchronous_commit = off;"
    " INSERT INTO ticket_numbers (tenant_id, last_number) VALUES ({tenant}, 1)"
    " ON CONFLICT (tenant_id) DO UPDATE"
    " SET last_number = ticket_numbers.last_number + 1"
    " RETURNING last_number; COMMIT"
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
        query = _NEXT_NUMBER.format(tenant=sql.Literal(tenant_id))
        with self._app.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(query)
            # BEGIN and SET have no rows; the INSERT's result is the third.
            cursor.nextset()
            cursor.nextset()
            row = cursor.fetchone()
        assert row is not None
        return int(row["last_number"])
