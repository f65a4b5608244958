"""Cross-origin requests from a browser front end, when a deployment allows them."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from dotmac.ticketing.service.settings import Settings


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Starlette's CORS middleware for the configured origins; none: CORS off.

    Off, a browser keeps other origins' pages from reading any answer (the
    same-origin policy); on, only the listed origins may, with the listed
    methods and request headers, and read the listed response headers.
    """
    if not settings.cors_allow_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=list(settings.cors_allow_methods),
        allow_headers=list(settings.cors_allow_headers),
        expose_headers=list(settings.cors_expose_headers),
        allow_credentials=settings.cors_allow_credentials,
        max_age=settings.cors_max_age_seconds,
    )
