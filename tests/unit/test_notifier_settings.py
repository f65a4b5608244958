"""The notifier's settings: read from exactly their documented variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dotmac.ticketing.service.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str)
        monkeypatch.delenv(field.validation_alias, raising=False)


def test_defaults_log_instead_of_sending_and_refuse_private_webhooks() -> None:
    settings = Settings()
    assert settings.smtp_host is None
    assert settings.smtp_port == 587
    assert settings.smtp_from == "ticketing@localhost"
    assert settings.smtp_starttls is False
    assert settings.sms_url is None
    assert settings.sms_from == "Ticketing"
    assert settings.webhook_allow_private is False
    assert settings.webhook_give_up_seconds == 3600
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.kafka_session_timeout_ms == 10_000


def test_defaults_of_fair_delivery_and_the_circuit_breaker() -> None:
    settings = Settings()
    assert settings.webhooks_per_tenant_max == 20
    assert settings.webhook_timeout_seconds == 10
    assert settings.webhook_breaker_threshold == 5
    assert settings.webhook_breaker_cooldown_seconds == 300
    assert settings.delivery_concurrency == 128
    assert settings.delivery_tenant_concurrency == 32
    assert settings.delivery_endpoint_concurrency == 4


@pytest.mark.parametrize(
    ("variable", "field", "raw", "expected"),
    [
        ("TICKETING_SMTP_HOST", "smtp_host", "mail.example.com", "mail.example.com"),
        ("TICKETING_SMTP_PORT", "smtp_port", "2525", 2525),
        ("TICKETING_SMTP_FROM", "smtp_from", "Help <h@x.io>", "Help <h@x.io>"),
        ("TICKETING_SMTP_USER", "smtp_user", "mailer", "mailer"),
        ("TICKETING_SMTP_PASSWORD", "smtp_password", "pw", "pw"),
        ("TICKETING_SMTP_STARTTLS", "smtp_starttls", "true", True),
        (
            "TICKETING_SMS_URL",
            "sms_url",
            "https://sms.example/M",
            "https://sms.example/M",
        ),
        ("TICKETING_SMS_USER", "sms_user", "AC1", "AC1"),
        ("TICKETING_SMS_PASSWORD", "sms_password", "tok", "tok"),
        ("TICKETING_SMS_FROM", "sms_from", "+15550000", "+15550000"),
        ("TICKETING_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private", "true", True),
        ("TICKETING_WEBHOOK_GIVE_UP_SECONDS", "webhook_give_up_seconds", "60", 60),
        (
            "TICKETING_PUBLIC_URL",
            "public_url",
            "https://help.x.io",
            "https://help.x.io",
        ),
        (
            "TICKETING_KAFKA_SESSION_TIMEOUT_MS",
            "kafka_session_timeout_ms",
            "2000",
            2000,
        ),
        ("TICKETING_WEBHOOKS_PER_TENANT_MAX", "webhooks_per_tenant_max", "50", 50),
        ("TICKETING_WEBHOOK_TIMEOUT_SECONDS", "webhook_timeout_seconds", "2.5", 2.5),
        (
            "TICKETING_WEBHOOK_BREAKER_THRESHOLD",
            "webhook_breaker_threshold",
            "3",
            3,
        ),
        (
            "TICKETING_WEBHOOK_BREAKER_COOLDOWN_SECONDS",
            "webhook_breaker_cooldown_seconds",
            "60",
            60,
        ),
        ("TICKETING_DELIVERY_CONCURRENCY", "delivery_concurrency", "256", 256),
        (
            "TICKETING_DELIVERY_TENANT_CONCURRENCY",
            "delivery_tenant_concurrency",
            "8",
            8,
        ),
        (
            "TICKETING_DELIVERY_ENDPOINT_CONCURRENCY",
            "delivery_endpoint_concurrency",
            "2",
            2,
        ),
    ],
)
def test_each_variable_sets_its_field(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    field: str,
    raw: str,
    expected: object,
) -> None:
    monkeypatch.setenv(variable, raw)
    assert getattr(Settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("TICKETING_SMTP_PORT", "0"),
        ("TICKETING_SMTP_STARTTLS", "maybe"),
        ("TICKETING_WEBHOOK_ALLOW_PRIVATE", "perhaps"),
        ("TICKETING_WEBHOOK_GIVE_UP_SECONDS", "0"),
        ("TICKETING_KAFKA_SESSION_TIMEOUT_MS", "10"),
        ("TICKETING_WEBHOOKS_PER_TENANT_MAX", "-1"),
        ("TICKETING_WEBHOOK_TIMEOUT_SECONDS", "0"),
        ("TICKETING_WEBHOOK_BREAKER_THRESHOLD", "0"),
        ("TICKETING_WEBHOOK_BREAKER_COOLDOWN_SECONDS", "0"),
        ("TICKETING_DELIVERY_CONCURRENCY", "0"),
        ("TICKETING_DELIVERY_ENDPOINT_CONCURRENCY", "0"),
    ],
)
def test_invalid_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ValidationError, match=variable):
        Settings()
