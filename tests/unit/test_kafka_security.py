"""What the Kafka clients are given for TLS and SASL, from the settings."""

from __future__ import annotations

import ssl

import pytest
from pydantic import ValidationError

from dotmac.ticketing.consumers.kafka.security import PLAINTEXT, KafkaSecurity
from dotmac.ticketing.entry.processes import kafka_security
from dotmac.ticketing.service.settings import Settings


def test_plaintext_gives_the_clients_nothing() -> None:
    assert PLAINTEXT.client_options() == {}
    assert kafka_security(Settings()) == PLAINTEXT


def test_sasl_over_tls_gives_every_client_the_same_credentials_and_context() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ticketing",
        kafka_sasl_password="s3cret",
    )

    options = kafka_security(settings).client_options()

    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert (
        options["sasl_mechanism"],
        options["sasl_plain_username"],
        options["sasl_plain_password"],
    ) == ("SCRAM-SHA-512", "ticketing", "s3cret")
    assert "s3cret" not in repr(kafka_security(settings))


def test_tls_alone_has_no_sasl() -> None:
    options = KafkaSecurity(protocol="SSL").client_options()

    assert set(options) == {"security_protocol", "ssl_context"}


def test_a_sasl_protocol_without_credentials_stops_the_start() -> None:
    with pytest.raises(ValidationError, match="TICKETING_KAFKA_SASL_MECHANISM"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")
