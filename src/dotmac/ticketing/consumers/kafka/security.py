"""How the service's Kafka clients authenticate: TLS, SASL, or neither.

Managed brokers (Confluent Cloud, MSK, Aiven, Event Hubs) take TLS, most of
them with SASL (PLAIN or SCRAM) on top. Every client the service makes — the
relay's producer, each consumer and its dead-letter producer, the topic
administration — is given the same options, from the deployment settings
(``TICKETING_KAFKA_SECURITY_PROTOCOL`` and friends).

A broker whose certificate the clients do not trust is named as such: the
Kafka client only says it could not bootstrap (the reason goes to its log),
so :func:`tls_failure` asks the broker for a handshake of its own to tell.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.helpers import create_ssl_context


@dataclass(frozen=True)
class KafkaSecurity:
    #: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    protocol: str = "PLAINTEXT"
    #: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL only).
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: CA bundle the broker's certificate is checked against (None: the
    #: system's).
    cafile: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (none for PLAINTEXT)."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = create_ssl_context(cafile=self.cafile)
        if self.protocol.startswith("SASL_"):
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options


PLAINTEXT = KafkaSecurity()


class KafkaTlsFailure(ConnectionError):
    """The broker's TLS handshake failed: the message says why."""


async def tls_failure(
    bootstrap_servers: str, security: KafkaSecurity, *, timeout: float = 5.0
) -> KafkaTlsFailure | None:
    """Why a TLS handshake with the first bootstrap server fails, if it
    does (None: it succeeds, or TLS is not in use, or nothing answers)."""
    if not security.uses_tls:
        return None
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(
                host, int(port), ssl=create_ssl_context(cafile=security.cafile)
            )
    except ssl.SSLError as error:
        trusted = security.cafile or "the system's CA certificates"
        return KafkaTlsFailure(
            f"TLS with the Kafka broker {host}:{port} failed: {error}. Its"
            f" certificate must be signed by a CA of {trusted}"
            " (TICKETING_KAFKA_SSL_CAFILE) and name the host it is reached at"
        )
    except (OSError, TimeoutError, ValueError):
        return None
    writer.close()
    return None
