"""A real OIDC-style identity provider for tests: signing keys and a JWKS URL.

The key set is served over HTTP on a free loopback port, exactly as a
provider publishes it, and every fetch is counted, so tests can see when
the service refetches it (rotation, unknown ``kid``, cache expiry).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/"
AUDIENCE = "ticketing-api"


@dataclass
class SigningKey:
    """A provider's private key, its kid and algorithm."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def generate(cls, kid: str, algorithm: str) -> SigningKey:
        if algorithm == "RS256":
            return cls(kid, algorithm, rsa.generate_private_key(65537, 2048))
        if algorithm == "ES256":
            return cls(kid, algorithm, ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(algorithm)

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        jwk: dict[str, Any] = (
            RSAAlgorithm.to_jwk(public, as_dict=True)
            if self.algorithm == "RS256"
            else ECAlgorithm.to_jwk(public, as_dict=True)
        )
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], *, kid: str | None = "") -> str:
        """A token over ``claims``; ``kid`` overrides (None: no kid header)."""
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers=headers
        )


def claims(
    *, lifetime: timedelta = timedelta(minutes=30), **overrides: Any
) -> dict[str, Any]:
    """What a provider puts in an access token for this service."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "tenant_id": "acme",
        "roles": ["agent"],
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


@dataclass
class IdentityProvider:
    """The published keys (change ``keys`` to rotate) and the fetch count."""

    port: int = 0
    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    available: bool = True

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def document(self) -> bytes:
        return json.dumps({"keys": [key.public_jwk() for key in self.keys]}).encode()


def _handler_for(provider: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            if not provider.available or self.path != "/.well-known/jwks.json":
                self.send_error(503 if not provider.available else 404)
                return
            body = provider.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet

    return Handler


@contextmanager
def identity_provider(*keys: SigningKey) -> Iterator[IdentityProvider]:
    """A JWKS endpoint on a free loopback port publishing ``keys``."""
    provider = IdentityProvider(keys=list(keys))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(provider))
    server.daemon_threads = True
    provider.port = server.server_address[1]
    # A short poll interval: shutdown() waits for it at the end of each test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
