"""HTTP routes of triggers (tenant admins only), and what each one did."""

from uuid import UUID

from fastapi import APIRouter, Response, status

from dotmac.ticketing.schemas.triggers import TriggerRead, TriggerRunRead, TriggerWrite
from dotmac.ticketing.service.api.deps import AdminCaller, Triggers
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    RESOURCE,
    WRITE,
)

router = APIRouter(
    prefix="/triggers",
    tags=["triggers"],
    route_class=ProblemRoute,
    responses={**AUTHENTICATED, **PARAMETERS},
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a trigger (its teams, agents and macros must be the tenant's)",
    responses={**BODY, **WRITE},
)
def create_trigger(
    body: TriggerWrite, ctx: AdminCaller, triggers: Triggers, response: Response
) -> TriggerRead:
    row = triggers.create(ctx, body.model_dump(mode="json", exclude_none=True))
    response.headers["Location"] = f"{row['id']}"
    return TriggerRead.model_validate(row)


@router.get("", summary="The tenant's triggers, in the order they run")
def list_triggers(ctx: AdminCaller, triggers: Triggers) -> list[TriggerRead]:
    return [TriggerRead.model_validate(row) for row in triggers.list(ctx)]


@router.get("/{trigger_id}", summary="One trigger", responses=RESOURCE)
def get_trigger(trigger_id: UUID, ctx: AdminCaller, triggers: Triggers) -> TriggerRead:
    return TriggerRead.model_validate(triggers.get(ctx, trigger_id))


@router.put(
    "/{trigger_id}",
    summary="Replace a trigger",
    responses={**RESOURCE, **BODY, **WRITE},
)
def replace_trigger(
    trigger_id: UUID, body: TriggerWrite, ctx: AdminCaller, triggers: Triggers
) -> TriggerRead:
    row = triggers.replace(
        ctx, trigger_id, body.model_dump(mode="json", exclude_none=True)
    )
    return TriggerRead.model_validate(row)


@router.delete(
    "/{trigger_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a trigger",
    responses=RESOURCE,
)
def delete_trigger(trigger_id: UUID, ctx: AdminCaller, triggers: Triggers) -> Response:
    triggers.delete(ctx, trigger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{trigger_id}/runs",
    summary="The trigger's latest runs: fired, cut at the depth limit, refused",
    responses=RESOURCE,
)
def trigger_runs(
    trigger_id: UUID, ctx: AdminCaller, triggers: Triggers
) -> list[TriggerRunRead]:
    return [TriggerRunRead.model_validate(r) for r in triggers.runs(ctx, trigger_id)]
