"""Which fields are personal, and taking them out, back, or erased."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dotmac.ticketing.domain.personal_data import (
    ERASED,
    EVENT_FIELDS,
    erased,
    fields_of,
    personal_paths,
    put_back,
    take_out,
)
from dotmac.ticketing.domain.ticket import Ticket

STATE: dict[str, Any] = {
    "title": "Printer",
    "customer_email": None,
    "custom_fields": {"seat": "3B", "vip": True},
    "comments": [{"id": "c1", "body": "hi"}, {"id": "c2", "body": "there"}],
    "status": "open",
}
PATTERNS = ("title", "customer_email", "custom_fields.*", "comments.*.body")


def test_paths_name_each_value_present_and_skip_nones() -> None:
    assert personal_paths(STATE, PATTERNS) == [
        ("title",),
        ("custom_fields", "seat"),
        ("custom_fields", "vip"),
        ("comments", 0, "body"),
        ("comments", 1, "body"),
    ]


def test_taking_out_leaves_the_structure_and_the_facts() -> None:
    clear, paths, values = take_out(STATE, PATTERNS)
    assert values == ["Printer", "3B", True, "hi", "there"]
    assert clear["status"] == "open"
    assert clear["custom_fields"] == {"seat": None, "vip": None}
    assert [c["id"] for c in clear["comments"]] == ["c1", "c2"]
    assert put_back(clear, paths, values) == STATE


def test_the_given_state_is_never_changed() -> None:
    copy = {**STATE, "comments": [dict(c) for c in STATE["comments"]]}
    clear, paths, _ = take_out(STATE, PATTERNS)
    erased(clear, paths)
    assert copy == STATE


def test_erased_marks_exactly_the_paths() -> None:
    clear, paths, _ = take_out(STATE, PATTERNS)
    gone = erased(clear, paths)
    assert gone["title"] == ERASED
    assert gone["customer_email"] is None  # nothing was there to erase
    assert gone["custom_fields"] == {"seat": ERASED, "vip": ERASED}
    assert [c["body"] for c in gone["comments"]] == [ERASED, ERASED]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3))
def test_any_state_round_trips(state: dict[str, Any]) -> None:
    patterns = ("a", "b.*", "c.*.*")
    clear, paths, values = take_out(state, patterns)
    assert put_back(clear, paths, values) == state
    assert personal_paths(clear, patterns) == []


def _annotations(event_class: type) -> dict[str, str]:
    """Each field of the event and its annotation, as written."""
    return {f.name: str(f.type) for f in dataclasses.fields(event_class)}


def test_every_named_field_is_a_field_of_its_event() -> None:
    """The table stays in step with the events' code: renaming a field
    without renaming it here would leave it in clear."""
    for event_class, patterns in EVENT_FIELDS.items():
        for pattern in patterns:
            field = pattern.split(".")[0]
            assert field in _annotations(event_class), (event_class, pattern)


def test_free_text_of_every_event_is_named() -> None:
    """A new event with a text field must say whether it is personal."""
    clear_text = {
        # Facts, ids and machine-made text: kept in clear on purpose.
        "tenant_id", "customer_id", "comment_id", "attachment_id", "content_type",
        "sha256", "category", "previous_category", "priority", "previous_priority",
        "status", "previous_status", "channel", "assignee_id", "previous_assignee_id",
        "team", "previous_team", "target", "outcome", "rule", "workflow_type",
        "step", "next_step", "error", "resolution_code", "into_ticket_id",
        "into_assignee_id", "linked_ticket_id", "relation", "merged_from",
        "correlation_id", "causation_id", "originator_topic", "subject_id",
        "request_id", "number",
        # A time entry's id, whose time it is and the kind of work.
        "entry_id", "agent_id", "work_type",
        # Labels the desk sets, and workflow step names: routing, analytics.
        "tags", "steps", "skipped",
        # What the desk decided and why (SLA policy and its explanation, an
        # assignment's loads, a status change's cause, a step's actions).
        "policy", "explanation", "assignment", "cause", "actions",
        # An escalation rule's own wording; a workflow's cancellation cause.
        "reason",
    }  # fmt: skip
    named = {
        (cls, pattern.split(".")[0])
        for cls, patterns in EVENT_FIELDS.items()
        for pattern in patterns
    }
    named_names = {(cls.__name__, field) for cls, field in named}
    missing: list[tuple[str, str]] = []
    for event_class in (
        value
        for value in vars(Ticket).values()
        if isinstance(value, type) and issubclass(value, Ticket.Event)
    ):
        for name, hint in _annotations(event_class).items():
            if "str" not in hint or "dict[str, str]" in hint or name in clear_text:
                continue
            missing.append((event_class.__name__, name))
    unnamed = [m for m in missing if m not in named_names]
    assert not unnamed, repr(unnamed)


def test_a_snapshot_seals_the_tickets_state() -> None:
    assert fields_of(Ticket.Snapshot)[0] == "state.title"
    assert fields_of(Ticket.SLAStarted) == ()
