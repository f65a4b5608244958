"""How the service's Kafka clients authenticate: TLS, SASL, or neither.

Managed brokers (Confluent Cloud, MSK, Aiven, Event Hubs) take TLS, most of
them with SASL (PLAIN or SCRAM) on top. Every client the service makes — the
relay's producer, each consumer and its dead-letter producer, the topic
administration — is given the same options, from the deployment settings
(``TICKETING_KAFKA_SECURITY_PROTOCOL`` and friends).
"""

from __future__ import annotations

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

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (none for PLAINTEXT)."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=self.cafile)
        if self.protocol.startswith("SASL_"):
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options


PLAINTEXT = KafkaSecurity()
