"""A real HTTP server standing in for another system a workflow calls.

It runs on a thread of the test process on a free loopback port, records
every request, and answers what the test's ``answer`` function says: a
status, a body (a dict is sent as JSON), a content type, and optionally a
delay before answering or between the bytes of the body (to exceed a
timeout). Nothing is mocked: the client under test speaks HTTP to it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    """One request the system received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] | list[Any] | bytes | str = field(default_factory=dict)
    content_type: str | None = None  # JSON for dicts and lists, else text/plain
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between the bytes of the body
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), self.content_type or (
                "application/json"
            )
        data = self.body.encode() if isinstance(self.body, str) else self.body
        return data, self.content_type or "text/plain; charset=utf-8"


# Decides the reply to a call: (the call, how many calls to its path came
# before it) → Reply.
Answer = Callable[[Call, int], Reply]


@dataclass
class ExternalSystem:
    port: int
    answer: Answer
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if path is None or c.path == path]


def _handler_for(system: ExternalSystem) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            call = Call(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            with system.lock:
                seen = sum(1 for c in system.calls if c.path == call.path)
                system.calls.append(call)
            reply = system.answer(call, seen)
            data, content_type = reply.encoded()
            time.sleep(reply.delay)
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.drip:
                for index in range(len(data)):
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip)
            else:
                self.wfile.write(data)

        do_POST = _serve
        do_GET = _serve
        do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # Do not wait for a handler still sleeping through a timeout test.
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout) resets its connection.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def json_ok(call: Call, seen: int) -> Reply:
    """The default answer: 200 with ``{"ok": true}``."""
    return Reply(body={"ok": True})


@contextmanager
def external_system(
    answer: Answer = json_ok, *, port: int = 0
) -> Iterator[ExternalSystem]:
    """An HTTP server on ``port`` (a free loopback port if 0) answering with
    ``answer``. A given port brings a system that was down back at the
    address its callers were configured with."""
    system = ExternalSystem(port=port, answer=answer)
    server = _QuietServer(("127.0.0.1", port), _handler_for(system))
    system.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield system
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
