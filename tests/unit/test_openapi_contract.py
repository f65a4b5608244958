"""What the served document and the parsers say about parameters agree."""

from __future__ import annotations

import re

import pytest
from fastapi.exceptions import RequestValidationError

from dotmac.ticketing.service.api.openapi import without_null
from dotmac.ticketing.service.api.versions import (
    IF_MATCH_PATTERN,
    parse_as_of,
    parse_if_match,
)


def test_an_optional_parameter_is_documented_without_null() -> None:
    schema = {
        "anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}],
        "title": "If-Match",
    }
    assert without_null(schema) == {
        "type": "string",
        "maxLength": 64,
        "title": "If-Match",
    }
    several = {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}
    assert without_null(several) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert without_null({"type": "string"}) == {"type": "string"}


@pytest.mark.parametrize(
    ("value", "version"),
    [('"5"', 5), ('W/"5"', 5), ("5", 5), ("*", None), (' "12" ', 12)],
)
def test_if_match_the_pattern_admits_is_parsed(value: str, version: int | None) -> None:
    assert re.search(IF_MATCH_PATTERN, value)
    assert parse_if_match(value) == version


@pytest.mark.parametrize("value", ["", "null", '"5', 'W/"x"', '"1", "2"', "1" * 13])
def test_if_match_the_pattern_refuses_is_refused(value: str) -> None:
    assert not re.search(IF_MATCH_PATTERN, value)
    with pytest.raises(RequestValidationError):
        parse_if_match(value)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-31T12:00:00Z",
        "2026-01-31t12:00:00.123456789+05:30",
        "2026-01-31T12:00:00-23:59",
    ],
)
def test_as_of_takes_rfc_3339_times(value: str) -> None:
    assert parse_as_of(value) is not None


@pytest.mark.parametrize(
    "value", ["0.5", "1e9", "2026-01-31", "2026-01-31T12:00:00", "soon"]
)
def test_as_of_refuses_what_is_neither_a_version_nor_a_time(value: str) -> None:
    with pytest.raises(RequestValidationError):
        parse_as_of(value)
