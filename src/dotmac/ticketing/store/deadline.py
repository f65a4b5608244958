"""The deadline of the request a save belongs to.

A request the server will not answer in time must not write anything
later: its client has given up, and would repeat it. The API sets a
deadline for each request (``TICKETING_REQUEST_DEADLINE_SECONDS``); a save
still waiting when it passes is dropped before its transaction begins, and
its retries stop, so the request is answered with an error and nothing of
it is stored. Work without a deadline (the workers) saves as before.

A context variable: FastAPI's worker threads run with the request's
context, so the request's saves see it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from eventsourcing.persistence import OperationalError

_DEADLINE: ContextVar[float | None] = ContextVar("save_deadline", default=None)


class DeadlinePassed(OperationalError):
    """The request's deadline passed before its save was written."""


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now (None: none)."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The ``time.monotonic()`` the work in progress must be done by."""
    return _DEADLINE.get()


def passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
