"""Dependency overrides made in a copy of routers, for one inclusion.

``app.dependency_overrides`` swaps a dependency for every route of an app,
at request time. A host application that mounts the ticket routes behind
its own auth needs the swap for those routes only, and needs its own
dependencies in the routes' signatures, as if they had been written there:
their headers and query parameters documented in its OpenAPI document and
declared (the routes refuse undeclared query parameters). ``bind`` copies
routes and replaces, anywhere in each route's dependencies, every
overridden function by its replacement.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, get_args, get_origin

from fastapi import APIRouter, params
from fastapi.routing import APIRoute

Dependency = Callable[..., Any]

# What a copy of an APIRoute keeps, passed on as ``add_api_route`` takes it.
# The router's own settings (prefix, tags, responses, dependencies) are in
# the route already.
_ROUTE_OPTIONS = (
    "response_model",
    "status_code",
    "tags",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "name",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
)


def bind(
    routers: Iterable[APIRouter], overrides: Mapping[Dependency, Dependency]
) -> APIRouter:
    """One router with the routes of ``routers``, ``overrides`` made in them."""
    rebind = _Rebinder(overrides)
    bound = APIRouter()
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"cannot bind {route!r}: only API routes")
            bound.add_api_route(
                route.path,
                rebind.call(route.endpoint),
                dependencies=[rebind.depends(d) for d in route.dependencies],
                route_class_override=type(route),
                **{option: getattr(route, option) for option in _ROUTE_OPTIONS},
            )
    return bound


class _Rebinder:
    def __init__(self, overrides: Mapping[Dependency, Dependency]) -> None:
        self._overrides = dict(overrides)
        # One copy per function: FastAPI runs a dependency once per request.
        self._copies: dict[Dependency, Dependency] = {}

    def call(self, call: Dependency) -> Dependency:
        """``call``, or a copy whose signature depends on the replacements."""
        if call in self._overrides:
            return self._overrides[call]
        if call not in self._copies:
            signature = inspect.signature(call, eval_str=True)
            parameters = [self._parameter(p) for p in signature.parameters.values()]
            unchanged = all(
                new is old
                for new, old in zip(
                    parameters, signature.parameters.values(), strict=True
                )
            )
            self._copies[call] = (
                call
                if unchanged
                else _calling(call, signature.replace(parameters=parameters))
            )
        return self._copies[call]

    def depends(self, depends: params.Depends) -> params.Depends:
        if depends.dependency is None:
            return depends
        call = self.call(depends.dependency)
        if call is depends.dependency:
            return depends
        rebound = copy.copy(depends)
        # Depends is a frozen dataclass in recent FastAPI, a plain class before.
        object.__setattr__(rebound, "dependency", call)
        return rebound

    def _parameter(self, parameter: inspect.Parameter) -> inspect.Parameter:
        annotation, default = parameter.annotation, parameter.default
        if get_origin(annotation) is Annotated:
            base, *metadata = get_args(annotation)
            rebound = [self._metadata(m) for m in metadata]
            if any(new is not old for new, old in zip(rebound, metadata, strict=True)):
                annotation = Annotated[(base, *rebound)]
        if isinstance(default, params.Depends):
            default = self.depends(default)
        if annotation is parameter.annotation and default is parameter.default:
            return parameter
        return parameter.replace(annotation=annotation, default=default)

    def _metadata(self, item: Any) -> Any:
        return self.depends(item) if isinstance(item, params.Depends) else item


def _calling(call: Dependency, signature: inspect.Signature) -> Dependency:
    """A function that calls ``call``, with ``signature`` for FastAPI to read.

    FastAPI passes every argument by name; ``async`` stays ``async``, so the
    copy runs where the original would (the event loop or a worker thread).
    """
    if inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call):
        raise TypeError(f"cannot bind {call!r}: a dependency with yield")
    copied: Dependency
    if _is_async(call):

        async def copied_async(**arguments: Any) -> Any:
            return await call(**arguments)

        copied = copied_async
    else:

        def copied_sync(**arguments: Any) -> Any:
            return call(**arguments)

        copied = copied_sync
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        if hasattr(call, attribute):
            setattr(copied, attribute, getattr(call, attribute))
    setattr(copied, "__signature__", signature)  # noqa: B010
    return copied


def _is_async(call: Dependency) -> bool:
    if inspect.isfunction(call) or inspect.ismethod(call) or inspect.isclass(call):
        return inspect.iscoroutinefunction(call)
    # An instance with ``__call__`` (FastAPI's security schemes are).
    return inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
