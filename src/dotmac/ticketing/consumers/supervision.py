"""How every asyncio worker runs: restarts, start-up retries, a thread or a process.

The notifier, the timers and the workflows are each a coroutine
``run(settings, stop)``. The pieces here give them one shape: a part that
fails (the broker restarting, say) is run again with back-off; a start-up
step waits for a dependency that is not up yet; and the whole worker runs
either as the process (``ticketing worker <name>``, stopped by SIGTERM or
Ctrl-C) or on a daemon thread of another process (``ticketing dev``,
tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

RESTART_DELAY_MAX = 30.0

Part = Callable[[asyncio.Event], Awaitable[None]]


async def restarting(worker: str, name: str, run: Part, stop: asyncio.Event) -> None:
    """Run ``run(stop)`` again after a failure, backing off up to 30 s."""
    delay = 0.5
    while not stop.is_set():
        try:
            await run(stop)
            return
        except Exception as error:
            log.warning(f"{worker} {name} failed; restarting", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)


async def until_done(
    worker: str,
    what: str,
    attempt: Callable[[], Awaitable[Any]],
    stop: asyncio.Event,
) -> None:
    """Retry a start-up step (the broker may come up after us)."""
    delay = 0.5
    while True:
        try:
            await attempt()
            return
        except Exception as error:
            if stop.is_set():
                raise
            log.warning(f"{worker} {what}: retrying", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)


def serve(main: Part) -> None:
    """Run a worker as this process until SIGTERM or Ctrl-C."""

    async def supervised() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(supervised())


@dataclass
class RunningWorker:
    """An asyncio worker on a thread of this process."""

    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout)


def start_in_thread(name: str, main: Part) -> RunningWorker:
    """Start ``main(stop)`` on its own event loop on a daemon thread."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main(stop))
        except Exception:
            log.exception(f"{name} stopped")
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return RunningWorker(thread=thread, loop=loop, stop_event=stop)
