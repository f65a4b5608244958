"""HTTP routes of macros: admins keep them (``/macros``); staff apply one to
a ticket (``/tickets/{id}/macros/{macro}``, in ``ticket_macro_routes``)."""

from uuid import UUID

from fastapi import APIRouter, Response, status

from dotmac.ticketing.schemas.macros import MacroRead, MacroWrite
from dotmac.ticketing.service.api.deps import AdminCaller, Macros
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    RESOURCE,
    WRITE,
)

router = APIRouter(
    prefix="/macros",
    tags=["macros"],
    route_class=ProblemRoute,
    responses={**AUTHENTICATED, **PARAMETERS},
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a macro (its teams and agents must be the tenant's)",
    responses={**BODY, **WRITE},
)
def create_macro(
    body: MacroWrite, ctx: AdminCaller, macros: Macros, response: Response
) -> MacroRead:
    row = macros.create(
        ctx,
        name=body.name,
        description=body.description,
        actions=[a.model_dump() for a in body.actions],
    )
    response.headers["Location"] = f"{row['id']}"
    return MacroRead.model_validate(row)


@router.get("", summary="The tenant's macros, by name")
def list_macros(ctx: AdminCaller, macros: Macros) -> list[MacroRead]:
    return [MacroRead.model_validate(row) for row in macros.list(ctx)]


@router.get("/{macro_id}", summary="One macro", responses=RESOURCE)
def get_macro(macro_id: UUID, ctx: AdminCaller, macros: Macros) -> MacroRead:
    return MacroRead.model_validate(macros.get(ctx, macro_id))


@router.put(
    "/{macro_id}",
    summary="Replace a macro",
    responses={**RESOURCE, **BODY, **WRITE},
)
def replace_macro(
    macro_id: UUID, body: MacroWrite, ctx: AdminCaller, macros: Macros
) -> MacroRead:
    row = macros.replace(
        ctx,
        macro_id,
        name=body.name,
        description=body.description,
        actions=[a.model_dump() for a in body.actions],
    )
    return MacroRead.model_validate(row)


@router.delete(
    "/{macro_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a macro",
    responses=RESOURCE,
)
def delete_macro(macro_id: UUID, ctx: AdminCaller, macros: Macros) -> Response:
    macros.delete(ctx, macro_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
