"""Every log line names the process that wrote it, in both formats.

Run in a fresh interpreter: logging is configured once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import logging, os, sys
import structlog
from dotmac.ticketing.service.logging import configure_logging

configure_logging(sys.argv[1], "info", process="notifier")
structlog.get_logger("ours").info("ours")
logging.getLogger("theirs").info("theirs")
print(os.getpid())
"""


def log_of(fmt: str) -> tuple[list[str], int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr.splitlines(), int(done.stdout)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_every_line_carries_the_process_role_and_pid(fmt: str) -> None:
    lines, pid = log_of(fmt)
    assert len(lines) == 2, lines
    for line in lines:
        if fmt == "json":
            record = json.loads(line)
            assert record["process"] == "notifier" and record["pid"] == pid
        else:
            assert "process=notifier" in line and f"pid={pid}" in line


UVICORN = """
import logging, sys
from dotmac.ticketing.service.logging import configure_logging

configure_logging("json", "info", process="api")
logging.getLogger("uvicorn.error").info("Started server process")
logging.getLogger("uvicorn.access").info('127.0.0.1:5 - "GET /x HTTP/1.1" 200')
"""


def test_uvicorns_access_line_is_left_to_the_request_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", UVICORN],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert "Started server process" in done.stderr
    assert "GET /x" not in done.stderr
