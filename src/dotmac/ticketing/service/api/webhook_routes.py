"""HTTP routes of webhook registrations (tenant admins only)."""

from uuid import UUID

from fastapi import APIRouter, Response, status
from fastapi.exceptions import RequestValidationError

from dotmac.ticketing.schemas import WebhookCreate, WebhookCreated, WebhookRead
from dotmac.ticketing.service.api.deps import Admin, Webhooks
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import (
    AUTHENTICATED,
    BODY,
    PARAMETERS,
    RESOURCE,
    WRITE,
)
from dotmac.ticketing.service.webhooks import UnsafeWebhookURL

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    route_class=ProblemRoute,
    responses={**AUTHENTICATED, **PARAMETERS},
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook",
    # 409: the tenant already has as many webhooks as it may.
    responses={**BODY, **WRITE},
)
def create_webhook(
    body: WebhookCreate, user: Admin, store: Webhooks, response: Response
) -> WebhookCreated:
    try:
        row = store.create(
            tenant_id=user.tenant_id,
            created_by=user.sub,
            url=body.url,
            event_types=body.event_types,
            secret=body.secret,
        )
    except UnsafeWebhookURL as error:
        raise RequestValidationError(
            [{"loc": ("body", "url"), "msg": str(error), "type": "value_error"}]
        ) from None
    response.headers["Location"] = f"{row['id']}"
    return WebhookCreated.model_validate(row)


@router.get("", summary="The tenant's webhooks (without secrets)")
def list_webhooks(user: Admin, store: Webhooks) -> list[WebhookRead]:
    return [
        WebhookRead.model_validate(row) for row in store.list(tenant_id=user.tenant_id)
    ]


@router.get(
    "/{webhook_id}", summary="One webhook (without its secret)", responses=RESOURCE
)
def get_webhook(webhook_id: UUID, user: Admin, store: Webhooks) -> WebhookRead:
    row = store.get(tenant_id=user.tenant_id, webhook_id=webhook_id)
    return WebhookRead.model_validate(row)


@router.post(
    "/{webhook_id}/resume",
    summary="Resume a paused webhook: its waiting deliveries are sent",
    responses=RESOURCE,
)
def resume_webhook(webhook_id: UUID, user: Admin, store: Webhooks) -> WebhookRead:
    row = store.resume(tenant_id=user.tenant_id, webhook_id=webhook_id)
    return WebhookRead.model_validate(row)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a webhook",
    responses=RESOURCE,
)
def delete_webhook(webhook_id: UUID, user: Admin, store: Webhooks) -> Response:
    store.delete(tenant_id=user.tenant_id, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
