"""Real servers the notifier talks to in tests: SMTP (aiosmtpd) and HTTP.

Both run on threads of the test process on free loopback ports and record
everything they receive. Nothing is mocked: the notifier's channels speak
SMTP and HTTP to them exactly as they would to a provider.
"""

from __future__ import annotations

import email
import email.policy
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from dotmac.ticketing.consumers.kafka.broker import free_port


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


# ----------------------------------------------------------------------
# SMTP


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content: str = body.get_content()  # type: ignore[attr-defined]
        return content.replace("\r\n", "\n")  # SMTP's line ends


class _Collector:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        with self._sink.lock:
            self._sink.mails.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message)
            )
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    port: int
    mails: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.mails)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedMail]:
        wait_until(
            lambda: len(self.received()) >= count,
            timeout=timeout,
            what=f"{count} e-mails (have {len(self.received())})",
        )
        return self.received()


@contextmanager
def smtp_sink(credentials: tuple[str, str] | None = None) -> Iterator[SmtpSink]:
    """An SMTP server on a free loopback port that keeps every message.

    With ``credentials`` it requires AUTH (over plain text: a test server).
    """
    sink = SmtpSink(port=free_port())
    options: dict[str, Any] = {}
    if credentials is not None:

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            # handled=False: the server answers 235 or 535 itself.
            return AuthResult(success=given == credentials, handled=False)

        options = {
            "authenticator": authenticate,
            # A plain-text test server; aiosmtpd warns about it.
            "auth_required": True,
            "auth_require_tls": False,
        }
    controller = Controller(
        _Collector(sink), hostname="127.0.0.1", port=sink.port, **options
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# ----------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    status: int  # what the sink answered

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# Decides the answer to a request: (path, how many requests to that path
# came before it) → HTTP status.
Responder = Callable[[str, int], int]


@dataclass
class HttpSink:
    port: int
    responder: Responder = lambda path, seen: 200
    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 20.0
    ) -> list[ReceivedRequest]:
        wait_until(
            lambda: len(self.received(path)) >= count,
            timeout=timeout,
            what=f"{count} requests to {path or 'any path'}",
        )
        return self.received(path)


def _handler_for(sink: HttpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:
                # The client died mid-request (a SIGKILLed worker): like any
                # server, do not act on half a request.
                self.close_connection = True
                return
            with sink.lock:
                seen = sum(1 for r in sink.requests if r.path == self.path)
                status = sink.responder(self.path, seen)
                sink.requests.append(
                    ReceivedRequest(
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        at=time.monotonic(),
                        status=status,
                    )
                )
            answer = b'{"ok": true}' if status < 300 else b'{"error": "try later"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients killed mid-request (the crash test) reset connections.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def http_sink(responder: Responder | None = None) -> Iterator[HttpSink]:
    """An HTTP server on a free loopback port that records every POST."""
    sink = HttpSink(port=0)
    if responder is not None:
        sink.responder = responder
    server = _QuietServer(("127.0.0.1", 0), _handler_for(sink))
    server.daemon_threads = True
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ----------------------------------------------------------------------
# A receiver that never answers


@dataclass
class HangingServer:
    """Accepts connections and reads requests, but never answers one."""

    port: int
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self) -> int:
        with self.lock:
            return self.connections


@contextmanager
def hanging_server() -> Iterator[HangingServer]:
    """A TCP server on a free loopback port whose clients wait forever.

    What a webhook host that does not answer looks like to the sender: the
    connection is accepted (the SYN is answered by the kernel), the request
    is read, and then nothing, until the client's read timeout.
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    listener.settimeout(0.2)
    server = HangingServer(port=listener.getsockname()[1])
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setblocking(False)
            held.append(conn)
            with server.lock:
                server.connections += 1

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()
