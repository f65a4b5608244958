"""Macros: a tenant's named sets of actions, and applying one to a ticket.

Admins keep the macros (``macros`` table, one row each); staff apply one
to a ticket as one command: every action (``domain.macro_actions``) is
decided on one load of the ticket and saved in one save, so the macro's
events are contiguous, all there or none, and the ticket's version moves
once. Each event's ``causation_id`` is ``macro:<id>``, so the history
says which macro did it. An application that changed the ticket is
counted in ``macro_applications`` (``analytics.macro_usage``).

``MacroService.apply`` is the one way in, for the HTTP route, bulk
actions and the triggers alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from dotmac.ticketing.domain.macro_actions import (
    MacroAction,
    action_document,
    action_from,
    apply_actions,
    changes_between,
    check_actions,
    ticket_state,
)
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.errors import MacroNotFound, PermissionDenied
from dotmac.ticketing.service.tickets import CommandResult, TicketService

Row = dict[str, Any]

_COLUMNS = "id, name, description, actions, created_by, created_at, updated_at"
#: The prefix of the ``causation_id`` of a macro's events.
MACRO_CAUSE = "macro:"


@dataclass(frozen=True)
class Macro:
    id: UUID
    tenant_id: str
    name: str
    actions: tuple[MacroAction, ...]

    @property
    def causation_id(self) -> str:
        return f"{MACRO_CAUSE}{self.id}"


@dataclass(frozen=True)
class MacroPreviewResult:
    ticket: Ticket
    version: int
    changes: dict[str, dict[str, Any]]
    comments: list[dict[str, Any]]
    events: list[str]


def parse_actions(raw: Sequence[dict[str, Any]]) -> tuple[MacroAction, ...]:
    return tuple(action_from(a) for a in raw)


class MacroService:
    """Macro CRUD (admins) and applying (staff), over the ticket service."""

    def __init__(self, tickets: TicketService, datastore: Any) -> None:
        self._tickets = tickets
        self._datastore = datastore

    # -- the macros -------------------------------------------------------------

    def create(
        self,
        ctx: RequestContext,
        *,
        name: str,
        description: str,
        actions: Sequence[dict[str, Any]],
    ) -> Row:
        stored = self._checked(ctx, actions)
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "INSERT INTO macros"
                " (id, tenant_id, name, description, actions, created_by)"
                f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (uuid4(), ctx.tenant_id, name, description, Jsonb(stored), ctx.user_id),
            )
            row: Row = cur.fetchone()
        return row

    def replace(
        self,
        ctx: RequestContext,
        macro_id: UUID,
        *,
        name: str,
        description: str,
        actions: Sequence[dict[str, Any]],
    ) -> Row:
        stored = self._checked(ctx, actions)
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "UPDATE macros SET name = %s, description = %s, actions = %s,"
                " updated_at = now() WHERE id = %s AND tenant_id = %s"
                f" RETURNING {_COLUMNS}",
                (name, description, Jsonb(stored), macro_id, ctx.tenant_id),
            )
            row: Row | None = cur.fetchone()
        if row is None:
            raise MacroNotFound(macro_id)
        return row

    def list(self, ctx: RequestContext) -> list[Row]:
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM macros WHERE tenant_id = %s ORDER BY name, id",
                (ctx.tenant_id,),
            )
            rows: list[Row] = cur.fetchall()
        return rows

    def get(self, ctx: RequestContext, macro_id: UUID) -> Row:
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM macros WHERE id = %s AND tenant_id = %s",
                (macro_id, ctx.tenant_id),
            )
            row: Row | None = cur.fetchone()
        if row is None:
            raise MacroNotFound(macro_id)
        return row

    def delete(self, ctx: RequestContext, macro_id: UUID) -> None:
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "DELETE FROM macros WHERE id = %s AND tenant_id = %s",
                (macro_id, ctx.tenant_id),
            )
            deleted = cur.rowcount
        if not deleted:
            raise MacroNotFound(macro_id)

    def macro(self, tenant_id: str, macro_id: UUID) -> Macro:
        """The macro as values (for appliers: the route, bulk, triggers)."""
        row = self.get(RequestContext(tenant_id, "macros"), macro_id)
        return Macro(
            id=row["id"],
            tenant_id=tenant_id,
            name=row["name"],
            actions=parse_actions(row["actions"]),
        )

    def _checked(
        self, ctx: RequestContext, actions: Sequence[dict[str, Any]]
    ) -> Sequence[dict[str, Any]]:
        """The actions' stored form, checked against the tenant's directory."""
        parsed = parse_actions(actions)
        check_actions(parsed, self._tickets.tenant_config(ctx.tenant_id)[1])
        return [action_document(a) for a in parsed]

    # -- applying ---------------------------------------------------------------

    def apply(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        macro_id: UUID,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Apply the macro to the ticket: one command, one save, all or nothing.

        Staff only. The macro's actions are checked again against the
        tenant's directory as it is now (a team removed since the macro
        was written is a 422, and nothing is saved).
        """
        if not ctx.is_staff:
            raise PermissionDenied("macros are applied by staff")
        macro = self.macro(ctx.tenant_id, macro_id)
        return self.apply_macro(ctx, ticket_id, macro, expected_version)

    def apply_macro(
        self,
        ctx: RequestContext,
        ticket_id: UUID,
        macro: Macro,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Apply an already loaded macro: its events are caused by it
        (``macro:<id>``), whoever ``ctx`` is."""
        acting = replace(ctx, causation_id=macro.causation_id)
        recorded = 0

        def decide(ticket: Ticket) -> None:
            nonlocal recorded
            check_actions(macro.actions, self._tickets.tenant_config(ctx.tenant_id)[1])
            recorded = apply_actions(
                ticket,
                macro.actions,
                provenance=acting.provenance(),
                at=self._tickets.now(),
                policy_for=self._tickets.policy_for_ticket,
            )

        result = self._tickets.execute(acting, ticket_id, decide, expected_version)
        if result.position is not None:
            self.count(ctx, macro, result.ticket, recorded, self._tickets.now())
        return result

    def preview(
        self, ctx: RequestContext, ticket_id: UUID, macro_id: UUID
    ) -> MacroPreviewResult:
        """What ``apply`` would change now: the same commands on a loaded
        ticket that is then dropped, never saved. A refused action is
        refused here too."""
        if not ctx.is_staff:
            raise PermissionDenied("macros are applied by staff")
        macro = self.macro(ctx.tenant_id, macro_id)
        acting = replace(ctx, causation_id=macro.causation_id)
        ticket = self._tickets.get_ticket(ctx, ticket_id)
        check_actions(macro.actions, self._tickets.tenant_config(ctx.tenant_id)[1])
        before = ticket_state(ticket)
        comments_before = len(ticket.comments)
        version = ticket.version
        apply_actions(
            ticket,
            macro.actions,
            provenance=acting.provenance(),
            at=self._tickets.now(),
            policy_for=self._tickets.policy_for_ticket,
        )
        events = [type(e).__name__ for e in ticket.pending_events]
        return MacroPreviewResult(
            ticket=ticket,
            version=version,
            changes=changes_between(before, ticket_state(ticket)),
            comments=[
                {"internal": c["internal"], "body": c["body"]}
                for c in ticket.comments[comments_before:]
            ],
            events=events,
        )

    def count(
        self,
        ctx: RequestContext,
        macro: Macro,
        ticket: Ticket,
        events: int,
        at: datetime,
    ) -> None:
        """Count an application of the macro that changed the ticket."""
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "INSERT INTO macro_applications (tenant_id, macro_id, ticket_id,"
                " applied_by, applied_at, ticket_version, events)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    ctx.tenant_id,
                    macro.id,
                    ticket.id,
                    ctx.user_id,
                    at,
                    ticket.version,
                    events,
                ),
            )
