"""Settings read exactly the documented variables and refuse bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from dotmac.ticketing.service.settings import MIB, Settings

SECRET = "k" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the machine's own configuration (CI sets DATABASE_URL)."""
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str)
        monkeypatch.delenv(field.validation_alias, raising=False)


@pytest.fixture(scope="module")
def public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url is None
    assert settings.kafka_bootstrap_servers is None
    assert settings.kafka_partitions == 6
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.jwt_secret is None
    assert settings.jwt_public_key is None
    assert settings.data_dir == Path(".data")
    assert settings.attachment_dir is None
    assert settings.attachment_max_bytes == 10 * MIB
    assert settings.request_max_bytes == 1 * MIB
    assert settings.db_pool_size == 20
    assert settings.command_retries == 8
    assert settings.config_path is None
    assert settings.log_format is None
    assert settings.log_level == "info"
    assert settings.snapshot_interval == 50
    assert settings.webhook_allow_private is False
    assert settings.integrations_allow_private is False


@pytest.mark.parametrize(
    ("variable", "field", "raw", "expected"),
    [
        ("DATABASE_URL", "database_url", "postgresql://db/x", "postgresql://db/x"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers", "k:9092", "k:9092"),
        ("TICKETING_KAFKA_PARTITIONS", "kafka_partitions", "12", 12),
        ("HOST", "host", "0.0.0.0", "0.0.0.0"),
        ("PORT", "port", "9000", 9000),
        ("TICKETING_JWT_SECRET", "jwt_secret", SECRET, SECRET),
        ("TICKETING_DATA_DIR", "data_dir", "/var/lib/t", Path("/var/lib/t")),
        ("TICKETING_ATTACHMENT_DIR", "attachment_dir", "/srv/a", Path("/srv/a")),
        ("TICKETING_ATTACHMENT_MAX_BYTES", "attachment_max_bytes", "2048", 2048),
        ("TICKETING_REQUEST_MAX_BYTES", "request_max_bytes", "4096", 4096),
        ("TICKETING_DB_POOL_SIZE", "db_pool_size", "7", 7),
        ("TICKETING_COMMAND_RETRIES", "command_retries", "0", 0),
        ("TICKETING_CONFIG", "config_path", "/etc/t.yaml", Path("/etc/t.yaml")),
        ("LOG_FORMAT", "log_format", "json", "json"),
        ("LOG_LEVEL", "log_level", "DEBUG", "debug"),
        ("TICKETING_SNAPSHOT_INTERVAL", "snapshot_interval", "10", 10),
        (
            "TICKETING_INTEGRATIONS_ALLOW_PRIVATE",
            "integrations_allow_private",
            "true",
            True,
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


def test_field_names_are_not_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the documented names configure the service: a stray DATA_DIR or
    # JWT_SECRET meant for another program must change nothing.
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DATA_DIR", "/elsewhere")
    monkeypatch.setenv("CONFIG_PATH", "/elsewhere.yaml")
    settings = Settings()
    assert settings.jwt_secret is None
    assert settings.data_dir == Path(".data")
    assert settings.config_path is None


def test_keyword_arguments_by_field_name_override_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-env/x")
    settings = Settings(database_url="postgresql://from-test/x", port=9001)
    assert settings.database_url == "postgresql://from-test/x"
    assert settings.port == 9001


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("LOG_FORMAT", "")
    settings = Settings()
    assert settings.database_url is None
    assert settings.log_format is None


def test_public_key_is_read_from_a_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, public_key_pem: str
) -> None:
    key_file = tmp_path / "jwt.pub"
    key_file.write_text(public_key_pem)
    monkeypatch.setenv("TICKETING_JWT_PUBLIC_KEY", str(key_file))
    assert Settings().jwt_public_key == public_key_pem


def test_public_key_may_be_given_as_text(
    monkeypatch: pytest.MonkeyPatch, public_key_pem: str
) -> None:
    monkeypatch.setenv("TICKETING_JWT_PUBLIC_KEY", public_key_pem)
    assert Settings().jwt_public_key == public_key_pem


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("PORT", "0"),
        ("PORT", "70000"),
        ("PORT", "http"),
        ("TICKETING_ATTACHMENT_MAX_BYTES", "0"),
        ("TICKETING_REQUEST_MAX_BYTES", "-1"),
        ("TICKETING_DB_POOL_SIZE", "0"),
        ("TICKETING_COMMAND_RETRIES", "-1"),
        ("TICKETING_SNAPSHOT_INTERVAL", "0"),
        ("TICKETING_KAFKA_PARTITIONS", "0"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
        ("TICKETING_JWT_SECRET", "too-short"),
        ("TICKETING_JWT_PUBLIC_KEY", "/no/such/key.pem"),
    ],
)
def test_invalid_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ValidationError, match=variable):
        Settings()


def test_a_file_without_a_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    monkeypatch.setenv("TICKETING_JWT_PUBLIC_KEY", str(not_a_key))
    with pytest.raises(ValidationError, match="does not contain a PEM key"):
        Settings()


def test_settings_are_immutable_but_copyable() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
    copy = settings.model_copy(update={"database_url": "postgresql://x/y"})
    assert copy.database_url == "postgresql://x/y"
    assert settings.database_url is None
