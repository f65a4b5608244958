"""Bearer tokens: what is accepted, what is refused, and why."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dotmac.ticketing.service.auth import (
    AuthError,
    Principal,
    Role,
    TokenVerifier,
    issue_token,
)

SECRET = "s" * 48
OTHER_SECRET = "o" * 48
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "sub": "u-1",
        "tenant_id": "acme",
        "roles": ["agent"],
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    return private_pem, public_pem


class TestPrincipal:
    def test_primary_role_is_the_most_privileged(self) -> None:
        principal = Principal("u", "t", frozenset({Role.AGENT, Role.SUPERVISOR}))
        assert principal.primary_role is Role.SUPERVISOR
        both = Principal("u", "t", frozenset({Role.SERVICE, Role.ADMIN}))
        assert both.primary_role is Role.ADMIN

    @pytest.mark.parametrize(
        ("role", "staff"),
        [
            (Role.CUSTOMER, False),
            (Role.AGENT, True),
            (Role.SUPERVISOR, True),
            (Role.ADMIN, True),
            (Role.SERVICE, True),
        ],
    )
    def test_everyone_but_customers_is_staff(self, role: Role, staff: bool) -> None:
        assert Principal("u", "t", frozenset({role})).is_staff is staff

    def test_has_any(self) -> None:
        principal = Principal("u", "t", frozenset({Role.AGENT}))
        assert principal.has_any(Role.ADMIN, Role.AGENT)
        assert not principal.has_any(Role.ADMIN, Role.SUPERVISOR)
        assert not principal.has_any()

    def test_a_principal_without_roles_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one role"):
            Principal("u", "t", frozenset())


class TestHS256:
    def test_issued_token_round_trips(self) -> None:
        token = issue_token(
            SECRET, tenant_id="acme", sub="u-1", roles=["agent", "supervisor"]
        )
        principal = TokenVerifier(secret=SECRET).verify(token)
        assert principal == Principal(
            sub="u-1",
            tenant_id="acme",
            roles=frozenset({Role.AGENT, Role.SUPERVISOR}),
        )

    def test_issue_token_sets_expiry_from_now_and_ttl(self) -> None:
        token = issue_token(
            SECRET,
            tenant_id="acme",
            sub="u-1",
            roles=["customer"],
            ttl=timedelta(minutes=5),
            now=NOW,
        )
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iat"] == int(NOW.timestamp())
        assert claims["exp"] == int((NOW + timedelta(minutes=5)).timestamp())

    def test_expired_token_is_refused(self) -> None:
        token = issue_token(
            SECRET,
            tenant_id="acme",
            sub="u-1",
            roles=["agent"],
            ttl=timedelta(minutes=1),
            now=datetime.now(UTC) - timedelta(hours=1),
        )
        with pytest.raises(AuthError, match="expired"):
            TokenVerifier(secret=SECRET).verify(token)

    def test_token_signed_with_another_secret_is_refused(self) -> None:
        token = issue_token(OTHER_SECRET, tenant_id="acme", sub="u", roles=["admin"])
        with pytest.raises(AuthError, match="signature"):
            TokenVerifier(secret=SECRET).verify(token)

    def test_tampered_claims_are_refused(self) -> None:
        token = issue_token(SECRET, tenant_id="acme", sub="u", roles=["customer"])
        header, _, signature = token.split(".")
        forged = _b64({**_claims(), "roles": ["admin"], "exp": 4_000_000_000})
        with pytest.raises(AuthError, match="signature"):
            TokenVerifier(secret=SECRET).verify(f"{header}.{forged}.{signature}")

    def test_unsigned_token_is_refused(self) -> None:
        # alg "none": the classic bypass; no key may make it acceptable.
        header = _b64({"alg": "none", "typ": "JWT"})
        payload = _b64({**_claims(), "exp": 4_000_000_000})
        with pytest.raises(AuthError, match="'none' is not accepted"):
            TokenVerifier(secret=SECRET).verify(f"{header}.{payload}.")

    @pytest.mark.parametrize("claim", ["sub", "tenant_id", "roles", "exp"])
    def test_missing_claim_is_refused(self, claim: str) -> None:
        token = jwt.encode(_claims(**{claim: None}), SECRET, algorithm="HS256")
        with pytest.raises(AuthError, match=f"missing the '{claim}' claim"):
            TokenVerifier(secret=SECRET).verify(token)

    @pytest.mark.parametrize(
        "claims",
        [
            _claims(roles=[]),
            _claims(roles="admin"),
            _claims(sub=""),
            _claims(tenant_id=42),
        ],
        ids=["no-roles", "roles-not-a-list", "empty-sub", "tenant-not-text"],
    )
    def test_ill_typed_claims_are_refused(self, claims: dict[str, object]) -> None:
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        with pytest.raises(AuthError, match="must be"):
            TokenVerifier(secret=SECRET).verify(token)

    def test_unknown_role_is_refused(self) -> None:
        token = jwt.encode(_claims(roles=["agent", "root"]), SECRET, algorithm="HS256")
        with pytest.raises(AuthError, match=r"unknown role.*root"):
            TokenVerifier(secret=SECRET).verify(token)

    @pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "a.b"])
    def test_malformed_token_is_refused(self, token: str) -> None:
        with pytest.raises(AuthError):
            TokenVerifier(secret=SECRET).verify(token)

    def test_issue_token_refuses_unknown_roles_and_short_secrets(self) -> None:
        with pytest.raises(ValueError):
            issue_token(SECRET, tenant_id="acme", sub="u", roles=["root"])
        with pytest.raises(ValueError):
            issue_token(SECRET, tenant_id="acme", sub="u", roles=[])
        with pytest.raises(ValueError, match="32 bytes"):
            issue_token("short", tenant_id="acme", sub="u", roles=["agent"])

    def test_verifier_refuses_short_secret(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            TokenVerifier(secret="secret")

    def test_verifier_needs_a_key(self) -> None:
        with pytest.raises(ValueError):
            TokenVerifier()


class TestRS256:
    def test_token_signed_with_the_private_key_is_accepted(
        self, rsa_keys: tuple[str, str]
    ) -> None:
        private_pem, public_pem = rsa_keys
        token = jwt.encode(_claims(roles=["service"]), private_pem, algorithm="RS256")
        principal = TokenVerifier(public_key=public_pem).verify(token)
        assert principal.roles == frozenset({Role.SERVICE})
        assert principal.tenant_id == "acme"

    def test_token_signed_with_another_key_is_refused(
        self, rsa_keys: tuple[str, str]
    ) -> None:
        _, public_pem = rsa_keys
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(_claims(), other, algorithm="RS256")
        with pytest.raises(AuthError, match="signature"):
            TokenVerifier(public_key=public_pem).verify(token)

    def test_hs256_signed_with_the_public_key_is_refused(
        self, rsa_keys: tuple[str, str]
    ) -> None:
        # Algorithm confusion: an attacker who knows the public key signs an
        # HS256 token with it as the HMAC secret.
        _, public_pem = rsa_keys
        header = _b64({"alg": "HS256", "typ": "JWT"})
        payload = _b64({**_claims(), "exp": 4_000_000_000})
        mac = hmac.new(
            public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256
        )
        signature = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
        token = f"{header}.{payload}.{signature}"
        with pytest.raises(AuthError, match="'HS256' is not accepted"):
            TokenVerifier(public_key=public_pem).verify(token)

    def test_both_algorithms_when_both_keys_are_configured(
        self, rsa_keys: tuple[str, str]
    ) -> None:
        private_pem, public_pem = rsa_keys
        verifier = TokenVerifier(secret=SECRET, public_key=public_pem)
        rs_token = jwt.encode(_claims(), private_pem, algorithm="RS256")
        hs_token = issue_token(SECRET, tenant_id="acme", sub="u-1", roles=["agent"])
        assert verifier.verify(rs_token) == verifier.verify(hs_token)
        assert verifier.algorithms == {"HS256", "RS256"}

    def test_a_private_key_is_not_taken_as_the_public_key(
        self, rsa_keys: tuple[str, str]
    ) -> None:
        private_pem, _ = rsa_keys
        with pytest.raises(ValueError, match="public key"):
            TokenVerifier(public_key=private_pem)

    def test_garbage_public_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="RSA key"):
            TokenVerifier(public_key="-----BEGIN PUBLIC KEY-----\nnope\n")
