"""Requests per tenant and per caller: 429 beyond, the limits on every answer.

Each authenticated request under the API prefix counts once against its
tenant and once against its token's subject (the ``limits`` library: a
fixed window per limit, counted in memory in this process or in Redis
shared by every process and replica). Beyond either limit the answer is
429 ``application/problem+json`` with ``Retry-After``; every answer carries
``RateLimit-Policy`` and ``RateLimit`` (IETF httpapi ratelimit-headers
draft: the policies, and what is left of each with the seconds until it
resets).

Requests without a valid token are not counted here (they are answered
401 without work). Health, readiness and metrics are outside the prefix.
When the counting store does not answer, requests are served unlimited,
with a warning: an outage of Redis must not become an outage of the API.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from prometheus_client import Counter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dotmac.ticketing.service.api.problems import problem
from dotmac.ticketing.service.auth import Principal, TokenVerifier

log = structlog.get_logger(__name__)

LIMITED = Counter(
    "ticketing_rate_limited",
    "Requests answered 429, by the limit they passed (tenant or subject).",
    ("scope",),
)

#: A tenant's own limits are looked up again after this long.
TENANT_LIMITS_TTL = 5.0


@dataclass(frozen=True)
class Limits:
    """A tenant's limits: all its requests, and each caller's (None: none)."""

    tenant: str | None
    subject: str | None


@dataclass(frozen=True)
class Usage:
    """One limit as this request left it."""

    scope: str  # "tenant" or "subject"
    item: RateLimitItem
    allowed: bool
    remaining: int
    reset_seconds: int


def policy_header(usages: list[Usage]) -> str:
    """``RateLimit-Policy``: each limit's quota and window in seconds."""
    return ", ".join(
        f'"{u.scope}";q={u.item.amount};w={u.item.get_expiry()}' for u in usages
    )


def remaining_header(usages: list[Usage]) -> str:
    """``RateLimit``: what is left of each limit, and when it resets."""
    return ", ".join(f'"{u.scope}";r={u.remaining};t={u.reset_seconds}' for u in usages)


LimitsOf = Callable[[str], Awaitable[Limits]]


class RateLimitMiddleware:
    """Counts each authenticated API request against its tenant and caller."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        verifier: TokenVerifier,
        limits_of: LimitsOf,
        storage_url: str,
    ) -> None:
        self.app = app
        self._prefix = prefix
        self._verifier = verifier
        self._limits_of = limits_of
        storage = storage_from_string(_async_url(storage_url))
        assert isinstance(storage, Storage)  # an async+ URL gives the asyncio one
        self._limiter = FixedWindowRateLimiter(storage)
        self._store_down_since: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            await self.app(scope, receive, send)
            return
        caller = await self._caller(scope)
        usages = await self._count(caller) if caller is not None else []
        if not usages:
            await self.app(scope, receive, send)
            return
        headers = {
            "RateLimit-Policy": policy_header(usages),
            "RateLimit": remaining_header(usages),
        }
        refused = [u for u in usages if not u.allowed]
        if refused:
            worst = max(refused, key=lambda u: u.reset_seconds)
            LIMITED.labels(worst.scope).inc()
            response = problem(
                429,
                "rate-limited",
                "Too many requests",
                f"the {worst.scope} limit of {worst.item.amount} requests per"
                f" {worst.item.get_expiry()} s is used up; retry after"
                f" {worst.reset_seconds} s",
                headers={**headers, "Retry-After": str(worst.reset_seconds)},
            )
            await response(scope, receive, send)
            return

        async def with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, with_limits)

    async def _caller(self, scope: Scope) -> Principal | None:
        """The request's verified caller, or None (no or a bad token)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                kind, _, token = value.decode("latin-1").partition(" ")
                if kind.lower() != "bearer" or not token:
                    return None
                known = self._verifier.verified(token)
                if known is not None:
                    return known
                try:
                    return await asyncio.to_thread(self._verifier.verify, token)
                except Exception:  # the route answers 401 with the reason
                    return None
        return None

    async def _count(self, caller: Principal) -> list[Usage]:
        limits = await self._limits_of(caller.tenant_id)
        wanted = [
            ("tenant", limits.tenant, (caller.tenant_id,)),
            ("subject", limits.subject, (caller.tenant_id, caller.sub)),
        ]
        usages = []
        try:
            for name, rate, keys in wanted:
                if rate is None:
                    continue
                item = parse(rate)
                allowed = await self._limiter.hit(item, name, *keys)
                stats = await self._limiter.get_window_stats(item, name, *keys)
                usages.append(
                    Usage(
                        name,
                        item,
                        allowed,
                        stats.remaining,
                        max(math.ceil(stats.reset_time - time.time()), 1),
                    )
                )
        except Exception as error:
            self._warn_store_down(error)
            return []
        self._store_down_since = None
        return usages

    def _warn_store_down(self, error: Exception) -> None:
        # Once a minute while it lasts, not once a request.
        now = time.monotonic()
        if self._store_down_since is None or now - self._store_down_since >= 60:
            self._store_down_since = now
            log.warning(
                "rate limit store does not answer; serving without limits",
                error=repr(error),
            )


def _async_url(url: str) -> str:
    """The limits library's asyncio flavour of a storage URL."""
    return url if url.startswith("async+") else f"async+{url}"


class TenantLimits:
    """Each tenant's limits: its settings' ``rate_limits`` over the defaults,
    looked up again every ``TENANT_LIMITS_TTL`` seconds."""

    def __init__(
        self,
        settings_of: Callable[[str], tuple[int, dict[str, Any]]],
        defaults: Limits,
        *,
        ttl: float = TENANT_LIMITS_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_of = settings_of
        self._defaults = defaults
        self._ttl = ttl
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, Limits]] = {}

    async def __call__(self, tenant_id: str) -> Limits:
        now = self._monotonic()
        known = self._known.get(tenant_id)
        if known is not None and now - known[0] < self._ttl:
            return known[1]
        try:
            _, document = await asyncio.to_thread(self._settings_of, tenant_id)
        except Exception:
            # The database is away: the limits last known (or the defaults)
            # hold; the request itself hears of the outage from its route.
            return known[1] if known is not None else self._defaults
        limits = tenant_limits(document, self._defaults)
        self._known[tenant_id] = (now, limits)
        return limits


def tenant_limits(document: dict[str, Any], defaults: Limits) -> Limits:
    """The tenant's limits from its settings document, defaults where unset."""
    own = document.get("rate_limits") or {}
    return Limits(
        tenant=own.get("tenant") or defaults.tenant,
        subject=own.get("subject") or defaults.subject,
    )
