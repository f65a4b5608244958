"""HTTP routes applying a macro to a ticket: one command, one save."""

from uuid import UUID

from dotmac.ticketing.schemas import TicketRead
from dotmac.ticketing.schemas.macros import MacroPreview
from dotmac.ticketing.service.api.commands import VersionedCommand
from dotmac.ticketing.service.api.deps import Caller, Macros
from dotmac.ticketing.service.api.responses import RESOURCE, VERSIONED, WRITE
from dotmac.ticketing.service.api.routers import tickets_router

router = tickets_router()


@router.post(
    "/{ticket_id}/macros/{macro_id}",
    summary="Apply a macro: all its actions in one save, or none",
    responses={**RESOURCE, **WRITE, **VERSIONED},
)
def apply_macro(
    ticket_id: UUID, macro_id: UUID, command: VersionedCommand, macros: Macros
) -> TicketRead:
    result = macros.apply(
        command.ctx, ticket_id, macro_id, expected_version=command.expected_version
    )
    return command.answer(result)


@router.get(
    "/{ticket_id}/macros/{macro_id}/preview",
    summary="What applying a macro would change (nothing is saved)",
    responses={**RESOURCE, **WRITE},
)
def preview_macro(
    ticket_id: UUID, macro_id: UUID, ctx: Caller, macros: Macros
) -> MacroPreview:
    preview = macros.preview(ctx, ticket_id, macro_id)
    return MacroPreview(
        macro_id=macro_id,
        ticket_id=ticket_id,
        version=preview.version,
        changes=preview.changes,
        comments=preview.comments,
        events=preview.events,
    )
