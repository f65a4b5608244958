"""The service's own FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from dotmac.ticketing.service.api import (
    bulk_routes,
    inbound_routes,
    macro_routes,
    notification_routes,
    operations_routes,
    privacy_routes,
    query_routes,
    satisfaction_routes,
    simulation_routes,
    template_fallback_routes,
    tenant_config_routes,
    ticket_macro_routes,
    ticket_routes,
    trigger_routes,
    view_routes,
    webhook_routes,
    workflow_routes,
)
from dotmac.ticketing.service.api.cors import install_cors
from dotmac.ticketing.service.api.http_metrics import RequestMetrics, metrics_response
from dotmac.ticketing.service.api.limits import BodySizeLimitMiddleware
from dotmac.ticketing.service.api.load_shedding import LoadShedding
from dotmac.ticketing.service.api.openapi import install_openapi
from dotmac.ticketing.service.api.problems import install_problem_handlers, problem
from dotmac.ticketing.service.api.rate_limits import (
    Limits,
    RateLimitMiddleware,
    TenantLimits,
)
from dotmac.ticketing.service.api.responses import problems
from dotmac.ticketing.service.api.route_templates import RouteTemplates
from dotmac.ticketing.service.api.security_headers import (
    SecuredFastAPI,
    SecurityHeaders,
)
from dotmac.ticketing.service.auth import TokenVerifier
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.bulk import BulkRunner
from dotmac.ticketing.service.logging import RequestContextMiddleware
from dotmac.ticketing.service.notifications import NotificationStore
from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.span_export import SpanSampling, span_export
from dotmac.ticketing.service.webhooks import WebhookStore
from dotmac.ticketing.store.pool_metrics import sample_pools
from dotmac.ticketing.store.worker_status import (
    current_worker_problems,
    readiness_policy,
)

API_PREFIX = "/api/v1"
# Room for the multipart envelope around the largest allowed file.
MULTIPART_OVERHEAD = 64 * 1024
NO_API_DOCS: dict[str, Any] = {"docs_url": None, "redoc_url": None, "openapi_url": None}

DESCRIPTION = """
Multi-tenant support tickets, event-sourced. Every change is an event;
`GET /api/v1/tickets/{id}/history` lists them and `?as_of=` rebuilds the
ticket as it was. Authenticate with `Authorization: Bearer <JWT>` (claims
`sub`, `tenant_id`, `roles`, `exp`); `ticketing token` prints one for
development. Errors are RFC 9457 `application/problem+json`.
"""


# In this order: the document lists the paths as they come.
ROUTERS = (
    # /tickets: the list and the dashboard, the workflows, the rest.
    query_routes.router,
    workflow_routes.router,
    bulk_routes.router,
    ticket_routes.router,
    bulk_routes.jobs,
    ticket_macro_routes.router,
    operations_routes.router,
    notification_routes.router,
    tenant_config_routes.router,
    # The links of resolution e-mail: the token is the credential, no login.
    satisfaction_routes.router,
    template_fallback_routes.router,
    webhook_routes.router,
    inbound_routes.router,
    privacy_routes.router,
    simulation_routes.router,
    view_routes.router,
    macro_routes.router,
    trigger_routes.router,
)


#: How often each API process samples its database pools for /metrics.
POOL_SAMPLE_SECONDS = 5.0


async def _sample_pools_every(seconds: float, core: Ticketing) -> None:
    pools = {"event_store": core.app.datastore.pool, "turns": core.desk.pool}
    while True:
        sample_pools(pools)
        await asyncio.sleep(seconds)


def install_metrics_route(app: FastAPI) -> None:
    """``GET /metrics``: no token (scrapers carry none); keep it off the
    public network (docs/operations.md)."""

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of the API (all its processes)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics() -> Response:
        return metrics_response()


def create_app(settings: Settings, *, ticketing: Ticketing | None = None) -> FastAPI:
    """The HTTP API over a ticketing core (built from settings if not given)."""
    verifier = TokenVerifier.from_settings(settings)
    core = ticketing or initialize_ticketing(settings)
    owns_core = ticketing is None

    spans = span_export(
        settings.otlp_endpoint,
        process="api",
        sampling=SpanSampling(*settings.trace_sampler),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sampler = asyncio.create_task(_sample_pools_every(POOL_SAMPLE_SECONDS, core))
        runner = (
            BulkRunner(
                core.bulk,
                concurrency=settings.bulk_concurrency,
                lease_seconds=settings.bulk_lease_seconds,
                poll_seconds=settings.bulk_poll_seconds,
            )
            if settings.bulk_runner
            else None
        )
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            sampler.cancel()
            if runner is not None:
                # The chunk in flight ends and the job's lease is given back.
                await asyncio.to_thread(runner.stop)
            if spans is not None:
                spans.close()
            if owns_core:
                core.close()

    app = SecuredFastAPI(
        security_headers=SecurityHeaders.from_settings(settings, api_prefix=API_PREFIX),
        title="Ticketing",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # TICKETING_API_DOCS=false: all three answer 404.
        **({} if settings.api_docs else NO_API_DOCS),
    )
    # What the routes' dependencies read (``deps.py``); an application may
    # override any of those functions in ``app.dependency_overrides``.
    app.state.ticketing = core
    app.state.token_verifier = verifier
    app.state.attachment_max_bytes = settings.attachment_max_bytes
    app.state.notification_store = NotificationStore(core.app.datastore)
    app.state.webhook_store = WebhookStore(
        core.app.datastore,
        allow_private=settings.webhook_allow_private,
        max_per_tenant=settings.webhooks_per_tenant_max,
    )
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/health", tags=["operations"], summary="The process is up")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    if settings.metrics:
        install_metrics_route(app)

    policy = readiness_policy(
        settings.ready_worker_names,
        stale_seconds=settings.ready_stale_seconds,
        max_lag=settings.ready_max_lag,
    )

    @app.get(
        "/ready",
        tags=["operations"],
        summary="The database answers and no worker is down or lagging",
        responses={
            503: {
                **problems(503)[503],
                "description": "Service Unavailable. The database does not answer,"
                " or a worker is down or lagging: `workers` lists each"
                " (`worker`, `problem`: down | lagging, `reason`).",
            }
        },
    )
    def ready() -> JSONResponse:
        if not core.is_ready():
            return problem(
                503, "not-ready", "Not ready", "the database does not answer"
            )
        unready = current_worker_problems(core.app.datastore, policy)
        if unready:
            return problem(
                503,
                "not-ready",
                "Not ready",
                "; ".join(p.describe() for p in unready),
                workers=[
                    {"worker": p.worker, "problem": p.problem, "reason": p.reason}
                    for p in unready
                ],
            )
        return JSONResponse({"status": "ready"})

    install_problem_handlers(app)
    install_openapi(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        json_limit=settings.request_max_bytes,
        upload_limit=settings.attachment_max_bytes + MULTIPART_OVERHEAD,
    )
    # Inside the request log: a 429 is logged and counted like any answer.
    app.add_middleware(
        RateLimitMiddleware,
        prefix=API_PREFIX,
        verifier=verifier,
        limits_of=TenantLimits(
            core.settings_service.get,
            Limits(settings.rate_limit_tenant, settings.rate_limit_subject),
        ),
        storage_url=settings.rate_limit_storage,
    )
    # Outside the limits: a shed request costs no counting.
    app.add_middleware(
        LoadShedding, prefix=API_PREFIX, max_in_flight=settings.max_in_flight
    )
    install_cors(app, settings)
    route_of = RouteTemplates(
        {API_PREFIX: [route for router in ROUTERS for route in router.routes]}
    )
    app.add_middleware(
        RequestContextMiddleware,
        observe=RequestMetrics(route_of) if settings.metrics else None,
        spans=spans,
        route_of=route_of,
        deadline_seconds=settings.request_deadline_seconds,
    )
    return app
