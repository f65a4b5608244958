"""domain.document_diff: what changed between two documents, as JSON pointers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dotmac.ticketing.domain.document_diff import (
    ABSENT,
    DocumentChange,
    diff_documents,
    json_pointer,
    value_at,
)
from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document


def ops(before: Any, after: Any) -> list[tuple[str, str, Any, Any]]:
    """The changes as ``(op, path, value, previous)``."""
    return [(c.op, c.path, c.value, c.previous) for c in diff_documents(before, after)]


def applied(document: Any, changes: list[DocumentChange]) -> Any:
    """``document`` with ``changes`` applied in order, as RFC 6902 would."""
    result = copy.deepcopy(document)
    for change in changes:
        *parents, last = change.parts
        target = value_at(result, parents)
        if change.op == "remove":
            del target[last]
        elif change.op == "add" and isinstance(target, list):
            target.insert(int(last), change.value)
        else:
            target[last] = change.value
    return result


@pytest.mark.parametrize(
    "document",
    [{}, {"a": 1}, {"a": {"b": [1, {"c": None}]}}, default_settings_document()],
    ids=["empty", "flat", "nested", "defaults"],
)
def test_equal_documents_have_no_changes(document: dict[str, Any]) -> None:
    assert diff_documents(document, copy.deepcopy(document)) == []


def test_a_changed_value_is_a_replace_with_both_values() -> None:
    assert ops({"a": 1, "b": "x"}, {"a": 2, "b": "x"}) == [("replace", "/a", 2, 1)]


def test_keys_added_and_removed() -> None:
    before = {"kept": 1, "gone": {"deep": True}}
    after = {"kept": 1, "new": [1, 2]}
    assert ops(before, after) == [
        ("remove", "/gone", ABSENT, {"deep": True}),
        ("add", "/new", [1, 2], ABSENT),
    ]


def test_nested_objects_are_compared_key_by_key() -> None:
    before = {"sla_config": {"critical": {"response": 15, "resolution": 240}}}
    after = {"sla_config": {"critical": {"response": 10, "resolution": 240}}}
    assert ops(before, after) == [
        ("replace", "/sla_config/critical/response", 10, 15),
    ]


def test_lists_are_compared_index_by_index() -> None:
    before = {"teams": [{"name": "A", "agents": []}, {"name": "B", "agents": []}]}
    after = {"teams": [{"name": "A", "agents": [{"id": "x"}]}, {"name": "C"}]}
    assert ops(before, after) == [
        ("add", "/teams/0/agents/0", {"id": "x"}, ABSENT),
        ("replace", "/teams/1/name", "C", "B"),
        ("remove", "/teams/1/agents", ABSENT, []),
    ]


def test_a_longer_list_adds_at_its_new_indexes() -> None:
    assert ops({"l": [1]}, {"l": [1, 2, 3]}) == [
        ("add", "/l/1", 2, ABSENT),
        ("add", "/l/2", 3, ABSENT),
    ]


def test_a_shorter_list_removes_from_its_end() -> None:
    # Highest index first: applied in order, each index still names its item.
    assert ops({"l": [1, 2, 3, 4]}, {"l": [9]}) == [
        ("replace", "/l/0", 9, 1),
        ("remove", "/l/3", ABSENT, 4),
        ("remove", "/l/2", ABSENT, 3),
        ("remove", "/l/1", ABSENT, 2),
    ]


def test_a_change_of_kind_replaces_the_whole_value() -> None:
    hours = {"timezone": "UTC", "week": {"mon": ["08:00", "18:00"]}}
    assert ops({"business_hours": "24x7"}, {"business_hours": hours}) == [
        ("replace", "/business_hours", hours, "24x7"),
    ]
    assert ops({"x": [1]}, {"x": {"0": 1}}) == [("replace", "/x", {"0": 1}, [1])]


def test_values_are_compared_as_json() -> None:
    # Python's True == 1, JSON's true is not 1; 1 and 1.0 are one number.
    assert ops({"a": 1}, {"a": True}) == [("replace", "/a", True, 1)]
    assert ops({"a": [False]}, {"a": [0]}) == [("replace", "/a/0", 0, False)]
    assert ops({"a": 1}, {"a": 1.0}) == []
    assert ops({"a": None}, {"a": 0}) == [("replace", "/a", 0, None)]


def test_pointers_escape_tilde_and_slash() -> None:
    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    assert ops({"x/y": 1}, {"x/y": 2}) == [("replace", "/x~1y", 2, 1)]
    assert json_pointer([]) == ""


def test_the_changes_applied_in_order_give_the_later_document() -> None:
    before = default_settings_document()
    after = copy.deepcopy(before)
    after["teams"] = [{"name": "Ops", "agents": [{"id": "a"}, {"id": "b"}]}]
    after["sla_config"]["critical"]["response"] = 5
    after["sla_config"]["policies"] = [{"name": "gold"}]
    after["workflows"]["options"] = {"billing": {"approval_above": 100}}
    del after["merges"]
    after["integrations"] = {"crm": {"url": "https://crm.example.com"}}
    changes = diff_documents(before, after)
    assert applied(before, changes) == after
    assert applied(after, diff_documents(after, before)) == before
    shrunk = copy.deepcopy(after)
    shrunk["teams"][0]["agents"] = [{"id": "c"}]
    assert applied(after, diff_documents(after, shrunk)) == shrunk


def test_value_at_reads_the_place_a_change_names() -> None:
    document = {"teams": [{"name": "Ops", "agents": [{"id": "a"}]}]}
    assert value_at(document, ("teams", 0, "agents", 0, "id")) == "a"
    assert value_at(document, ()) is document
    with pytest.raises(KeyError):
        value_at(document, ("nothing",))
