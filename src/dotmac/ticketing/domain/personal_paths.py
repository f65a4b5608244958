"""Paths into an event's state, and what taking data out at them leaves.

A path names a place in a nested state: ``"comments.*.body"``, where ``*``
is every item of a list or every value of a mapping. The functions below
take the values at some paths out of a state, put them back, or put
``ERASED`` in their place (``domain.personal_data`` says which paths hold
personal data). They never change the state they are given: an event's
state is shared with its aggregate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: What a personal field reads as once its subject's key is destroyed.
ERASED = "[erased]"

#: A concrete place in a state: mapping keys and list indexes.
Path = tuple[str | int, ...]


def personal_paths(state: Mapping[str, Any], patterns: Sequence[str]) -> list[Path]:
    """Every concrete path of ``patterns`` that holds a value (not None)."""
    found: list[Path] = []
    for pattern in patterns:
        found.extend(_expand(state, pattern.split("."), ()))
    return found


def take_out(
    state: Mapping[str, Any], patterns: Sequence[str]
) -> tuple[dict[str, Any], list[Path], list[Any]]:
    """The state without its personal values (None in their place), their
    paths, and the values; ``state`` itself is not changed."""
    paths = personal_paths(state, patterns)
    values = [_get(state, path) for path in paths]
    clear = dict(state)
    for path in paths:
        clear = _replaced(clear, path, None)
    return clear, paths, values


def put_back(
    state: Mapping[str, Any], paths: Sequence[Path], values: Sequence[Any]
) -> dict[str, Any]:
    """The state with each value at its path again."""
    restored = dict(state)
    for path, value in zip(paths, values, strict=True):
        restored = _replaced(restored, path, value)
    return restored


def erased(state: Mapping[str, Any], paths: Sequence[Path]) -> dict[str, Any]:
    """The state with ``ERASED`` at each path: what a destroyed key leaves."""
    return put_back(state, paths, [ERASED] * len(paths))


def _expand(node: Any, segments: list[str], at: Path) -> Iterator[Path]:
    if not segments:
        if node is not None:
            yield at
        return
    head, rest = segments[0], segments[1:]
    if head == "*":
        if isinstance(node, Mapping):
            for key in node:
                yield from _expand(node[key], rest, (*at, key))
        elif isinstance(node, list | tuple):
            for index, item in enumerate(node):
                yield from _expand(item, rest, (*at, index))
    elif isinstance(node, Mapping) and head in node:
        yield from _expand(node[head], rest, (*at, head))


def _get(node: Any, path: Path) -> Any:
    for step in path:
        node = node[step]
    return node


def _replaced(node: Any, path: Path, value: Any) -> Any:
    """A copy of ``node`` with ``value`` at ``path``, copying only along it:
    the original (an event's state, shared with its aggregate) is kept."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list | tuple):
        items = list(node)
        items[int(head)] = _replaced(items[int(head)], rest, value)
        return items
    copy = dict(node)
    copy[head] = _replaced(copy.get(head), rest, value)
    return copy
