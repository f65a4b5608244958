"""HTTP routes of a tenant's settings (tenant admins only).

``GET`` returns the whole document and its version (0: the defaults),
``PUT`` replaces it whole. Both carry the version as the ``ETag``; ``PUT``
honours ``If-Match``. The tenant is the caller's, from the token.
"""

from typing import Any

from fastapi import APIRouter, Response

from dotmac.ticketing.schemas.tenant_config import (
    TenantSettingsDocument,
    TenantSettingsRead,
)
from dotmac.ticketing.service.api.deps import (
    AdminCaller,
    ExpectedVersion,
    TenantSettings,
)
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    VERSIONED,
    WRITE,
)
from dotmac.ticketing.service.api.versions import etag

router = APIRouter(
    prefix="/settings",
    tags=["settings"],
    route_class=ProblemRoute,
    responses=AUTHENTICATED,
)


def _answer(
    response: Response, version: int, document: dict[str, Any]
) -> TenantSettingsRead:
    response.headers["ETag"] = etag(version)
    return TenantSettingsRead(version=version, document=document)


@router.get("", summary="The tenant's settings and their version")
def get_settings(
    ctx: AdminCaller, service: TenantSettings, response: Response
) -> TenantSettingsRead:
    version, document = service.get(ctx.tenant_id)
    return _answer(response, version, document)


@router.put(
    "",
    summary="Replace the tenant's settings (the whole document)",
    responses={**BODY, **WRITE, **VERSIONED},
)
def put_settings(
    body: TenantSettingsDocument,
    ctx: AdminCaller,
    service: TenantSettings,
    response: Response,
    expected_version: ExpectedVersion,
) -> TenantSettingsRead:
    version, document = service.replace(ctx, body, expected_version=expected_version)
    return _answer(response, version, document)
