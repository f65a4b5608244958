"""Bearer tokens over HTTP: what the API refuses (401), and an OIDC provider's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dotmac.ticketing.entry.cli import app as cli
from dotmac.ticketing.service.api.app import create_app
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.service.settings import Settings
from tests.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    SigningKey,
    claims,
    identity_provider,
)

TICKETS = "/api/v1/tickets/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_ticket(client: TestClient, token: str) -> int:
    response = client.post(
        TICKETS,
        json={"title": "Printer on fire", "customer_id": "cust-1"},
        headers=bearer(token),
    )
    return response.status_code


def refusal(client: TestClient, token: str) -> str:
    """The detail of the 401 problem a request with ``token`` gets."""
    response = client.get(TICKETS, headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    detail: str = response.json()["detail"]
    return detail


@pytest.mark.parametrize(
    ("exp", "detail"),
    [
        (int(time.time()) + 1000 * 365 * 86400, "exceeds the maximum of 86400 s"),
        (10**30, "'exp' is out of range"),
        (str(int(time.time()) + 3600), "'exp' must be a number"),
    ],
    ids=["1000-years", "10**30", "string"],
)
def test_absurd_expiry_is_401(
    client: TestClient, jwt_secret: str, tenant: str, exp: object, detail: str
) -> None:
    token = jwt.encode(
        {"sub": "u", "tenant_id": tenant, "roles": ["agent"], "exp": exp},
        jwt_secret,
        algorithm="HS256",
    )
    assert detail in refusal(client, token)
    assert create_ticket(client, token) == 401  # and nothing was written


@pytest.fixture(scope="module")
def keys() -> tuple[SigningKey, SigningKey]:
    return SigningKey.generate("rsa-1", "RS256"), SigningKey.generate("ec-1", "ES256")


@pytest.fixture
def provider(keys: tuple[SigningKey, SigningKey]) -> Iterator[IdentityProvider]:
    with identity_provider(*keys) as running:
        yield running


def oidc_settings(settings: Settings, provider: IdentityProvider) -> Settings:
    return settings.model_copy(
        update={
            "jwt_jwks_url": provider.jwks_url,
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            # Rotation is seen at the next token that names the new key.
            "jwt_jwks_refresh_min_seconds": 0,
        }
    )


@pytest.fixture
def oidc_client(
    settings: Settings, ticketing: Ticketing, provider: IdentityProvider
) -> Iterator[TestClient]:
    app = create_app(oidc_settings(settings, provider), ticketing=ticketing)
    with TestClient(app) as test_client:
        yield test_client


def test_provider_tokens_open_tickets_rs256_and_es256(
    oidc_client: TestClient, keys: tuple[SigningKey, SigningKey], tenant: str
) -> None:
    for key in keys:
        assert create_ticket(oidc_client, key.sign(claims(tenant_id=tenant))) == 201


def test_a_key_rotated_in_later_is_accepted(
    oidc_client: TestClient,
    provider: IdentityProvider,
    keys: tuple[SigningKey, SigningKey],
    tenant: str,
) -> None:
    assert create_ticket(oidc_client, keys[0].sign(claims(tenant_id=tenant))) == 201
    rotated = SigningKey.generate("rsa-2", "RS256")
    token = rotated.sign(claims(tenant_id=tenant))
    assert "'rsa-2' is not one of" in refusal(oidc_client, token)
    provider.keys = [rotated]  # the provider publishes its new key
    assert create_ticket(oidc_client, token) == 201


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"iss": "https://evil.test/"}, "issuer (iss) is not accepted"),
        ({"iss": None}, "missing the 'iss' claim"),
        ({"aud": "billing-api"}, "audience (aud) is not accepted"),
        ({"aud": None}, "missing the 'aud' claim"),
        ({"exp": None}, "missing the 'exp' claim"),
        ({"exp": "4102444800"}, "'exp' must be a number"),
        ({"iat": True}, "'iat' must be a number"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet (nbf"),
        ({"exp": int(time.time()) - 3600}, "token has expired"),
    ],
    ids=[
        "wrong-iss",
        "no-iss",
        "wrong-aud",
        "no-aud",
        "no-exp",
        "string-exp",
        "boolean-iat",
        "nbf-ahead",
        "expired",
    ],
)
def test_bad_claims_from_the_provider_are_401(
    oidc_client: TestClient,
    keys: tuple[SigningKey, SigningKey],
    overrides: dict[str, object],
    detail: str,
) -> None:
    token = keys[1].sign(claims(**overrides))
    assert detail in refusal(oidc_client, token)


def test_too_long_a_lifetime_from_the_provider_is_401(
    oidc_client: TestClient, keys: tuple[SigningKey, SigningKey]
) -> None:
    token = keys[0].sign(claims(lifetime=timedelta(days=2)))
    assert "exceeds the maximum" in refusal(oidc_client, token)


def test_dev_tokens_pass_with_issuer_and_audience_configured(
    settings: Settings,
    ticketing: Ticketing,
    jwt_secret: str,
    tenant: str,
    tmp_path: Path,
) -> None:
    environment = {
        "TICKETING_JWT_SECRET": jwt_secret,
        "TICKETING_JWT_ISSUER": ISSUER,
        "TICKETING_JWT_AUDIENCE": AUDIENCE,
        "TICKETING_JWT_MAX_LIFETIME_SECONDS": "7200",
        "TICKETING_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    command = ["token", "--tenant", tenant, "--sub", "dev-1", "--role", "agent"]
    printed = runner.invoke(
        cli,
        [*command, "--ttl-hours", "2"],
        env=environment,
    )
    assert printed.exit_code == 0, printed.output
    configured = settings.model_copy(
        update={
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_max_lifetime_seconds": 7200,
        }
    )
    # Without --ttl-hours: 12 hours, cut to the 2 hours the service accepts.
    default = runner.invoke(cli, command, env=environment)
    assert default.exit_code == 0, default.output
    lifetime = jwt.decode(default.output.strip(), options={"verify_signature": False})
    assert lifetime["exp"] - lifetime["iat"] == 7200
    with TestClient(create_app(configured, ticketing=ticketing)) as client:
        assert create_ticket(client, printed.output.strip()) == 201
        assert create_ticket(client, default.output.strip()) == 201

    too_long = runner.invoke(
        cli,
        [*command, "--ttl-hours", "3"],
        env=environment,
    )
    assert too_long.exit_code == 2
    assert "TICKETING_JWT_MAX_LIFETIME_SECONDS" in too_long.output
