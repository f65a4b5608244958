"""What the routers of the ``/tickets`` routes share.

The ticket routes live in three modules (``query_routes``: lists and the
dashboard; ``workflow_routes``; ``ticket_routes``: the rest), each with a
router made here, so that every one of them has the same prefix, tag,
problem answers and refusal of unknown query parameters.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.query_parameters import (
    refuse_unknown_query_parameters,
)
from dotmac.ticketing.service.api.responses import AUTHENTICATED, PARAMETERS


def tickets_router() -> APIRouter:
    return APIRouter(
        prefix="/tickets",
        tags=["tickets"],
        route_class=ProblemRoute,
        responses={**AUTHENTICATED, **PARAMETERS},
        dependencies=[Depends(refuse_unknown_query_parameters)],
    )
