"""Erasure and export of a customer's personal data (GDPR art. 17 and 15).

An erasure destroys the keys that seal the customer's personal data in
every event and snapshot of their tickets (``store.sealing``), records a
``SubjectErased`` event on each ticket (the projections blank their rows
on it, the relay publishes it so subscribers forget too), and clears what
other tables hold outside the event store: attachment bytes, in-app
notifications, deliveries and their payloads, inbound mail, bounces. The
address is kept only as a digest, so nothing is sent to it again. The
facts (states, times, SLA figures, teams) are untouched: dashboards and
analytics count the same after an erasure.

Every erasure and export is itself recorded (``domain.privacy_request``)
and listed, with who asked and what was done, never the data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg import Cursor
from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.personal_data import ERASED
from dotmac.ticketing.domain.privacy_request import PrivacyRequest
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.projections.read_model import ProjectionNotReady, ReadModel
from dotmac.ticketing.service.attachments import BlobStore
from dotmac.ticketing.service.clock import Clock
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import PermissionDenied, SubjectNotFound
from dotmac.ticketing.service.tickets import TicketService
from dotmac.ticketing.store.application import TicketApplication

#: The automation that records erasures on tickets (the request says who
#: asked).
PRIVACY_ACTOR = "privacy"


@dataclass(frozen=True)
class Subject:
    """A customer of a tenant: whose data an erasure or export is about."""

    tenant_id: str
    subject_id: str


@dataclass(frozen=True)
class SubjectData:
    """What an export streams: the subject's tickets and notifications."""

    tickets: Iterator[Ticket]
    in_app: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]


class PrivacyService:
    def __init__(
        self,
        app: TicketApplication,
        *,
        tickets: TicketService,
        read_model: ReadModel,
        blobs: BlobStore,
        clock: Clock,
    ) -> None:
        self._app = app
        self._tickets = tickets
        self._read_model = read_model
        self._blobs = blobs
        self._clock = clock

    # -- erasure -----------------------------------------------------------

    def erase_subject(self, ctx: RequestContext, subject_id: str) -> dict[str, Any]:
        """Erase everything personal about the customer; the receipt says what.

        Idempotent: asked again, it erases what was added since (a ticket
        opened after the first erasure) and otherwise nothing.
        """
        _require_admin(ctx)
        subject = Subject(ctx.tenant_id, subject_id)
        ticket_ids = self._tickets_of(subject)
        if not ticket_ids and not self._requests_about(subject):
            raise SubjectNotFound(subject_id)
        return self._erase(
            subject,
            ticket_ids,
            reason="request",
            requested_by=ctx.provenance().actor.as_dict(),
            destroy=lambda: self._app.keys.destroy(
                subject.tenant_id, subject_id=subject.subject_id
            ),
        )

    def erase_ticket(
        self, tenant_id: str, ticket_id: UUID, *, reason: str = "retention"
    ) -> dict[str, Any] | None:
        """Erase the personal data of one ticket (a retention period ended);
        None if there is no such ticket of the tenant."""
        ticket = self._tickets.find(ticket_id)
        if ticket is None or ticket.tenant_id != tenant_id:
            return None
        return self._erase(
            Subject(tenant_id, ticket.customer_id),
            [ticket_id],
            reason=reason,
            requested_by={
                "id": "retention",
                "role": "automation",
                "kind": "automation",
            },
            destroy=lambda: self._app.keys.destroy(tenant_id, ticket_id=ticket_id),
            ticket_id=ticket_id,
        )

    def _erase(
        self,
        subject: Subject,
        ticket_ids: Sequence[UUID],
        *,
        reason: str,
        requested_by: dict[str, str],
        destroy: Any,
        ticket_id: UUID | None = None,
    ) -> dict[str, Any]:
        request_id = uuid4()
        # What the keys still open, read before they go: the addresses to
        # suppress and the files to delete.
        tickets = [t for t in map(self._tickets.find, ticket_ids) if t is not None]
        addresses = sorted(
            {a for t in tickets if (a := _address(t.customer_email)) is not None}
        )
        files = [(t.tenant_id, a["id"]) for t in tickets for a in t.attachments]
        destroyed = destroy()
        hit = {k.ticket_id for k in destroyed}
        erased_now = [
            t.id for t in tickets if t.id in hit or t.personal_data_erased_at is None
        ]
        position = self._record_on_tickets(subject, erased_now, request_id, reason)
        for tenant_id, attachment_id in files:
            self._blobs.delete(tenant_id=tenant_id, attachment_id=attachment_id)
        with self._app.transaction() as cur:
            scrubbed = scrub_tables(cur, subject.tenant_id, list(ticket_ids), addresses)
        receipt = {
            "request_id": str(request_id),
            "subject_id": subject.subject_id,
            "reason": reason,
            "erased_at": self._clock().isoformat(),
            "tickets": [str(t) for t in erased_now],
            "keys_destroyed": len(destroyed),
            "attachments_deleted": len(files),
            "addresses_suppressed": len(addresses),
            "rows_scrubbed": scrubbed,
            "already_erased": not erased_now and not destroyed,
            "position": position,
        }
        self._record_request(
            request_id,
            subject,
            kind="erasure",
            reason=reason,
            requested_by=requested_by,
            receipt=receipt,
            ticket_id=ticket_id,
        )
        return receipt

    def _record_on_tickets(
        self,
        subject: Subject,
        ticket_ids: Iterable[UUID],
        request_id: UUID,
        reason: str,
    ) -> int | None:
        ctx = RequestContext(
            tenant_id=subject.tenant_id,
            user_id=PRIVACY_ACTOR,
            roles=frozenset({"service"}),
            correlation_id=str(request_id),
            automation=PRIVACY_ACTOR,
        )
        position = None
        for ticket_id in ticket_ids:
            result = self._tickets.execute(
                ctx,
                ticket_id,
                lambda t: t.record_erasure(
                    provenance=ctx.provenance(),
                    at=self._clock(),
                    request_id=str(request_id),
                    reason=reason,
                ),
            )
            position = result.position or position
        return position

    # -- export --------------------------------------------------------------

    def export_subject(self, ctx: RequestContext, subject_id: str) -> SubjectData:
        """Everything held about the customer, to stream (the request is
        recorded first)."""
        _require_admin(ctx)
        subject = Subject(ctx.tenant_id, subject_id)
        ticket_ids = self._tickets_of(subject)
        if not ticket_ids and not self._requests_about(subject):
            raise SubjectNotFound(subject_id)
        self._record_request(
            uuid4(),
            subject,
            kind="export",
            reason="request",
            requested_by=ctx.provenance().actor.as_dict(),
            receipt={"tickets": len(ticket_ids)},
        )
        with self._app.transaction() as cur:
            cur.execute(
                "SELECT id, ticket_id, event_type, title, body, created_at, read_at"
                " FROM inapp_notifications WHERE tenant_id = %s AND user_id = %s"
                " ORDER BY created_at, id",
                (subject.tenant_id, subject.subject_id),
            )
            in_app = list(cur.fetchall())
            cur.execute(
                "SELECT event_id, event_type, ticket_id, channel, recipient, status,"
                " created_at, sent_at FROM notification_deliveries"
                " WHERE tenant_id = %s AND ticket_id = ANY(%s)"
                " AND channel IN ('email', 'sms', 'in_app')"
                " ORDER BY created_at, delivery_key",
                (subject.tenant_id, list(ticket_ids)),
            )
            deliveries = list(cur.fetchall())
        found = (self._tickets.find(t) for t in ticket_ids)
        return SubjectData(
            tickets=(t for t in found if t is not None),
            in_app=in_app,
            deliveries=deliveries,
        )

    # -- the record of requests ---------------------------------------------

    def requests(
        self, ctx: RequestContext, *, limit: int = 100, before: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The tenant's erasures and exports, newest first."""
        _require_admin(ctx)
        with self._app.transaction() as cur:
            cur.execute(
                "SELECT request_id, kind, subject_id, ticket_id, reason,"
                " requested_by, requested_at, receipt FROM privacy_requests"
                " WHERE tenant_id = %s"
                " AND (%s::timestamptz IS NULL OR requested_at < %s)"
                " ORDER BY requested_at DESC, request_id LIMIT %s",
                (ctx.tenant_id, before, before, limit),
            )
            return list(cur.fetchall())

    def _record_request(
        self,
        request_id: UUID,
        subject: Subject,
        *,
        kind: str,
        reason: str,
        requested_by: dict[str, str],
        receipt: dict[str, Any],
        ticket_id: UUID | None = None,
    ) -> None:
        request = PrivacyRequest.record(
            request_id,
            tenant_id=subject.tenant_id,
            kind=kind,
            subject_id=subject.subject_id,
            ticket_id=None if ticket_id is None else str(ticket_id),
            reason=reason,
            requested_by=requested_by,
            receipt=receipt,
        )
        self._app.save(request)
        with self._app.transaction() as cur:
            cur.execute(
                "INSERT INTO privacy_requests (request_id, tenant_id, kind, subject_id,"
                " ticket_id, reason, requested_by, requested_at, receipt)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (request_id) DO NOTHING",
                (
                    request_id,
                    subject.tenant_id,
                    kind,
                    subject.subject_id,
                    ticket_id,
                    reason,
                    Jsonb(requested_by),
                    request.created_on,
                    Jsonb(receipt),
                ),
            )

    def _requests_about(self, subject: Subject) -> bool:
        with self._app.transaction() as cur:
            cur.execute(
                "SELECT 1 FROM privacy_requests"
                " WHERE tenant_id = %s AND subject_id = %s"
                " LIMIT 1",
                (subject.tenant_id, subject.subject_id),
            )
            return cur.fetchone() is not None

    def _tickets_of(self, subject: Subject) -> list[UUID]:
        """The customer's tickets: those with keys (exact, as saved), and
        those the read model knows (tickets stored before sealing)."""
        ids = set(self._app.keys.tickets_of(subject.tenant_id, subject.subject_id))
        try:
            rows = self._read_model.run(
                "SELECT ticket_id FROM tickets"
                " WHERE tenant_id = %s AND customer_id = %s",
                (subject.tenant_id, subject.subject_id),
            )
        except ProjectionNotReady:
            rows = []
        ids.update(r["ticket_id"] for r in rows)
        return sorted(ids)


def scrub_tables(
    cur: Cursor[Any], tenant_id: str, ticket_ids: list[UUID], addresses: list[str]
) -> dict[str, int]:
    """Clear the subject's data from the tables outside the event store, in
    the caller's transaction; how many rows each table had to change."""
    counts: dict[str, int] = {}
    for table, statement, params in scrub_statements(tenant_id, ticket_ids, addresses):
        cur.execute(statement, params)
        if table:
            counts[table] = cur.rowcount
    return counts


def scrub_statements(
    tenant_id: str, ticket_ids: list[UUID], addresses: list[str]
) -> list[tuple[str | None, str, dict[str, Any]]]:
    """The statements that clear the subject's data outside the event store
    (table counted, SQL, parameters); the notifier runs them too when it
    meets the erasure, for rows it wrote from events it had not yet read.

    Deliveries keep their row (what was sent when counts), with the address
    and the payload gone and their key rewritten (it held the address); a
    pending one is not sent. In-app notifications keep their row, blank.
    """
    params = {
        "tenant": tenant_id,
        "tickets": ticket_ids,
        "addresses": addresses,
        "digests": [address_digest(a) for a in addresses],
        "erased": ERASED,
    }
    hit = (
        " tenant_id = %(tenant)s AND (ticket_id = ANY(%(tickets)s)"
        " OR lower(recipient) = ANY(%(addresses)s)) AND NOT payload ? 'erased'"
    )
    statements: list[tuple[str | None, str]] = [
        (
            "notifier_tickets",
            "UPDATE notifier_tickets SET title = %(erased)s, customer_email = NULL,"
            " customer_name = NULL"
            " WHERE tenant_id = %(tenant)s AND ticket_id = ANY(%(tickets)s)",
        ),
        (
            "in_app_notifications",
            "UPDATE inapp_notifications SET title = %(erased)s, body = %(erased)s"
            " WHERE tenant_id = %(tenant)s AND ticket_id = ANY(%(tickets)s)"
            " AND body <> %(erased)s",
        ),
        # Digests name the delivery they were merged into: follow the new keys.
        (
            None,
            "UPDATE notification_deliveries"
            f" SET merged_into = {_ERASED_KEY.format('merged_into')}"
            " WHERE merged_into IN (SELECT delivery_key FROM notification_deliveries"
            f" WHERE {hit})",
        ),
        (
            "deliveries",
            "UPDATE notification_deliveries SET"
            f" delivery_key = {_ERASED_KEY.format('delivery_key')},"
            " payload = jsonb_build_object('erased', true, 'webhook_id',"
            " payload->'webhook_id'),"
            " recipient = CASE WHEN channel IN ('email', 'sms') THEN %(erased)s"
            " ELSE recipient END,"
            " last_error = CASE WHEN last_error IS NULL THEN NULL"
            " ELSE %(erased)s END,"
            " merge_key = NULL,"
            " status = CASE status WHEN 'pending' THEN 'failed' ELSE status END"
            f" WHERE {hit}",
        ),
        (
            "inbound_messages",
            "UPDATE inbound_messages SET sender = NULL, subject = NULL, raw = NULL,"
            " outcome = CASE WHEN outcome IN ('held', 'dead-letter') THEN 'ignored'"
            " ELSE outcome END,"
            " reason = CASE WHEN outcome IN ('held', 'dead-letter')"
            " THEN 'subject erased' ELSE reason END"
            " WHERE tenant_id = %(tenant)s AND (ticket_id = ANY(%(tickets)s)"
            " OR lower(sender) = ANY(%(addresses)s))"
            " AND (sender IS NOT NULL OR subject IS NOT NULL OR raw IS NOT NULL)",
        ),
        (
            "mail_bounces",
            "DELETE FROM mail_bounces WHERE tenant_id = %(tenant)s"
            " AND (ticket_id = ANY(%(tickets)s)"
            " OR lower(address) = ANY(%(addresses)s))",
        ),
        (
            None,
            "INSERT INTO privacy_suppressed_addresses (tenant_id, address_sha256)"
            " SELECT %(tenant)s, unnest(%(digests)s::text[]) ON CONFLICT DO NOTHING",
        ),
    ]
    return [(table, statement, params) for table, statement in statements]


#: A delivery key without its recipient: '<event id>|<channel>|erased:<md5>'.
_ERASED_KEY = (
    "(split_part({0}, '|', 1) || '|' || split_part({0}, '|', 2)"
    " || '|erased:' || md5({0}))"
)


def address_digest(address: str) -> str:
    """How a suppressed address is kept: never the address itself."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def _address(value: str | None) -> str | None:
    """The address, compared as mail servers do; None if there is none."""
    if not value or value == ERASED or "@" not in value:
        return None
    return value.strip().lower()


def _require_admin(ctx: RequestContext) -> None:
    if not ctx.has_role("admin"):
        raise PermissionDenied("privacy requests need an admin")
