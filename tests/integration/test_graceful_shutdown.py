"""SIGTERM: the API stops accepting, finishes the request in flight, ends.

``ticketing api`` in its own process. A create's body is half sent when
the signal arrives; the rest follows, and the create is still answered
(and stored) before the process ends, within ten seconds.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dotmac.ticketing.consumers.kafka.broker import free_port
from dotmac.ticketing.service.auth import issue_token
from tests.conftest import fresh_database
from tests.notifications.servers import wait_until


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigterm_finishes_the_request_in_flight_and_ends(
    database_url: str, tmp_path: Path
) -> None:
    secret = secrets.token_urlsafe(48)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TICKETING_JWT_SECRET": secret,
        "PORT": str(port),
        "TICKETING_API_WORKERS": "1",
        "LOG_LEVEL": "warning",
    }
    with open(tmp_path / "api.log", "wb") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "dotmac.ticketing.entry.cli", "api"],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        wait_until(lambda: _up(f"http://127.0.0.1:{port}"), timeout=60, what="the API")
        token = issue_token(secret, tenant_id="t-1", sub="cust-1", roles=["customer"])
        body = json.dumps({"title": "Sent in two halves"}).encode()
        head = (
            f"POST /api/v1/tickets/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(head + body[:5])
            time.sleep(0.3)
            signalled = time.monotonic()
            api.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            conn.sendall(body[5:])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk

        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert api.wait(10) == 0
        assert time.monotonic() - signalled < 10
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()
