"""Validation of the ticket's command arguments (pure functions)."""

from __future__ import annotations

import math
from typing import Any

from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.limits import (
    CUSTOM_FIELD_KEY_MAX,
    CUSTOM_FIELD_VALUE_MAX,
    CUSTOM_FIELDS_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
)


def normalize_tags(tags: list[str]) -> list[str]:
    """Trim, lower-case and de-duplicate tags, keeping their first order."""
    seen: dict[str, None] = {}
    for raw in tags:
        tag = _valid_text("tags", raw, TAG_MAX).lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise InvalidCommand("tags", f"a tag is at most {TAG_MAX} characters")
        seen.setdefault(tag, None)
    if len(seen) > TAGS_MAX:
        raise InvalidCommand("tags", f"at most {TAGS_MAX} tags")
    return list(seen)


def _valid_title(title: str) -> str:
    return _valid_text("title", title, TITLE_MAX, required=True)


def _valid_text(
    field: str,
    value: str,
    max_length: int,
    *,
    required: bool = False,
    strip: bool = True,
) -> str:
    text = value.strip() if strip else value
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL; refuse it before it reaches a stream.
        raise InvalidCommand(field, "must not contain NUL characters")
    if required and not text.strip():
        raise InvalidCommand(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidCommand(field, f"at most {max_length} characters")
    return text


def _optional_text(field: str, value: str | None, max_length: int) -> str | None:
    if value is None:
        return None
    text = _valid_text(field, value, max_length)
    return text or None


def _valid_custom_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if len(fields) > CUSTOM_FIELDS_MAX:
        raise InvalidCommand("custom_fields", f"at most {CUSTOM_FIELDS_MAX} fields")
    for key, value in fields.items():
        if not key or len(key) > CUSTOM_FIELD_KEY_MAX or "\x00" in key:
            raise InvalidCommand(
                "custom_fields",
                f"keys have 1 to {CUSTOM_FIELD_KEY_MAX} characters, none of them NUL",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidCommand(f"custom_fields.{key}", "must be a finite number")
        if isinstance(value, str) and "\x00" in value:
            raise InvalidCommand(f"custom_fields.{key}", "must not contain NUL")
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise InvalidCommand(
                f"custom_fields.{key}", "must be a string, number, boolean or null"
            )
        if isinstance(value, str) and len(value) > CUSTOM_FIELD_VALUE_MAX:
            raise InvalidCommand(
                f"custom_fields.{key}", f"at most {CUSTOM_FIELD_VALUE_MAX} characters"
            )
    return dict(fields)
