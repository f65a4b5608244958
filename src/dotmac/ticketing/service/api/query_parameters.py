"""Query parameters a route does not declare are refused, not ignored.

A misspelt filter (``?assignee=ana`` for ``?assignee_id=ana``) silently
ignored answers every ticket, which looks like a result; a 422 naming the
parameter tells the caller what went wrong.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError


def _declared(dependant: Dependant) -> set[str]:
    """The query parameters of a route and of every dependency it has."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _declared(dependency)
    return names


def refuse_unknown_query_parameters(request: Request) -> None:
    """A dependency: 422 naming each query parameter the route does not take."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    unknown = sorted(set(request.query_params) - _declared(dependant))
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
