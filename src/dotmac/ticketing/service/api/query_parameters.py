"""Query parameters a route does not declare are refused, not ignored.

A misspelt filter (``?assignee=ana`` for ``?assignee_id=ana``) silently
ignored answers every ticket, which looks like a result; a 422 naming the
parameter tells the caller what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError


def _declared(
    dependant: Dependant, overrides: Mapping[Callable[..., Any], Callable[..., Any]]
) -> set[str]:
    """The query parameters of a route and of every dependency it has.

    A dependency the app overrides (``app.dependency_overrides``) counts
    with its replacement's parameters: those are what FastAPI reads.
    """
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        override = overrides.get(dependency.call) if dependency.call else None
        if override is not None:
            dependency = get_dependant(path=dependency.path or "", call=override)
        names |= _declared(dependency, overrides)
    return names


def refuse_unknown_query_parameters(request: Request) -> None:
    """A dependency: 422 naming each query parameter the route does not take."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    overrides = getattr(request.app, "dependency_overrides", None) or {}
    unknown = sorted(set(request.query_params) - _declared(dependant, overrides))
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "unknown query parameter",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )
