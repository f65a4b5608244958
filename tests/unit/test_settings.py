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


def test_token_and_http_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.jwt_jwks_url is None
    assert (settings.jwt_issuer, settings.jwt_audience) == (None, None)
    assert settings.jwt_max_lifetime_seconds == 24 * 3600
    assert settings.api_docs is True
    assert settings.hsts is False
    assert settings.cors_allow_origins == ()
    assert settings.cors_allow_credentials is False


@pytest.mark.parametrize(
    ("variable", "field", "raw", "expected"),
    [
        (
            "TICKETING_JWT_JWKS_URL",
            "jwt_jwks_url",
            "https://idp/.well-known/jwks.json",
            "https://idp/.well-known/jwks.json",
        ),
        ("TICKETING_JWT_JWKS_CACHE_SECONDS", "jwt_jwks_cache_seconds", "60", 60),
        (
            "TICKETING_JWT_JWKS_REFRESH_MIN_SECONDS",
            "jwt_jwks_refresh_min_seconds",
            "5",
            5,
        ),
        ("TICKETING_JWT_JWKS_TIMEOUT_SECONDS", "jwt_jwks_timeout_seconds", "2", 2),
        ("TICKETING_JWT_ISSUER", "jwt_issuer", "https://idp/", "https://idp/"),
        ("TICKETING_JWT_AUDIENCE", "jwt_audience", "ticketing", "ticketing"),
        (
            "TICKETING_JWT_MAX_LIFETIME_SECONDS",
            "jwt_max_lifetime_seconds",
            "3600",
            3600,
        ),
        ("TICKETING_API_DOCS", "api_docs", "false", False),
        ("TICKETING_HSTS", "hsts", "true", True),
        ("TICKETING_HSTS_MAX_AGE_SECONDS", "hsts_max_age_seconds", "600", 600),
        (
            "TICKETING_HSTS_INCLUDE_SUBDOMAINS",
            "hsts_include_subdomains",
            "1",
            True,
        ),
        (
            "TICKETING_CORS_ALLOW_ORIGINS",
            "cors_allow_origins",
            "https://a.example, https://b.example,",
            ("https://a.example", "https://b.example"),
        ),
        ("TICKETING_CORS_ALLOW_METHODS", "cors_allow_methods", "GET", ("GET",)),
        (
            "TICKETING_CORS_ALLOW_HEADERS",
            "cors_allow_headers",
            "Authorization,If-Match",
            ("Authorization", "If-Match"),
        ),
        ("TICKETING_CORS_EXPOSE_HEADERS", "cors_expose_headers", "ETag", ("ETag",)),
        ("TICKETING_CORS_ALLOW_CREDENTIALS", "cors_allow_credentials", "true", True),
        ("TICKETING_CORS_MAX_AGE_SECONDS", "cors_max_age_seconds", "60", 60),
    ],
)
def test_each_token_and_http_variable_sets_its_field(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    field: str,
    raw: str,
    expected: object,
) -> None:
    monkeypatch.setenv(variable, raw)
    assert getattr(Settings(), field) == expected


def test_a_public_key_and_a_jwks_url_are_not_both_taken(public_key_pem: str) -> None:
    with pytest.raises(ValidationError, match="not both"):
        Settings(jwt_public_key=public_key_pem, jwt_jwks_url="https://idp/jwks")


def test_a_jwks_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="http"):
        Settings(jwt_jwks_url=f"file://{tmp_path}/jwks.json")


def test_credentials_for_any_origin_are_refused() -> None:
    with pytest.raises(ValidationError, match="explicit origins"):
        Settings(cors_allow_origins=("*",), cors_allow_credentials=True)
    assert Settings(cors_allow_origins=("*",)).cors_allow_origins == ("*",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jwt_max_lifetime_seconds", 0),
        ("jwt_jwks_cache_seconds", 0),
        ("jwt_jwks_refresh_min_seconds", -1),
        ("hsts_max_age_seconds", -1),
    ],
)
def test_token_and_http_limits_are_bounded(field: str, value: int) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})
