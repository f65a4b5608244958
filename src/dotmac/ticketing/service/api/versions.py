"""A ticket's version on the wire: the ``ETag`` it carries, ``If-Match``
and ``?as_of=``, with the patterns the OpenAPI document states for them."""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from dotmac.ticketing.schemas.queries import Moment

# An entity tag as the ETag carries it ("5", W/"5" or bare 5), or *. The
# schema states the same pattern the parser applies (``parse_if_match``).
IF_MATCH_PATTERN = r'^[ \t]*(\*|(W/)?"[0-9]{1,12}"|[0-9]{1,12})[ \t]*$'
# ``as_of``: what ``parse_as_of`` accepts, said in the schema's terms.
AS_OF_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": "^[0-9]{1,64}$"},
        {"type": "string", "format": "date-time", "maxLength": 64},
    ]
}


def etag(version: int) -> str:
    return f'"{version}"'


_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_DIGITS = re.compile(r"[0-9]+")


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: "5"`` (or ``5``, ``W/"5"``) → 5; ``*`` or absent → None."""
    if value is None:
        return None
    if _IF_MATCH.fullmatch(value) is None:
        raise invalid("header", "if-match", 'an entity tag such as "5", or *')
    digits = _DIGITS.search(value)
    return None if digits is None else int(digits.group())


_VERSION = re.compile(r"[0-9]{1,64}")
_MOMENT = TypeAdapter(Moment)


def parse_as_of(value: str | None) -> int | datetime | None:
    """A version number, or an RFC 3339 time with a zone (``AS_OF_SCHEMA``)."""
    if value is None:
        return None
    if _VERSION.fullmatch(value):
        return int(value)
    moment = None
    with suppress(ValidationError):
        moment = _MOMENT.validate_python(value)
    if moment is None:
        raise invalid(
            "query", "as_of", "a version number or an RFC 3339 time with a zone"
        )
    return moment


def invalid(where: str, name: str, expected: str) -> RequestValidationError:
    """A 422 naming one parameter, as FastAPI's own validation answers it."""
    return RequestValidationError(
        [{"loc": (where, name), "msg": f"expected {expected}", "type": "value_error"}]
    )
