"""The route template a request matched (``/api/v1/tickets/{ticket_id}``).

For labels and span names: never the path itself, whose ids would make them
unbounded. The route a request matched is the one its router declared,
whose path lacks the prefix the router was included under; ``prefixes``
gives that prefix for each router's routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Requests no route matched (404s of unknown paths): one value for all.
UNMATCHED = "unmatched"


class RouteTemplates:
    def __init__(self, prefixes: Mapping[str, Sequence[Any]]) -> None:
        self._templates = {
            id(route): prefix + route.path
            for prefix, routes in prefixes.items()
            for route in routes
        }

    def __call__(self, scope: Mapping[str, Any]) -> str:
        """The whole template of the route ``scope`` matched (after routing)."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        return self._templates.get(id(route), path) if path else UNMATCHED
