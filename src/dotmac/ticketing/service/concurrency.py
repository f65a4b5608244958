"""Retrying a load-decide-save attempt that lost a race to another writer."""

import random
import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from dotmac.ticketing.service.errors import ConcurrencyConflict

T = TypeVar("T")


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
            time.sleep(random.uniform(0, min(0.005 * 2**n, 0.25)))
    raise ConcurrencyConflict(
        f"the {what} kept changing; gave up after {retries} retries"
    )
