"""What-if replays: ``POST /simulations`` starts one, ``GET`` follows it.

Admins and supervisors. A simulation replays the real events of the
period's tickets under a proposed settings document and reports the
outcome beside what happened; it writes nothing to tickets
(``service.simulations``). Another tenant's simulation does not exist
here (404).
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Response
from fastapi.concurrency import run_in_threadpool

from dotmac.ticketing.schemas.simulations import (
    SimulationProgress,
    SimulationRead,
    SimulationRequest,
)
from dotmac.ticketing.service.api.deps import Caller, Core
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    RESOURCE,
)

router = APIRouter(
    prefix="/simulations",
    tags=["simulations"],
    route_class=ProblemRoute,
    responses=AUTHENTICATED,
)

_API = "/api/v1"
_STAFF_LEADS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not an admin or supervisor."}
}


def _read(row: dict[str, Any]) -> SimulationRead:
    return SimulationRead(
        id=row["simulation_id"],
        state=row["state"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        requested_by=row["requested_by"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        progress=SimulationProgress(
            tickets_done=row["tickets_done"],
            tickets_total=row["tickets_total"],
            events_read=row["events_read"],
        ),
        result=row["result"],
        error=row["error"],
    )


@router.post(
    "",
    status_code=202,
    summary="Replay a period's tickets under proposed settings (a job)",
    description="Starts a simulation and answers 202 with its state and a"
    " `Location` to follow it. The tickets created in the period are"
    " followed to now: their recorded facts (creation, category and priority"
    " changes, status changes and pauses, replies, resolution, reopening,"
    " closing) replay under `settings`, whose SLA policies, business hours,"
    " escalation and assignment rules decide again, with the same code as"
    " the service. Nothing is written to tickets.",
    responses={**BODY, **_STAFF_LEADS},
)
async def start_simulation(
    body: SimulationRequest, ctx: Caller, core: Core, response: Response
) -> SimulationRead:
    simulation_id = await run_in_threadpool(
        core.simulations.start,
        ctx,
        body.settings,
        period_start=body.period_start,
        period_end=body.period_end,
    )
    response.headers["Location"] = f"{_API}/simulations/{simulation_id}"
    row = await run_in_threadpool(core.simulations.get, ctx, simulation_id)
    return _read(row)


@router.get(
    "/{simulation_id}",
    summary="A simulation's state, progress and (when done) its result",
    responses={**PARAMETERS, **RESOURCE, **_STAFF_LEADS},
)
async def get_simulation(
    ctx: Caller, core: Core, simulation_id: Annotated[UUID, Path()]
) -> SimulationRead:
    row = await run_in_threadpool(core.simulations.get, ctx, simulation_id)
    return _read(row)
