"""Bearer tokens: what is accepted, what is refused, and why."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
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
from dotmac.ticketing.service.jwks import JwksKeys
from tests.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    SigningKey,
    identity_provider,
)
from tests.identity_provider import claims as provider_claims

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


class TestTokenLimits:
    """What was accepted before issue 10: absurd and ill-typed time claims."""

    @pytest.mark.parametrize(
        ("exp", "problem"),
        [
            (int(time.time()) + 1000 * 365 * 86400, "exceeds the maximum"),
            (10**30, "'exp' is out of range"),
            (str(int(time.time()) + 3600), "'exp' must be a number"),
            (True, "'exp' must be a number"),
        ],
        ids=["1000-years", "10**30", "string", "boolean"],
    )
    def test_absurd_expiry_is_refused(self, exp: object, problem: str) -> None:
        token = jwt.encode(_claims(exp=exp), SECRET, algorithm="HS256")
        with pytest.raises(AuthError, match=problem):
            TokenVerifier(secret=SECRET).verify(token)

    @pytest.mark.parametrize("claim", ["iat", "nbf"])
    def test_other_time_claims_must_be_numbers(self, claim: str) -> None:
        token = jwt.encode(
            _claims(**{claim: str(int(time.time()))}), SECRET, algorithm="HS256"
        )
        with pytest.raises(AuthError, match=f"'{claim}' must be a number"):
            TokenVerifier(secret=SECRET).verify(token)

    def test_max_lifetime_is_configurable(self) -> None:
        token = issue_token(
            SECRET, tenant_id="acme", sub="u", roles=["agent"], ttl=timedelta(hours=2)
        )
        assert TokenVerifier(secret=SECRET).verify(token).sub == "u"
        short = TokenVerifier(secret=SECRET, max_lifetime=timedelta(hours=1))
        with pytest.raises(AuthError, match="exceeds the maximum of 3600 s"):
            short.verify(token)

    def test_time_is_the_injected_clock(self) -> None:
        token = issue_token(SECRET, tenant_id="acme", sub="u", roles=["agent"], now=NOW)
        at_issue = TokenVerifier(secret=SECRET, clock=lambda: NOW)
        assert at_issue.verify(token).sub == "u"
        later = TokenVerifier(secret=SECRET, clock=lambda: NOW + timedelta(days=1))
        with pytest.raises(AuthError, match="expired"):
            later.verify(token)


class TestIssuerAndAudience:
    def verifier(self) -> TokenVerifier:
        return TokenVerifier(secret=SECRET, issuer=ISSUER, audience=AUDIENCE)

    def test_matching_iss_and_aud_pass(self) -> None:
        token = issue_token(
            SECRET,
            tenant_id="acme",
            sub="u",
            roles=["agent"],
            issuer=ISSUER,
            audience=AUDIENCE,
        )
        assert self.verifier().verify(token).tenant_id == "acme"

    def test_an_audience_list_naming_this_service_passes(self) -> None:
        token = jwt.encode(
            _claims(iss=ISSUER, aud=["other-api", AUDIENCE]), SECRET, algorithm="HS256"
        )
        assert self.verifier().verify(token).sub == "u-1"

    @pytest.mark.parametrize("claim", ["iss", "aud"])
    def test_configured_claims_are_required(self, claim: str) -> None:
        present = {"iss": ISSUER, "aud": AUDIENCE}
        present.pop(claim)
        token = jwt.encode(_claims(**present), SECRET, algorithm="HS256")
        with pytest.raises(AuthError, match=f"missing the '{claim}' claim"):
            self.verifier().verify(token)

    def test_another_issuer_is_refused(self) -> None:
        token = jwt.encode(
            _claims(iss="https://evil.test/", aud=AUDIENCE), SECRET, algorithm="HS256"
        )
        with pytest.raises(AuthError, match=r"issuer \(iss\) is not accepted"):
            self.verifier().verify(token)

    def test_a_token_for_another_service_is_refused(self) -> None:
        token = jwt.encode(
            _claims(iss=ISSUER, aud="billing-api"), SECRET, algorithm="HS256"
        )
        with pytest.raises(AuthError, match=r"audience \(aud\) is not accepted"):
            self.verifier().verify(token)

    def test_without_configuration_iss_and_aud_are_not_required(self) -> None:
        token = issue_token(SECRET, tenant_id="acme", sub="u", roles=["agent"])
        assert TokenVerifier(secret=SECRET).verify(token).sub == "u"


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return SigningKey.generate("rsa-1", "RS256")


@pytest.fixture(scope="module")
def es_key() -> SigningKey:
    return SigningKey.generate("ec-1", "ES256")


def jwks_verifier(
    provider: IdentityProvider, *, cache: float = 300, refresh_min: float = 30
) -> TokenVerifier:
    return TokenVerifier(
        jwks=JwksKeys(
            provider.jwks_url, cache_seconds=cache, refresh_min_seconds=refresh_min
        ),
        issuer=ISSUER,
        audience=AUDIENCE,
    )


class TestJwks:
    """Tokens from an OIDC provider, verified against its JWKS URL."""

    @pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
    def test_provider_tokens_are_accepted(
        self, algorithm: str, rs_key: SigningKey, es_key: SigningKey
    ) -> None:
        key = rs_key if algorithm == "RS256" else es_key
        with identity_provider(rs_key, es_key) as provider:
            principal = jwks_verifier(provider).verify(key.sign(provider_claims()))
        assert principal == Principal("user-1", "acme", frozenset({Role.AGENT}))

    def test_the_key_set_is_fetched_once_and_cached(self, rs_key: SigningKey) -> None:
        with identity_provider(rs_key) as provider:
            verifier = jwks_verifier(provider)
            for _ in range(5):
                verifier.verify(rs_key.sign(provider_claims()))
            assert provider.fetches == 1

    def test_a_rotated_in_key_is_fetched_when_a_token_names_it(
        self, rs_key: SigningKey
    ) -> None:
        new_key = SigningKey.generate("rsa-2", "RS256")
        with identity_provider(rs_key) as provider:
            verifier = jwks_verifier(provider, refresh_min=0)
            verifier.verify(rs_key.sign(provider_claims()))
            provider.keys.append(new_key)  # the provider rotates
            assert verifier.verify(new_key.sign(provider_claims())).sub == "user-1"
            assert provider.fetches == 2
            # The old key still verifies until the provider drops it.
            verifier.verify(rs_key.sign(provider_claims()))
            assert provider.fetches == 2

    def test_unknown_kids_refetch_at_most_once_per_interval(
        self, rs_key: SigningKey
    ) -> None:
        new_key = SigningKey.generate("rsa-2", "RS256")
        with identity_provider(rs_key) as provider:
            verifier = jwks_verifier(provider, refresh_min=0.5)
            verifier.verify(rs_key.sign(provider_claims()))
            for n in range(20):
                forged = rs_key.sign(provider_claims(), kid=f"made-up-{n}")
                with pytest.raises(AuthError, match="is not one of the identity"):
                    verifier.verify(forged)
            assert provider.fetches == 1  # the flood never reached the provider
            provider.keys.append(new_key)
            with pytest.raises(AuthError, match="'rsa-2' is not one of"):
                verifier.verify(new_key.sign(provider_claims()))
            time.sleep(0.6)  # the refresh interval passes
            assert verifier.verify(new_key.sign(provider_claims())).sub == "user-1"
            assert provider.fetches == 2

    def test_a_retired_key_stops_verifying_once_the_cache_expires(
        self, rs_key: SigningKey
    ) -> None:
        new_key = SigningKey.generate("rsa-2", "RS256")
        with identity_provider(rs_key, new_key) as provider:
            verifier = jwks_verifier(provider, cache=0.3)
            verifier.verify(rs_key.sign(provider_claims()))
            provider.keys.remove(rs_key)  # the provider retires the old key
            time.sleep(0.4)
            with pytest.raises(AuthError, match="'rsa-1' is not one of"):
                verifier.verify(rs_key.sign(provider_claims()))
            assert verifier.verify(new_key.sign(provider_claims())).sub == "user-1"

    def test_a_token_without_kid_is_refused(self, rs_key: SigningKey) -> None:
        token = rs_key.sign(provider_claims(), kid=None)
        with (
            identity_provider(rs_key) as provider,
            pytest.raises(AuthError, match="no 'kid' header"),
        ):
            jwks_verifier(provider).verify(token)

    def test_a_key_is_only_used_with_its_own_algorithm(
        self, rs_key: SigningKey, es_key: SigningKey
    ) -> None:
        # An ES256 signature presented under the RSA key's kid.
        with identity_provider(rs_key, es_key) as provider:
            token = es_key.sign(provider_claims(), kid=rs_key.kid)
            with pytest.raises(AuthError, match="does not match the key's algorithm"):
                jwks_verifier(provider).verify(token)

    def test_a_signature_by_another_key_is_refused(self, rs_key: SigningKey) -> None:
        impostor = SigningKey.generate(rs_key.kid, "RS256")
        token = impostor.sign(provider_claims())
        with (
            identity_provider(rs_key) as provider,
            pytest.raises(AuthError, match="signature is invalid"),
        ):
            jwks_verifier(provider).verify(token)

    def test_hs256_is_not_accepted_from_a_key_set(self, rs_key: SigningKey) -> None:
        with identity_provider(rs_key) as provider:
            token = jwt.encode(provider_claims(), SECRET, algorithm="HS256")
            with pytest.raises(AuthError, match="'HS256' is not accepted"):
                jwks_verifier(provider).verify(token)

    def test_provider_tokens_obey_the_claim_rules(self, es_key: SigningKey) -> None:
        with identity_provider(es_key) as provider:
            verifier = jwks_verifier(provider)
            too_long = provider_claims(lifetime=timedelta(days=30))
            with pytest.raises(AuthError, match="exceeds the maximum"):
                verifier.verify(es_key.sign(too_long))
            with pytest.raises(AuthError, match="issuer"):
                verifier.verify(es_key.sign(provider_claims(iss="https://evil/")))

    def test_an_unreachable_provider_is_reported_as_such(
        self, rs_key: SigningKey
    ) -> None:
        with identity_provider(rs_key) as provider:
            provider.available = False
            with pytest.raises(AuthError, match="could not be fetched"):
                jwks_verifier(provider).verify(rs_key.sign(provider_claims()))

    def test_a_public_key_and_a_key_set_are_not_both_taken(
        self, rsa_keys: tuple[str, str]
    ) -> None:
        with pytest.raises(ValueError, match="not both"):
            TokenVerifier(
                public_key=rsa_keys[1], jwks=JwksKeys("http://127.0.0.1:9/jwks")
            )


class TestVerifiedTokens:
    """A token verified lately is not verified again, but never outlives its
    expiry."""

    def test_a_verified_token_is_answered_without_verifying_again(self) -> None:
        token = issue_token(SECRET, tenant_id="acme", sub="u-1", roles=["agent"])
        verifier = TokenVerifier(secret=SECRET)
        assert verifier.verified(token) is None
        first = verifier.verify(token)
        assert verifier.verified(token) is first
        assert verifier.verify(token) is first

    def test_a_cached_token_still_expires(self) -> None:
        now = [NOW]
        verifier = TokenVerifier(secret=SECRET, clock=lambda: now[0])
        token = issue_token(
            SECRET,
            tenant_id="acme",
            sub="u-1",
            roles=["agent"],
            ttl=timedelta(seconds=30),
            now=NOW,
        )
        verifier.verify(token)
        now[0] = NOW + timedelta(minutes=5)  # past exp and the leeway
        assert verifier.verified(token) is None
        with pytest.raises(AuthError, match="expired"):
            verifier.verify(token)

    def test_a_refused_token_is_not_remembered(self) -> None:
        token = issue_token(OTHER_SECRET, tenant_id="acme", sub="u", roles=["agent"])
        verifier = TokenVerifier(secret=SECRET)
        for _ in range(2):
            with pytest.raises(AuthError):
                verifier.verify(token)
        assert verifier.verified(token) is None
