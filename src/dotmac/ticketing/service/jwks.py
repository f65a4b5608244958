"""An OIDC provider's signing keys, from its JWKS URL, chosen by ``kid``.

PyJWT's ``PyJWKClient`` does the fetching and caching: the key set is kept
for ``cache_seconds`` and then fetched again (keys the provider retired stop
verifying), and a token naming a ``kid`` the cached set lacks (a key the
provider just rotated in) refetches it at once, but at most once per
``refresh_min_seconds``, so a stream of tokens with made-up ``kid`` values
cannot turn this service into a flood against the provider. A failed fetch
keeps the previous set cached (PyJWT >= 2.13).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
import structlog

# What OIDC providers sign with; HS256 never comes from a key set here (a
# shared secret published at a URL would be no secret).
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})
KID_MAX_LENGTH = 200

log = structlog.get_logger(__name__)


class SigningKeyUnavailable(Exception):
    """No key to verify the token with; the message is safe to show."""


class JwksKeys:
    """The signing keys published at ``url``."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300,
        refresh_min_seconds: float = 30,
        timeout_seconds: float = 5,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self._client = jwt.PyJWKClient(
            url,
            cache_jwk_set=True,
            lifespan=cache_seconds,
            cooldown_duration=refresh_min_seconds,
            timeout=timeout_seconds,
        )

    def key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        """The key the token's (unverified) header names by its ``kid``."""
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise SigningKeyUnavailable(
                "token has no 'kid' header naming its signing key"
            )
        if len(kid) > KID_MAX_LENGTH:
            raise SigningKeyUnavailable(
                f"token 'kid' header is longer than {KID_MAX_LENGTH} characters"
            )
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as error:
            log.warning("jwks fetch failed", url=self.url, error=str(error))
            raise SigningKeyUnavailable(
                "the identity provider's signing keys could not be fetched; "
                "try again shortly"
            ) from error
        except jwt.PyJWKClientError as error:
            # Also when the set was fetched but holds no signing key at all.
            raise SigningKeyUnavailable(
                f"token signing key {kid!r} is not one of the identity provider's keys"
            ) from error
        except jwt.PyJWTError as error:
            log.warning("jwks unusable", url=self.url, error=str(error))
            raise SigningKeyUnavailable(
                "the identity provider's key set holds no usable key"
            ) from error
