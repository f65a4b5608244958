"""A worker (``ticketing worker <kind>``) as a child process of a test."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


class WorkerProcess:
    """``ticketing worker <kind>`` as a child process, restartable and killable."""

    def __init__(
        self, kind: str, env: dict[str, str], log_dir: Path, name: str | None = None
    ) -> None:
        self.kind = kind
        self.name = name or kind
        self.env = env
        self.log = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        command = Path(sys.executable).with_name("ticketing")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(command), "worker", self.kind],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def wait_for_exit(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
