"""The clocks the service can run on: the real one, or a file shared by processes.

Everything that decides by time (every event's timestamp, SLA checks,
escalation thresholds, the timers' firing loop) asks one injected clock,
``() -> datetime`` (timezone-aware UTC), never ``datetime.now`` itself.

:class:`FileClock` is a testing and demo aid (``TICKETING_CLOCK_FILE``):
the file holds one ISO 8601 instant and *is* the time for every process
that reads it, until someone writes another. Why a frozen instant in a
file rather than, say, an offset added to the real clock:

- time stands still between two writes, so a test knows exactly which
  deadlines are due at each step and "never early" is checkable without
  races (with an offset, time would keep flowing during a step, and what
  fired when would depend on scheduling);
- separate processes (the test, two timer replicas, the API) agree on the
  instant without sharing memory or a clock origin, and without a
  database round trip on every reading;
- writes are atomic (a temporary file renamed over the old one), so a
  reader sees the old instant or the new one, never half of either.

The cost: a sleeping loop cannot know when a file will change, so loops
on a file clock wake at their poll interval (``TICKETING_TIMERS_POLL_INTERVAL``)
to look again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dotmac.ticketing.service.settings import Settings

#: What every use case and worker is given: the current instant, in UTC.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time."""
    return datetime.now(UTC)


class FileClock:
    """The instant written in a file: the same for every process reading it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __call__(self) -> datetime:
        text = self.path.read_text(encoding="utf-8").strip()
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError(f"{self.path}: the instant needs a UTC offset: {text!r}")
        return moment.astimezone(UTC)

    def set(self, moment: datetime) -> None:
        """Make ``moment`` the time of every reader (atomically)."""
        if moment.tzinfo is None:
            raise ValueError("the instant needs a time zone")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".clock-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(moment.astimezone(UTC).isoformat())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def advance(self, delta: timedelta) -> datetime:
        """Move the time forward by ``delta``; returns the new instant."""
        moment = self() + delta
        self.set(moment)
        return moment


def clock_from_settings(settings: Settings) -> Clock:
    """The file clock if ``TICKETING_CLOCK_FILE`` is set, else the real one."""
    if settings.clock_file is None:
        return system_clock
    clock = FileClock(settings.clock_file)
    clock()  # fail at start-up, not at the first event, if it is unreadable
    return clock
