"""HTTP routes of a tenant's settings (tenant admins only).

``GET`` returns the whole document and its version (0: the defaults),
``PUT`` replaces it whole. Both carry the version as the ``ETag``; ``PUT``
honours ``If-Match``. ``GET ?version=N`` returns a past version and
``GET /history`` every version with who stored it and what it changed,
both with their secrets redacted. The tenant is the caller's, from the
token.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from dotmac.ticketing.schemas.tenant_config import (
    TenantSettingsDocument,
    TenantSettingsRead,
)
from dotmac.ticketing.schemas.tenant_config_history import SettingsHistoryPage
from dotmac.ticketing.schemas.tenant_config_secrets import (
    REDACTED,
    without_write_only,
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
    PARAMETERS,
    RESOURCE,
    VERSIONED,
    WRITE,
)
from dotmac.ticketing.service.api.versions import etag
from dotmac.ticketing.service.tenant_config_history import (
    HISTORY_LIMIT,
    HISTORY_LIMIT_MAX,
    VERSION_MAX,
)

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
    return TenantSettingsRead(version=version, document=without_write_only(document))


_SECRETS = (
    "Secrets (the integrations' bearer tokens, basic passwords and header"
    f' values) read as "{REDACTED}"; `PUT` refuses such a document with 422,'
    " so the mask is never stored as a credential."
)

PastVersion = Annotated[
    int | None,
    Query(
        ge=1,
        le=VERSION_MAX,
        description="A stored version: the document as it was then, its"
        " secrets redacted.",
    ),
]


@router.get(
    "",
    summary="The tenant's settings and their version, or a past version",
    description="Without `version`: the current document, secrets included"
    " (`PUT` replaces the whole document, so it must carry them back). With"
    " `version=N`: the document version N stored, 404 `no-such-version` if"
    " the settings never had it. " + _SECRETS,
    responses={**PARAMETERS, **RESOURCE},
)
def get_settings(
    ctx: AdminCaller,
    service: TenantSettings,
    response: Response,
    version: PastVersion = None,
) -> TenantSettingsRead:
    if version is None:
        version, document = service.get(ctx.tenant_id)
    else:
        document = service.history.document_at(ctx, version)
    return _answer(response, version, document)


@router.get(
    "/history",
    summary="Every version of the tenant's settings, newest first",
    description="One entry per stored version, newest first: who stored it"
    " (`changed_by`), when (`changed_at`) and what it changed against the"
    " version before (`changes`: JSON-pointer `add`, `remove` and `replace`"
    " with `value` and `previous`; version 1 against the defaults). Pages of"
    f" `limit` entries (default {HISTORY_LIMIT}, at most {HISTORY_LIMIT_MAX});"
    " pass a page's `next_before_version` as `before_version` for the older"
    " ones. " + _SECRETS,
    responses=PARAMETERS,
    # A change's absent side (an add's previous, a remove's value) is left
    # out rather than sent as null, which may be a value.
    response_model_exclude_unset=True,
)
def get_settings_history(
    ctx: AdminCaller,
    service: TenantSettings,
    limit: Annotated[
        int, Query(ge=1, le=HISTORY_LIMIT_MAX, description="Entries per page.")
    ] = HISTORY_LIMIT,
    before_version: Annotated[
        int | None,
        Query(
            ge=1,
            le=VERSION_MAX,
            description="Only versions older than this one (a page's"
            " `next_before_version`).",
        ),
    ] = None,
) -> SettingsHistoryPage:
    return service.history.page(ctx, limit=limit, before_version=before_version)


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
