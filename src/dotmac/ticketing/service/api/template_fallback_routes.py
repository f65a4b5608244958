"""``GET /templates/fallbacks``: where a tenant's own templates failed (admins)."""

from typing import Annotated

from fastapi import APIRouter, Query

from dotmac.ticketing.schemas.notifications import TemplateFallbackRead
from dotmac.ticketing.service.api.deps import Admin, Datastore
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import AUTHENTICATED, PARAMETERS
from dotmac.ticketing.service.template_fallbacks import recent_template_fallbacks

router = APIRouter(
    tags=["notifications"], route_class=ProblemRoute, responses=AUTHENTICATED
)


@router.get(
    "/templates/fallbacks",
    summary="Notifications sent with the built-in template (admins)",
    responses=PARAMETERS,
    description=(
        "A tenant template that raised, ran past its time budget or grew"
        " past its size budget was replaced by the built-in one; the"
        " notification went out. Newest first."
    ),
)
def fallbacks(
    admin: Admin,
    datastore: Datastore,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[TemplateFallbackRead]:
    rows = recent_template_fallbacks(datastore, admin.tenant_id, limit=limit)
    return [TemplateFallbackRead(**row) for row in rows]
