"""A private certificate authority and a TLS-terminating TCP proxy, for tests.

The bundled broker (Tansu) has no TLS listener, so the Kafka-over-TLS
tests put this proxy in front of it: clients speak TLS to the proxy, which
checks nothing of theirs and forwards the plain bytes to the broker. Started
with the proxy's address as its advertised listener, the broker sends
every client back to the proxy, so no request bypasses TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Authority:
    """A CA's certificate (``ca_file``, PEM) and a server certificate it
    signed for 127.0.0.1 and localhost (``cert_file``, ``key_file``)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def private_authority(directory: Path, name: str = "test-ca") -> Authority:
    """A new CA and a server certificate of 127.0.0.1, written under ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5)}
    valid["not_valid_after"] = now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(**valid)
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder(**valid)
        .subject_name(_name("broker"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    return Authority(
        ca_file=_pem(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        cert_file=_pem(
            directory / "server.pem", server.public_bytes(serialization.Encoding.PEM)
        ),
        key_file=_pem(
            directory / "server.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    )


@dataclass
class TlsProxy:
    port: int
    #: Connections whose TLS handshake succeeded (each is forwarded).
    handshakes: int = 0

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A side that hangs up (or fails its handshake) ends the pipe: that is
    # a proxy's normal end, not an error of the test.
    try:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            writer.close()


@contextlib.contextmanager
def tls_proxy(authority: Authority, target_port: int, port: int) -> Iterator[TlsProxy]:
    """Accept TLS on ``port`` (loopback) and forward to ``target_port``,
    on a thread of its own until the block ends."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(authority.cert_file, authority.key_file)
    proxy = TlsProxy(port)
    loop = asyncio.new_event_loop()

    async def forward(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        proxy.handshakes += 1
        try:
            broker_reader, broker_writer = await asyncio.open_connection(
                LOOPBACK, target_port
            )
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, broker_writer), _pipe(broker_reader, client_writer)
        )

    listener = socket.create_server((LOOPBACK, port))
    server = loop.run_until_complete(
        asyncio.start_server(forward, sock=listener, ssl=context)
    )

    async def close() -> None:
        server.close()
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
