"""Response headers every answer of the service carries (docs/security.md).

- ``X-Content-Type-Options: nosniff`` on everything: a browser must take a
  JSON answer or an attachment for what its Content-Type says, never sniff
  it into HTML or script.
- ``Cache-Control: no-store`` on the API's answers: tickets, comments,
  customers' addresses and attachments are personal data, which no browser
  cache or proxy may keep (a handler that sets its own Cache-Control wins).
- ``Strict-Transport-Security`` when the deployment says it is reached only
  over TLS; the TLS usually ends at a proxy in front, so the service cannot
  tell by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dotmac.ticketing.service.settings import Settings


@dataclass(frozen=True)
class SecurityHeaders:
    """Which headers to add; ``hsts`` is the header's value, None for none."""

    private_prefixes: tuple[str, ...]
    hsts: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, api_prefix: str) -> SecurityHeaders:
        hsts = None
        if settings.hsts:
            hsts = f"max-age={settings.hsts_max_age_seconds}"
            if settings.hsts_include_subdomains:
                hsts += "; includeSubDomains"
        return cls(private_prefixes=(api_prefix.rstrip("/") + "/",), hsts=hsts)

    def apply(self, path: str, headers: MutableHeaders) -> None:
        headers["X-Content-Type-Options"] = "nosniff"
        if path.startswith(self.private_prefixes) and "cache-control" not in headers:
            headers["Cache-Control"] = "no-store"
        if self.hsts is not None:
            headers["Strict-Transport-Security"] = self.hsts


class SecurityHeadersMiddleware:
    """Adds :class:`SecurityHeaders` to every HTTP answer (pure ASGI)."""

    def __init__(self, app: ASGIApp, headers: SecurityHeaders) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.headers.apply(scope["path"], MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecuredFastAPI(FastAPI):
    """A FastAPI application whose every answer carries the security headers.

    ``add_middleware`` would place them inside Starlette's server-error
    layer, which answers an unhandled exception's 500 itself, past every
    user middleware; wrapping the whole stack covers that answer too.
    """

    def __init__(self, *, security_headers: SecurityHeaders, **kwargs: Any) -> None:
        self.security_headers = security_headers
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(
            super().build_middleware_stack(), self.security_headers
        )
