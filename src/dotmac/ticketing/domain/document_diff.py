"""What changed between two JSON documents, as JSON-pointer operations.

The settings history (``GET /api/v1/settings/history``) shows each
version's changes against the one before. A change is one of RFC 6902's
``add``, ``remove`` and ``replace`` at an RFC 6901 pointer, with the value
after it and the one before it (RFC 6902 keeps no previous value; an audit
needs it). Objects are compared key by key, lists index by index (a list
that grows gets ``add`` at its new indexes, one that shrinks ``remove``
from its end), anything else by value and JSON type: ``1`` and ``true``
differ, ``1`` and ``1.0`` do not. Applied in order, the changes turn the
earlier document into the later one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ChangeOp = Literal["add", "remove", "replace"]


class _Absent:
    """The value an ``add`` had before, or a ``remove`` has after: none."""

    def __repr__(self) -> str:
        return "ABSENT"


#: Stands for the missing side of an ``add`` or a ``remove``.
ABSENT: Any = _Absent()


@dataclass(frozen=True)
class DocumentChange:
    """One difference: ``op`` at ``path``, ``value`` after, ``previous`` before.

    ``parts`` are the pointer's reference tokens unescaped (keys and list
    indexes), for reading the values at the same place elsewhere.
    """

    op: ChangeOp
    parts: tuple[str | int, ...]
    value: Any = ABSENT
    previous: Any = ABSENT

    @property
    def path(self) -> str:
        return json_pointer(self.parts)


def json_pointer(parts: Sequence[str | int]) -> str:
    """The RFC 6901 pointer of ``parts`` (``~`` and ``/`` escaped)."""
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts
    )


def value_at(document: Any, parts: Sequence[str | int]) -> Any:
    """What is at ``parts`` of ``document`` (``KeyError``/``IndexError`` if
    nothing is)."""
    value = document
    for part in parts:
        value = value[part]
    return value


def diff_documents(before: Any, after: Any) -> list[DocumentChange]:
    """The changes that turn ``before`` into ``after``; none when equal."""
    return list(_diff(before, after, ()))


def _diff(
    before: Any, after: Any, parts: tuple[str | int, ...]
) -> Iterator[DocumentChange]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        yield from _diff_objects(before, after, parts)
    elif _is_list(before) and _is_list(after):
        yield from _diff_lists(before, after, parts)
    elif not _same_value(before, after):
        yield DocumentChange("replace", parts, value=after, previous=before)


def _diff_objects(
    before: Mapping[str, Any], after: Mapping[str, Any], parts: tuple[str | int, ...]
) -> Iterator[DocumentChange]:
    # The earlier document's key order, then the keys the later one added.
    for key in before:
        if key in after:
            yield from _diff(before[key], after[key], (*parts, key))
        else:
            yield DocumentChange("remove", (*parts, key), previous=before[key])
    for key in after:
        if key not in before:
            yield DocumentChange("add", (*parts, key), value=after[key])


def _diff_lists(
    before: Sequence[Any], after: Sequence[Any], parts: tuple[str | int, ...]
) -> Iterator[DocumentChange]:
    common = min(len(before), len(after))
    for index in range(common):
        yield from _diff(before[index], after[index], (*parts, index))
    for index in range(common, len(after)):
        yield DocumentChange("add", (*parts, index), value=after[index])
    # From the end, so that each index still names its item when applied.
    for index in reversed(range(common, len(before))):
        yield DocumentChange("remove", (*parts, index), previous=before[index])


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _same_value(before: Any, after: Any) -> bool:
    """Equal as JSON: Python's ``True == 1`` is a change of type in JSON."""
    if isinstance(before, bool) or isinstance(after, bool):
        return type(before) is type(after) and before == after
    return bool(before == after)
