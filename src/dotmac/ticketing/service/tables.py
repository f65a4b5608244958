"""Tables the write side keeps beside the event store.

None is a source of truth for ticket state: numbers are handed out once
and attachment bytes are content that events only point at.
"""

from dotmac.ticketing.service.application import TicketApplication
from dotmac.ticketing.service.worker_status import WORKER_STATUS_DDL

SERVICE_DDL = """
CREATE TABLE IF NOT EXISTS ticket_numbers (
    tenant_id   text PRIMARY KEY,
    last_number bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS attachment_blobs (
    tenant_id     text NOT NULL,
    attachment_id text NOT NULL,
    ticket_id     uuid NOT NULL,
    sha256        text NOT NULL,
    content       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, attachment_id)
);
-- Auto-assignment's round-robin turn per team, and the log position of the
-- team's last assignment (see service.assignment).
CREATE TABLE IF NOT EXISTS assignment_turns (
    tenant_id     text   NOT NULL,
    team          text   NOT NULL,
    turn          bigint NOT NULL DEFAULT 0,
    last_position bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, team)
);
"""


def create_service_tables(app: TicketApplication) -> None:
    with app.transaction() as cursor:
        # Concurrent start-ups of several replicas must not race on DDL.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ticketing-ddl'))")
        cursor.execute(SERVICE_DDL)
        # Written by the workers, read by the API's readiness check.
        cursor.execute(WORKER_STATUS_DDL)
