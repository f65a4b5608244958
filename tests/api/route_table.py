"""The app's routes and document without a database, for collection time.

Tests that generate one case per route (or per operation of the OpenAPI
document) need the route table before any fixture runs. No request is ever
sent to this app; the tests run against the real one and check that both
have the same routes.
"""

from __future__ import annotations

import typing
from typing import Any

from fastapi import FastAPI

from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings


class RouteTableOnly:
    """Stands in for the ticketing core while the route table is read."""

    def __getattr__(self, name: str) -> RouteTableOnly:
        return RouteTableOnly()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the route-table app must not serve requests")


def route_table_app(settings: Settings) -> FastAPI:
    """The service's app over a stand-in core: routes and document only (and
    no bulk runner, which would read the core's job tables)."""
    return create_app(
        settings.model_copy(update={"bulk_runner": False}),
        ticketing=typing.cast(Ticketing, RouteTableOnly()),
    )
