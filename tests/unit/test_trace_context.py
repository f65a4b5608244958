"""W3C traceparent: what is accepted, what a child keeps, what events keep."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dotmac.ticketing.domain.trace_context import (
    new_trace,
    parse_traceparent,
    stamp,
    trace_of,
)

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_header_is_read_and_written_back_the_same() -> None:
    parsed = parse_traceparent(VALID)

    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.flags) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        "01",
    )
    assert str(parsed) == VALID
    assert parse_traceparent(VALID.upper()) == parsed


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    ],
)
def test_an_absent_or_invalid_header_is_ignored(header: str | None) -> None:
    assert parse_traceparent(header) is None


def test_a_child_is_a_new_span_of_the_same_trace() -> None:
    parent = parse_traceparent(VALID)
    assert parent is not None

    child = parent.child()

    assert child.trace_id == parent.trace_id and child.flags == parent.flags
    assert child.span_id != parent.span_id
    assert parse_traceparent(str(child)) == child


def test_a_new_trace_is_valid_and_new_each_time() -> None:
    first, second = new_trace(), new_trace()

    assert parse_traceparent(str(first)) == first
    assert first.trace_id != second.trace_id


def test_an_event_keeps_its_trace_and_one_without_has_none() -> None:
    traced, untraced = SimpleNamespace(title="a"), SimpleNamespace(title="b")

    stamp(traced, VALID)
    stamp(untraced, None)

    assert trace_of(traced) == VALID
    assert trace_of(untraced) is None
