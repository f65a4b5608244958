"""How long to wait before trying again: the one back-off of the service.

Used by the supervisor's restarts, the notifier's delivery retries, the
consumers' record retries, the timers' command retries and the write
side's retries after a lost race.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off, capped, with jitter.

    The ``n``-th failure in a row waits ``initial * 2 ** (n - 1)`` seconds,
    at most ``maximum``, times a random factor within ``jitter`` (a fraction
    either way) so that many retries that failed together (replicas, a
    receiver's outage) do not come back in step. ``settle`` is how long a
    restarted worker part must run before it counts as up again (the
    supervisor's).
    """

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2
    settle: float = 1.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        base = min(self.maximum, self.initial * 2.0 ** max(failures - 1, 0))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)
