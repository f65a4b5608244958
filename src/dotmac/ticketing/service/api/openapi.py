"""The OpenAPI document, as the contract the service is tested against.

FastAPI derives the document from the routes; this adds what it leaves
out or gets wrong for this API, in one place:

- A parameter typed ``X | None`` (optional) is documented by FastAPI as
  ``anyOf: [X, null]``; a query or header parameter cannot be null, only
  absent, and a client generating from the document sends ``null`` as the
  text "null". The ``null`` branch is dropped: the parameter stays optional.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_NULL = {"type": "null"}
_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter schema without its ``null`` alternative."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or _NULL not in branches:
        return schema
    rest = [branch for branch in branches if branch != _NULL]
    fixed = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(rest) == 1:
        return {**rest[0], **fixed}
    return {**fixed, "anyOf": rest}


def contract(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every parameter schema fixed (in place)."""
    for path_item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            for parameter in operation.get("parameters", ()):
                if "schema" in parameter:
                    parameter["schema"] = without_null(parameter["schema"])
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve ``contract(...)`` of the generated document at /openapi.json."""
    generate = app.openapi  # FastAPI's: cached until the routes change

    def openapi() -> dict[str, Any]:
        # In place and idempotent, so the cached document is fixed once.
        return contract(generate())

    app.openapi = openapi  # type: ignore[method-assign]
