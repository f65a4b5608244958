"""Who is calling: bearer tokens in, a ``Principal`` out.

The tenant always comes from the verified token, never from a request body
(docs/architecture.md, "Tenancy"), so this module is where tenancy starts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from dotmac.ticketing.service.clock import Clock, system_clock
from dotmac.ticketing.service.jwks import (
    JWKS_ALGORITHMS,
    JwksKeys,
    SigningKeyUnavailable,
)
from dotmac.ticketing.service.settings import JWT_SECRET_MIN_LENGTH, Settings
from dotmac.ticketing.service.token_claims import time_claims_problem

HS256 = "HS256"
RS256 = "RS256"
REQUIRED_CLAIMS = ("sub", "tenant_id", "roles", "exp")
DEFAULT_TOKEN_TTL = timedelta(hours=12)
# TICKETING_JWT_MAX_LIFETIME_SECONDS' default.
DEFAULT_MAX_LIFETIME = timedelta(days=1)
# Verified tokens kept per process, and for how long at most (seconds).
VERIFIED_MAX = 10_000
VERIFIED_FOR = 60.0


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    # Another platform service acting on a tenant's behalf (no human behind it).
    SERVICE = "service"


# Most privileged first: a principal is shown and audited as its top role.
ROLES_BY_PRIVILEGE = (
    Role.ADMIN,
    Role.SERVICE,
    Role.SUPERVISOR,
    Role.AGENT,
    Role.CUSTOMER,
)
STAFF_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SERVICE})


class AuthError(Exception):
    """The caller could not be authenticated; the message is safe to show."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller within one tenant."""

    sub: str
    tenant_id: str
    roles: frozenset[Role]

    def __post_init__(self) -> None:
        # Every permission check assumes at least one role; an empty set would
        # make primary_role meaningless and quietly deny or allow by accident.
        if not self.roles:
            raise ValueError("a principal needs at least one role")

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def is_staff(self) -> bool:
        return self.has_any(*STAFF_ROLES)

    @property
    def primary_role(self) -> Role:
        return next(role for role in ROLES_BY_PRIVILEGE if role in self.roles)


def _check_secret(secret: str) -> None:
    if len(secret.encode()) < JWT_SECRET_MIN_LENGTH:
        raise ValueError(
            f"an HS256 secret needs at least {JWT_SECRET_MIN_LENGTH} bytes "
            "(RFC 7518 section 3.2)"
        )


def _load_public_key(pem: str) -> RSAPublicKey:
    # Parsed once here so a bad key fails at start-up, not on the first call.
    try:
        key = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(pem)
    except jwt.InvalidKeyError as error:
        raise ValueError(f"not a usable RSA key: {error}") from error
    if not isinstance(key, RSAPublicKey):
        # A private key here means the signing key was copied to a service
        # that only needs to verify: refuse rather than spread it further.
        raise ValueError("expected an RSA public key, got a private key")
    return key


def _parse_roles(value: object) -> frozenset[Role]:
    if not isinstance(value, list) or not value:
        raise AuthError("token claim 'roles' must be a non-empty list")
    known = {role.value for role in Role}
    unknown = sorted(
        str(role) for role in value if not isinstance(role, str) or role not in known
    )
    if unknown:
        raise AuthError(f"token names unknown role(s): {', '.join(unknown)}")
    return frozenset(Role(role) for role in value)


def _text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise AuthError(f"token claim {name!r} must be a non-empty string")
    if "\x00" in value or len(value) > 200:
        # Tenant and subject end up in PostgreSQL text columns and log lines.
        raise AuthError(f"token claim {name!r} must be at most 200 characters, no NUL")
    return value


class TokenVerifier:
    """Verifies bearer tokens: HS256 (secret), RS256 (public key), or RS256 and
    ES256 from an OIDC provider's key set (JWKS URL, key chosen by ``kid``).

    The key is chosen by the token's ``alg`` header and each algorithm only
    ever sees its own key, so an RS256 public key can never be used as an
    HMAC secret ("algorithm confusion"), and ``none`` is never accepted.
    Beyond the signature: ``exp`` is required and must be a number, the
    lifetime is bounded by ``max_lifetime``, and ``iss`` / ``aud`` must match
    when configured.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        jwks: JwksKeys | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
        leeway: timedelta = timedelta(seconds=30),
        clock: Clock = system_clock,
    ) -> None:
        keys: dict[str, Any] = {}
        if secret is not None:
            _check_secret(secret)
            keys[HS256] = secret
        if public_key is not None:
            if jwks is not None:
                raise ValueError("a public key or a JWKS URL, not both")
            keys[RS256] = _load_public_key(public_key)
        if not keys and jwks is None:
            raise ValueError("a JWT secret, a public key or a JWKS URL is required")
        self._keys = keys
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._max_lifetime = max_lifetime.total_seconds()
        # Tolerates clock skew between the token issuer and this service.
        self._leeway = leeway.total_seconds()
        self._clock = clock
        self._required = [
            *REQUIRED_CLAIMS,
            *(["iss"] if issuer is not None else []),
            *(["aud"] if audience is not None else []),
        ]
        # Tokens verified lately: a client sends the same one with every
        # request, and checking its signature again would cost each request
        # a decode and an HMAC or RSA verification. Its time claims are
        # checked at every use; a key withdrawn meanwhile stops a cached
        # token within VERIFIED_FOR seconds, or as soon as the key set is
        # fetched again.
        self._verified: OrderedDict[str, tuple[float, Mapping[str, Any], Principal]]
        self._verified = OrderedDict()
        self._verified_lock = threading.Lock()
        self._verified_for = min(
            VERIFIED_FOR, jwks.cache_seconds if jwks else VERIFIED_FOR
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """The verifier a deployment's settings describe.

        Always on the real clock, never TICKETING_CLOCK_FILE's: a token's
        expiry is a fact about the world, and a test or demo moving the
        service's clock must not make real tokens expire or revive.
        """
        jwks = (
            JwksKeys(
                settings.jwt_jwks_url,
                cache_seconds=settings.jwt_jwks_cache_seconds,
                refresh_min_seconds=settings.jwt_jwks_refresh_min_seconds,
                timeout_seconds=settings.jwt_jwks_timeout_seconds,
            )
            if settings.jwt_jwks_url is not None
            else None
        )
        return cls(
            secret=settings.jwt_secret,
            public_key=settings.jwt_public_key,
            jwks=jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime=timedelta(seconds=settings.jwt_max_lifetime_seconds),
        )

    @property
    def algorithms(self) -> frozenset[str]:
        from_jwks = JWKS_ALGORITHMS - set(self._keys) if self._jwks else frozenset()
        return frozenset(self._keys) | from_jwks

    def _key_for(self, header: dict[str, Any]) -> Any:
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise AuthError(
                f"token algorithm {algorithm!r} is not accepted "
                f"(expected {' or '.join(sorted(self.algorithms))})"
            )
        if algorithm in self._keys:
            return self._keys[algorithm]
        assert self._jwks is not None  # algorithms only lists what has a key
        try:
            return self._jwks.key_for(header)
        except SigningKeyUnavailable as error:
            raise AuthError(str(error)) from error

    def verified(self, token: str) -> Principal | None:
        """The caller of a token verified lately and still valid; None when it
        must be verified (``verify``), which may fetch keys."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        at, claims, principal = entry
        now = self._clock().timestamp()
        stale = now - at >= self._verified_for
        if stale or self._time_problem(claims, now) is not None:
            with self._verified_lock:
                self._verified.pop(token, None)
            return None
        return principal

    def verify(self, token: str) -> Principal:
        known = self.verified(token)
        if known is not None:
            return known
        principal, claims = self._verify(token)
        with self._verified_lock:
            self._verified[token] = (self._clock().timestamp(), claims, principal)
            while len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)
        return principal

    def _time_problem(self, claims: Mapping[str, Any], now: float) -> str | None:
        return time_claims_problem(
            claims, now=now, leeway=self._leeway, max_lifetime=self._max_lifetime
        )

    def _verify(self, token: str) -> tuple[Principal, Mapping[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise AuthError("token is malformed") from error
        key = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": self._required,
                    # Checked below instead: PyJWT takes "exp": "9999999999"
                    # (a string) and bounds no lifetime.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.MissingRequiredClaimError as error:
            raise AuthError(f"token is missing the {error.claim!r} claim") from error
        except jwt.InvalidSignatureError as error:
            raise AuthError("token signature is invalid") from error
        except jwt.InvalidIssuerError as error:
            raise AuthError(
                f"token issuer (iss) is not accepted; expected {self._issuer!r}"
            ) from error
        except jwt.InvalidAudienceError as error:
            expected = (
                f"expected {self._audience!r}"
                if self._audience is not None
                else "this service accepts tokens without one"
            )
            raise AuthError(
                f"token audience (aud) is not accepted; {expected}"
            ) from error
        except jwt.InvalidTokenError as error:
            raise AuthError(f"token is invalid: {error}") from error
        problem = self._time_problem(claims, self._clock().timestamp())
        if problem is not None:
            raise AuthError(problem)
        principal = Principal(
            sub=_text_claim(claims, "sub"),
            tenant_id=_text_claim(claims, "tenant_id"),
            roles=_parse_roles(claims["roles"]),
        )
        return principal, claims


def issue_token(
    secret: str,
    *,
    tenant_id: str,
    sub: str,
    roles: Sequence[str],
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    now: datetime | None = None,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """Sign an HS256 token that ``TokenVerifier(secret=...)`` accepts.

    For development and service-to-service use; production identity
    providers issue their own (usually RS256) tokens.
    """
    _check_secret(secret)
    if not tenant_id or not sub:
        raise ValueError("tenant_id and sub must be non-empty")
    if not roles:
        raise ValueError("at least one role is required")
    role_values = [Role(role).value for role in roles]  # ValueError if unknown
    issued_at = now if now is not None else datetime.now(UTC)
    if issued_at.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    claims: dict[str, Any] = {
        "sub": sub,
        "tenant_id": tenant_id,
        "roles": role_values,
        "iat": issued_at,
        "exp": issued_at + ttl,
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=HS256)
