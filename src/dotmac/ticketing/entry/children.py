"""``ticketing dev``'s processes: each one a child, supervised by the parent.

The API and every worker run as ``python -m dotmac.ticketing.entry.cli
<command>``, configured through the environment as production processes
are: each has its own interpreter (its own GIL, so its own core). The
parent restarts a child that exits unexpectedly, after the service's one
back-off, and on Ctrl-C or SIGTERM stops them all: SIGTERM first, SIGKILL
for any still running after the grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

import structlog

from dotmac.ticketing.service.backoff import Backoff

log = structlog.get_logger(__name__)

# How often the parent looks at its children.
POLL_SECONDS = 0.1
# How long stopping children may take before they are killed.
STOP_GRACE_SECONDS = 8.0


def cli_command(*arguments: str) -> list[str]:
    """``ticketing <arguments>`` run by this interpreter (this environment's
    code, whatever ``ticketing`` is first on the PATH)."""
    return [sys.executable, "-m", "dotmac.ticketing.entry.cli", *arguments]


@dataclass
class Child:
    """One supervised child: what it runs, and its current process."""

    role: str
    command: Sequence[str]
    #: Variables of this child's own, over the supervisor's environment.
    environment: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


@dataclass
class ChildSupervisor:
    """Starts the children, restarts those that exit, stops them all.

    ``environment`` is every child's whole environment. Their output is the
    parent's (a terminal, or a collector): each line names its process.
    """

    children: list[Child]
    environment: Mapping[str, str]
    backoff: Backoff = field(default_factory=Backoff)
    grace_seconds: float = STOP_GRACE_SECONDS
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def run(self) -> None:
        """Supervise until :meth:`stop_requested` (a signal), then stop all."""
        try:
            while not self.stopping.wait(POLL_SECONDS):
                self.check()
        finally:
            self.stop_all()

    def stop_requested(self, signum: int, frame: FrameType | None = None) -> None:
        """A signal handler: begin the shutdown (the children get SIGTERM)."""
        self.stopping.set()

    def check(self) -> None:
        """Restart (once its back-off has passed) each child that exited."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping.is_set():
                    self._spawn(child)
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            # A child that ran for a while before it failed starts afresh.
            if now - child.started_at > self.backoff.maximum:
                child.failures = 0
            child.failures += 1
            delay = self.backoff.delay(child.failures)
            log.warning(
                f"{child.role} exited; restarting",
                child=child.role,
                child_pid=child.process.pid,
                exit_code=code,
                failures=child.failures,
                retry_in=round(delay, 2),
            )
            child.restart_at = now + delay

    def stop_all(self) -> None:
        """SIGTERM every running child, SIGKILL those alive after the grace."""
        self.stopping.set()
        running = [
            c
            for c in self.children
            if c.process is not None and c.process.poll() is None
        ]
        for child in running:
            assert child.process is not None
            _signal(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                log.warning(
                    f"{child.role} did not stop in time; killing it",
                    child=child.role,
                    child_pid=child.process.pid,
                )
                _signal(child.process, signal.SIGKILL)
                child.process.wait()

    def _spawn(self, child: Child) -> None:
        child.restart_at = None
        child.started_at = time.monotonic()
        child.process = subprocess.Popen(
            child.command, env={**self.environment, **child.environment}
        )
        log.info(
            f"{child.role} started",
            child=child.role,
            child_pid=child.process.pid,
            restarts=child.failures,
        )


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    # The child may have exited meanwhile (a Ctrl-C reaches it too).
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def supervise_children(
    children: list[Child], environment: Mapping[str, str], backoff: Backoff
) -> None:
    """Run ``children`` until SIGTERM or Ctrl-C; return when all have stopped."""
    supervisor = ChildSupervisor(children, environment, backoff=backoff)
    previous = {
        signum: signal.signal(signum, supervisor.stop_requested)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        supervisor.start()
        supervisor.run()
    finally:
        # Also when a start failed: the children started so far stop too.
        supervisor.stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
