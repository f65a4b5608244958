"""Group commit: the saves that arrive while a commit is in flight go together.

Every insert into the event store takes the table's lock (readers tailing
the notification log must never skip an event committed out of order), so
one process's saves would otherwise wait in line for one lock and one
commit each. Here the first save to arrive leads: it writes every save
waiting at that moment in one transaction, then hands the lead to the
first save that arrived meanwhile. Nobody waits longer than one commit in
flight plus its own, and under load each commit carries many saves.

This module holds the coordination and the conflict rule, nothing of the
database: ``store.batch_recorder`` writes the batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence, Set
from dataclasses import dataclass, field
from typing import Generic, TypeVar

E = TypeVar("E")
A = TypeVar("A")
K = TypeVar("K", bound=Hashable)

#: At most this many saves per transaction: a bound on one commit's size
#: and on how long the leader's own caller waits.
MAX_BATCH = 256


class NotWritten(RuntimeError):
    """A batch writer returned without an outcome for one of its saves."""


@dataclass(eq=False)
class PendingSave(Generic[E, A]):
    """One caller's events, waiting to be written, then their outcome."""

    events: Sequence[E]
    #: What the writer records with the events, in their transaction.
    alongside: Sequence[A] = ()
    #: ``time.monotonic()`` after which the save must not be written.
    deadline: float | None = None
    #: The events' notification ids once committed, or why they were not.
    outcome: Sequence[int] | BaseException | None = None
    _woken: threading.Event = field(default_factory=threading.Event, repr=False)

    def succeed(self, notification_ids: Sequence[int]) -> None:
        self.outcome = notification_ids

    def fail(self, error: BaseException) -> None:
        self.outcome = error

    def result(self) -> Sequence[int]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        if self.outcome is None:
            raise NotWritten("the batch ended without this save's outcome")
        return self.outcome


BatchWriter = Callable[[Sequence[PendingSave[E, A]]], None]


class GroupCommit(Generic[E, A]):
    """Leader/follower batching of saves from a process's threads.

    ``write`` gets a batch and must give every save in it an outcome: the
    notification ids of its events, or the error that stopped it (a
    version conflict fails only its own save).
    """

    def __init__(
        self,
        write: BatchWriter[E, A],
        *,
        max_batch: int = MAX_BATCH,
        too_late: Callable[[], BaseException] = lambda: NotWritten(
            "its deadline passed before its batch was written"
        ),
    ) -> None:
        self._write = write
        # What a save whose deadline passed while it waited fails with.
        self._too_late = too_late
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._waiting: list[PendingSave[E, A]] = []
        # True while some thread leads; then and only then may saves wait.
        self._leading = False

    def submit(
        self,
        events: Sequence[E],
        alongside: Sequence[A] = (),
        *,
        deadline: float | None = None,
    ) -> Sequence[int]:
        """Write ``events`` (and ``alongside``) in the next batch; the
        events' notification ids. A save whose ``deadline``
        (``time.monotonic()``) has passed when its batch is about to be
        written is not written."""
        save = PendingSave(events, alongside, deadline=deadline)
        with self._mutex:
            self._waiting.append(save)
            follow = self._leading
            self._leading = True
        if follow:
            # Woken with an outcome, or (outcome still None) to lead.
            save._woken.wait()
        if save.outcome is None:
            self._lead()
        return save.result()

    def _lead(self) -> None:
        # Invariant: the leader's own save is the first waiting one.
        with self._mutex:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: len(batch)]
        now = time.monotonic()
        for save in batch:
            if save.deadline is not None and now >= save.deadline:
                save.fail(self._too_late())
        writing = [save for save in batch if save.outcome is None]
        try:
            if writing:
                self._write(writing)
        except Exception as error:  # the batch's, so every save's in it
            for save in batch:
                if save.outcome is None:
                    save.fail(error)
        finally:
            # Also on KeyboardInterrupt: the others must not wait forever
            # (a save left without an outcome raises NotWritten).
            for save in batch:
                save._woken.set()
            self._hand_over()

    def _hand_over(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting[0]._woken.set()
            else:
                self._leading = False


def admitted(saves: Sequence[Sequence[K]], stored: Set[K]) -> list[bool]:
    """Which saves of a batch may be written, in order.

    ``saves`` are each save's keys (aggregate id and version of each event);
    ``stored`` the keys of those already in the store. A save is refused
    when one of its keys is stored, or taken by an earlier save of the same
    batch: the same rule as the table's primary key, one save at a time.
    """
    taken = set(stored)
    verdicts = []
    for keys in saves:
        ok = len(set(keys)) == len(keys) and taken.isdisjoint(keys)
        if ok:
            taken.update(keys)
        verdicts.append(ok)
    return verdicts
