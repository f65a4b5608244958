"""The tickets projection: ticket events in, list and analytics rows out.

Built on ``eventsourcing.projection``: the library's subscription feeds
events in log order, and :class:`TicketsView` writes each event's rows and
its tracking position in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg import Cursor, sql
from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.enums import TicketPriority, TicketStatus
from dotmac.ticketing.domain.provenance import AGENT_ROLES
from dotmac.ticketing.domain.sla import FIRST_RESPONSE, NEXT_REPLY, RESOLUTION
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.domain.workload import WORKLOAD_EVENTS
from dotmac.ticketing.projections import sla_rows
from dotmac.ticketing.projections import ticket_rows as rows
from dotmac.ticketing.projections.tables import tickets_ddl
from dotmac.ticketing.store import workload

Apply = Callable[[Cursor[Any]], None]


class TicketsView(PostgresTrackingRecorder):
    """The read tables of one build, and its tracking row, in one schema.

    After each event that can move a ticket's workload row (its assignee,
    team or status: ``WORKLOAD_EVENTS``) it also repairs that row
    (``store.workload``) if the row is behind the read row: the save path
    writes those rows, except for tickets saved by an older release while a
    deploy rolls. In a batch the repair runs once the batch has committed,
    in a statement of its own, so the rows it locks are held for that
    statement only, never for a whole batch that saves would wait on.
    """

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(tickets_ddl(self.datastore.schema))

    _batch: Cursor[Any] | None = None
    _batch_tracking: Tracking | None = None
    _batch_tickets: set[UUID] | None = None

    def apply(self, event: Any, tracking: Tracking, change: Apply) -> None:
        """Apply one event's change and record its position, atomically."""
        ticket_id = event.originator_id if isinstance(event, WORKLOAD_EVENTS) else None
        if self._batch is not None:
            change(self._batch)
            self._batch_tracking = tracking
            if ticket_id is not None and self._batch_tickets is not None:
                self._batch_tickets.add(ticket_id)
            return
        with self._transaction() as cur:
            change(cur)
            self._insert_tracking(cur, tracking)
            if ticket_id is not None:
                workload.repair_from_read_rows(cur, [ticket_id])

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply many events in one transaction, recording the last position."""
        tickets: set[UUID] = set()
        with self._transaction() as cur:
            self._batch, self._batch_tracking = cur, None
            self._batch_tickets = tickets
            try:
                # Pipeline mode: the batch's statements go out without
                # waiting for each answer (measured: 1,190 → 2,380 events/s
                # on the 2-core development machine).
                with cur.connection.pipeline():
                    yield
                if self._batch_tracking is not None:
                    self._insert_tracking(cur, self._batch_tracking)
            finally:
                self._batch = self._batch_tickets = None
        if tickets:
            with self._transaction() as cur:
                workload.repair_from_read_rows(cur, list(tickets))

    @contextmanager
    def _transaction(self) -> Iterator[Cursor[Any]]:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(
                sql.SQL("SET LOCAL search_path TO {}").format(
                    sql.Identifier(self.datastore.schema)
                )
            )
            yield cur


class TicketsProjection(Projection[TicketsView]):
    name = "tickets"

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        # Events this version does not know (written by newer code, or of
        # another aggregate) are skipped, but still tracked, so waiting for
        # a position never stalls on them.
        self.view.apply(event, tracking, lambda cur: None)

    @process_event.register
    def _(self, event: Ticket.TicketCreated, tracking: Tracking) -> None:
        self.view.apply(
            event,
            tracking,
            lambda cur: rows.insert_ticket(cur, event, tracking.notification_id),
        )

    @process_event.register
    def _(self, event: Ticket.TicketUpdated, tracking: Tracking) -> None:
        changes = {
            column: Jsonb(value) if column == "custom_fields" else value
            for column, value in event.changes.items()
        }
        self._update(event, tracking, changes)

    @process_event.register
    def _(self, event: Ticket.TicketCategorized, tracking: Tracking) -> None:
        self._update(event, tracking, {"category": event.category})

    @process_event.register
    def _(self, event: Ticket.PriorityChanged, tracking: Tracking) -> None:
        rank = TicketPriority(event.priority).rank
        self._update(
            event, tracking, {"priority": event.priority, "priority_rank": rank}
        )

    @process_event.register
    def _(self, event: Ticket.TicketAssigned, tracking: Tracking) -> None:
        self._update(
            event,
            tracking,
            {
                "assignee_id": event.assignee_id,
                "assigned_team": event.team,
                "status": event.status,
            },
        )

    @process_event.register
    def _(self, event: Ticket.TicketUnassigned, tracking: Tracking) -> None:
        self._update(event, tracking, {"assignee_id": None})

    @process_event.register
    def _(self, event: Ticket.StatusChanged, tracking: Tracking) -> None:
        self._update(event, tracking, {"status": event.status})

    @process_event.register
    def _(self, event: Ticket.CommentAdded, tracking: Tracking) -> None:
        position = tracking.notification_id

        def change(cur: Cursor[Any]) -> None:
            if event.internal:
                rows.add_internal_note(cur, event, position)
            else:
                rows.add_public_comment(cur, event, position)
            if event.is_first_response:
                rows.update_ticket(
                    cur, event, position, {"first_response_at": event.timestamp}
                )
            if not event.internal and _by_agent(event):
                # A public agent reply answers the first response and the
                # next reply owed (the domain stops those clocks next).
                sla_rows.reach_goal(cur, event, (FIRST_RESPONSE, NEXT_REPLY))

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.AttachmentAdded, tracking: Tracking) -> None:
        self._update(event, tracking, increments=("attachment_count",))

    @process_event.register
    def _(self, event: Ticket.TicketEscalated, tracking: Tracking) -> None:
        changes = {
            "escalation_level": event.level,
            "assigned_team": event.team,
            "assignee_id": event.assignee_id,
        }

        def change(cur: Cursor[Any]) -> None:
            rows.update_ticket(cur, event, tracking.notification_id, changes)
            rows.record_escalation(cur, event)

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.EscalationRequested, tracking: Tracking) -> None:
        changes = {
            "escalation_pending_level": event.level,
            "escalation_pending_team": event.team,
            "escalation_requested_at": event.timestamp,
        }

        def change(cur: Cursor[Any]) -> None:
            rows.update_ticket(cur, event, tracking.notification_id, changes)
            rows.record_escalation_request(cur, event)

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.EscalationApproved, tracking: Tracking) -> None:
        self._decide_escalation(event, tracking, "approved")

    @process_event.register
    def _(self, event: Ticket.EscalationRejected, tracking: Tracking) -> None:
        self._decide_escalation(event, tracking, "rejected")

    def _decide_escalation(
        self,
        event: Ticket.EscalationApproved | Ticket.EscalationRejected,
        tracking: Tracking,
        state: str,
    ) -> None:
        changes = {
            "escalation_pending_level": None,
            "escalation_pending_team": None,
            "escalation_requested_at": None,
        }

        def change(cur: Cursor[Any]) -> None:
            rows.update_ticket(cur, event, tracking.notification_id, changes)
            rows.decide_escalation_request(cur, event, state)

        self.view.apply(event, tracking, change)

    # -- SLA clocks ----------------------------------------------------------

    @process_event.register
    def _(self, event: Ticket.SLAStarted, tracking: Tracking) -> None:
        position = tracking.notification_id
        self.view.apply(
            event, tracking, lambda cur: sla_rows.start_clock(cur, event, position)
        )

    @process_event.register
    def _(self, event: Ticket.SLARecalculated, tracking: Tracking) -> None:
        position = tracking.notification_id
        self.view.apply(
            event,
            tracking,
            lambda cur: sla_rows.recalculate_clock(cur, event, position),
        )

    @process_event.register
    def _(self, event: Ticket.SLAPaused, tracking: Tracking) -> None:
        # A due time still ahead is unknown while paused (resuming sets the
        # new one); one already passed stays, as in the domain.
        changes = {
            "paused_at": event.timestamp,
            "due_at": rows.ClearedIfAfter(event.timestamp),
            "warning_at": rows.ClearedIfAfter(event.timestamp),
        }
        self._change_clock(event, tracking, changes)

    @process_event.register
    def _(self, event: Ticket.SLAResumed, tracking: Tracking) -> None:
        changes = {
            "paused_at": None,
            "due_at": event.due_at,
            "warning_at": event.warning_at,
            "paused_minutes": event.paused_minutes,
        }
        self._change_clock(event, tracking, changes)

    @process_event.register
    def _(self, event: Ticket.SLAStopped, tracking: Tracking) -> None:
        position = tracking.notification_id
        self.view.apply(
            event, tracking, lambda cur: sla_rows.stop_clock(cur, event, position)
        )

    @process_event.register
    def _(self, event: Ticket.SLAWarning, tracking: Tracking) -> None:
        def change(cur: Cursor[Any]) -> None:
            sla_rows.change_clock(
                cur,
                event,
                tracking.notification_id,
                event.target,
                {"warned_at": event.timestamp},
            )
            sla_rows.record_alert(cur, event, "warning", event.business_minutes_left)

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.SLABreached, tracking: Tracking) -> None:
        def change(cur: Cursor[Any]) -> None:
            sla_rows.change_clock(
                cur,
                event,
                tracking.notification_id,
                event.target,
                # A breach is also the warning, if none was given (as the domain).
                {
                    "breached_at": event.timestamp,
                    "warned_at": rows.First(event.timestamp),
                },
            )
            sla_rows.record_alert(cur, event, "breach", event.business_minutes_used)

        self.view.apply(event, tracking, change)

    def _change_clock(
        self, event: Any, tracking: Tracking, changes: dict[str, Any]
    ) -> None:
        position = tracking.notification_id
        self.view.apply(
            event,
            tracking,
            lambda cur: sla_rows.change_clock(
                cur, event, position, event.target, changes
            ),
        )

    # -- lifecycle -------------------------------------------------------------

    @process_event.register
    def _(self, event: Ticket.TicketResolved, tracking: Tracking) -> None:
        changes = {
            "status": TicketStatus.RESOLVED.value,
            "resolved_at": event.timestamp,
            "resolution_code": event.resolution_code,
        }

        def change(cur: Cursor[Any]) -> None:
            rows.update_ticket(cur, event, tracking.notification_id, changes)
            rows.count_day(cur, event.tenant_id, event.timestamp, "resolved")
            sla_rows.reach_goal(cur, event, (RESOLUTION,))

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.TicketReopened, tracking: Tracking) -> None:
        changes = {
            "status": TicketStatus.OPEN.value,
            "resolved_at": None,
            "resolution_code": None,
        }
        self._update(
            event, tracking, changes, increments=("reopen_count",), count="reopened"
        )

    @process_event.register
    def _(self, event: Ticket.TicketClosed, tracking: Tracking) -> None:
        changes = {"status": TicketStatus.CLOSED.value, "closed_at": event.timestamp}
        self._update(event, tracking, changes, count="closed")

    @process_event.register
    def _(self, event: Ticket.TicketMerged, tracking: Tracking) -> None:
        self._update(event, tracking, {"merged_into": event.into_ticket_id})

    @process_event.register
    def _(self, event: Ticket.SatisfactionRated, tracking: Tracking) -> None:
        changes = {
            "satisfaction_rating": event.rating,
            "satisfaction_rated_at": event.timestamp,
        }
        self._update(event, tracking, changes)

    @process_event.register
    def _(self, event: Ticket.TicketLinked, tracking: Tracking) -> None:
        self._update(event, tracking)

    @process_event.register
    def _(self, event: Ticket.TimeLogged, tracking: Tracking) -> None:
        def change(cur: Cursor[Any]) -> None:
            # Bookkeeping, not a change a customer would see: no updated_at.
            rows.update_ticket(cur, event, tracking.notification_id, touch=False)
            rows.log_time(cur, event)

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.TimeEntryRemoved, tracking: Tracking) -> None:
        def change(cur: Cursor[Any]) -> None:
            rows.update_ticket(cur, event, tracking.notification_id, touch=False)
            rows.remove_time_entry(cur, event)

        self.view.apply(event, tracking, change)

    @process_event.register
    def _(self, event: Ticket.SubjectErased, tracking: Tracking) -> None:
        self.view.apply(
            event,
            tracking,
            lambda cur: rows.erase_ticket(cur, event, tracking.notification_id),
        )

    def _update(
        self,
        event: Ticket.Event,
        tracking: Tracking,
        changes: dict[str, Any] | None = None,
        *,
        increments: tuple[str, ...] = (),
        count: str | None = None,
    ) -> None:
        def change(cur: Cursor[Any]) -> None:
            rows.update_ticket(
                cur, event, tracking.notification_id, changes, increments=increments
            )
            if count:
                rows.count_day(cur, event.tenant_id, event.timestamp, count)

        self.view.apply(event, tracking, change)


def _by_agent(event: Ticket.Event) -> bool:
    """Whether a person on the support side caused the event (as the domain)."""
    actor = event.actor
    return actor.get("kind", "user") == "user" and actor.get("role") in AGENT_ROLES
