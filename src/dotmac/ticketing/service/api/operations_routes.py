"""``GET /projections/status``: where each projection is, and its lag (admins)."""

from fastapi import APIRouter

from dotmac.ticketing.projections.status import projection_statuses
from dotmac.ticketing.schemas import ProjectionStatusRead
from dotmac.ticketing.service.api.deps import Admin, Datastore
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import AUTHENTICATED

router = APIRouter(
    tags=["operations"], route_class=ProblemRoute, responses=AUTHENTICATED
)


@router.get("/projections/status", summary="Projection positions and lag")
def status(_admin: Admin, datastore: Datastore) -> list[ProjectionStatusRead]:
    return projection_statuses(datastore)
