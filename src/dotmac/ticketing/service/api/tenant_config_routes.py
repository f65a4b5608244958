"""HTTP routes of a tenant's settings (tenant admins only).

``GET`` returns the whole document and its version (0: the defaults),
``PUT`` replaces it whole. Both carry the version as the ``ETag``; ``PUT``
honours ``If-Match``. The tenant is the caller's, from the token.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from dotmac.ticketing.schemas.tenant_config import (
    TenantSettingsDocument,
    TenantSettingsRead,
)
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    VERSIONED,
    WRITE,
)
from dotmac.ticketing.service.api.ticket_routes import (
    IfMatch,
    etag,
    parse_if_match,
    request_context,
)
from dotmac.ticketing.service.auth import Principal
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tenant_config import TenantSettingsService


def create_settings_router(
    service: TenantSettingsService, require_admin: Callable[..., Any]
) -> APIRouter:
    """``/settings``: read and replace the caller's tenant settings."""
    router = APIRouter(
        prefix="/settings",
        tags=["settings"],
        route_class=ProblemRoute,
        responses=AUTHENTICATED,
    )

    def admin(
        request: Request, user: Annotated[Principal, Depends(require_admin)]
    ) -> RequestContext:
        return request_context(request, user.tenant_id, user)

    Admin = Annotated[RequestContext, Depends(admin)]

    def respond(
        response: Response, version: int, document: dict[str, Any]
    ) -> TenantSettingsRead:
        response.headers["ETag"] = etag(version)
        return TenantSettingsRead(version=version, document=document)

    @router.get("", summary="The tenant's settings and their version")
    def get_settings(ctx: Admin, response: Response) -> TenantSettingsRead:
        version, document = service.get(ctx.tenant_id)
        return respond(response, version, document)

    @router.put(
        "",
        summary="Replace the tenant's settings (the whole document)",
        responses={**BODY, **WRITE, **VERSIONED},
    )
    def put_settings(
        body: TenantSettingsDocument,
        ctx: Admin,
        response: Response,
        if_match: IfMatch = None,
    ) -> TenantSettingsRead:
        version, document = service.replace(
            ctx, body, expected_version=parse_if_match(if_match)
        )
        return respond(response, version, document)

    return router
