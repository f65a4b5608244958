"""Retrying a load-decide-save attempt that lost a race to another writer."""

import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from dotmac.ticketing.service.backoff import Backoff
from dotmac.ticketing.service.errors import ConcurrencyConflict

T = TypeVar("T")

# Up to 5 ms, 10 ms, ... at most 250 ms, anywhere from zero ("full jitter":
# a factor of 0 to 2 around half of that).
CONFLICT_RETRY = Backoff(initial=0.0025, maximum=0.125, jitter=1.0)


def retry_on_conflict(attempt: Callable[[], T], *, retries: int, what: str) -> T:
    """Run ``attempt`` again when another writer saved the aggregate first.

    Each retry decides anew on fresh state (so it still obeys the rules),
    after a short jittered pause that spreads the racers out.
    """
    for n in range(retries + 1):
        try:
            return attempt()
        except IntegrityError:
            if n == retries:
                break
            time.sleep(CONFLICT_RETRY.delay(n + 1))
    raise ConcurrencyConflict(
        f"the {what} kept changing; gave up after {retries} retries"
    )
