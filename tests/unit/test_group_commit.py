"""Group commit's coordination and conflict rule, without a database."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import pytest

from dotmac.ticketing.store.group_commit import (
    GroupCommit,
    NotWritten,
    PendingSave,
    admitted,
)


class Conflict(Exception):
    """The error the store below gives a save it refuses."""


class SlowStore:
    """Writes batches one at a time, each held open until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self._ids = count(1)

    def write(self, batch: Sequence[PendingSave[str]]) -> None:
        self.entered.set()
        self.gate.wait(5)
        self.batches.append([e for save in batch for e in save.events])
        for save in batch:
            if "conflict" in save.events:
                save.fail(Conflict())
            else:
                save.succeed([next(self._ids) for _ in save.events])


def test_saves_arriving_during_a_commit_are_written_together() -> None:
    store = SlowStore()
    group = GroupCommit(store.write)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(group.submit, ["a"])
        assert store.entered.wait(5)
        later = [pool.submit(group.submit, [f"b{i}"]) for i in range(8)]
        while len(group._waiting) < 8:
            threading.Event().wait(0.001)
        store.gate.set()
        results = [first.result(5), *(f.result(5) for f in later)]

    assert store.batches[0] == ["a"]
    assert sorted(store.batches[1]) == [f"b{i}" for i in range(8)]
    assert len(store.batches) == 2
    assert sorted(i for ids in results for i in ids) == list(range(1, 10))


def test_a_conflict_fails_only_its_own_save() -> None:
    store = SlowStore()
    store.gate.set()
    group = GroupCommit(store.write)

    def save(events: list[str]) -> Sequence[int] | Exception:
        try:
            return group.submit(events)
        except Conflict as error:
            return error

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(
            pool.map(save, [["x1", "x2"], ["conflict"], ["y"], ["conflict"], ["z"]])
        )

    assert [type(o) for o in outcomes] == [list, Conflict, list, Conflict, list]
    assert [len(o) for o in outcomes if isinstance(o, list)] == [2, 1, 1]


def test_a_failing_batch_fails_each_of_its_saves_and_the_next_batch_runs() -> None:
    calls = count()

    def write(batch: Sequence[PendingSave[str]]) -> None:
        if next(calls) == 0:
            raise ConnectionError("server went away")
        for save in batch:
            save.succeed([1])

    group = GroupCommit(write)
    with pytest.raises(ConnectionError):
        group.submit(["a"])
    assert group.submit(["b"]) == [1]


def test_a_writer_that_forgets_a_save_is_an_error_not_a_hang() -> None:
    group: GroupCommit[str] = GroupCommit(lambda batch: None)
    with pytest.raises(NotWritten):
        group.submit(["a"])


def test_batches_are_bounded() -> None:
    store = SlowStore()
    group = GroupCommit(store.write, max_batch=3)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(group.submit, ["lead"])
        assert store.entered.wait(5)
        rest = [pool.submit(group.submit, [str(i)]) for i in range(7)]
        while len(group._waiting) < 7:
            threading.Event().wait(0.001)
        store.gate.set()
        for future in (first, *rest):
            future.result(5)
    assert [len(b) for b in store.batches] == [1, 3, 3, 1]


def test_many_threads_each_get_their_own_ids() -> None:
    store = SlowStore()
    store.gate.set()
    group = GroupCommit(store.write)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: group.submit([i, i]), map(str, range(400))))
    ids = [i for r in results for i in r]
    assert sorted(ids) == list(range(1, 801))
    assert sum(len(b) for b in store.batches) == 800


class TestAdmitted:
    def test_a_save_touching_a_stored_version_is_refused(self) -> None:
        assert admitted([[("a", 1)], [("b", 2), ("b", 3)]], {("b", 3)}) == [
            True,
            False,
        ]

    def test_the_first_of_two_saves_of_one_version_wins(self) -> None:
        assert admitted([[("a", 2)], [("a", 2)], [("a", 3)]], set()) == [
            True,
            False,
            True,
        ]

    def test_a_refused_save_takes_no_keys(self) -> None:
        assert admitted([[("a", 1), ("b", 1)], [("b", 1)]], {("a", 1)}) == [
            False,
            True,
        ]

    def test_a_save_repeating_a_key_is_refused(self) -> None:
        assert admitted([[("a", 1), ("a", 1)]], set()) == [False]


class TooLate(Exception):
    """What a save whose deadline passed while it waited fails with."""


def test_a_save_whose_deadline_passed_while_it_waited_is_not_written() -> None:
    store = SlowStore()
    group = GroupCommit(store.write, too_late=TooLate)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(group.submit, ["a"])
        assert store.entered.wait(5)
        # Due now: by the time the first commit ends, it has passed.
        late = pool.submit(group.submit, ["late"], deadline=time.monotonic())
        timely = pool.submit(group.submit, ["timely"], deadline=time.monotonic() + 60)
        while len(group._waiting) < 2:
            threading.Event().wait(0.001)
        store.gate.set()
        first.result(5)
        timely.result(5)
        with pytest.raises(TooLate):
            late.result(5)

    assert store.batches == [["a"], ["timely"]]
