"""Signed satisfaction links: a customer rates a ticket from a mail, no login.

The resolution e-mail carries one link per rating,
``{public_url}/api/v1/satisfaction/{token}?rating=N``, and one to a page
that asks (``…/{token}``). The token says which tenant's ticket, which
customer and until when, and carries an HMAC-SHA256 over exactly that:
``base64url(JSON claims) "." base64url(HMAC(secret, "satisfaction." +
first part))``. Anyone holding the link may rate that ticket as its
customer, until it expires, and nothing else: it opens no other ticket and
no other action.

The secret is the deployment's ``TICKETING_LINK_SECRET``, else one derived
from ``TICKETING_JWT_SECRET`` (so ``make run`` needs nothing more); without
either no links are made, and every link is refused.

Pure (the instant to check against is passed in); :func:`link_secret`
reads the deployment's settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from dotmac.ticketing.service.settings import Settings

_PURPOSE = b"satisfaction."
_DERIVATION_LABEL = b"dotmac-ticketing satisfaction links v1"
TOKEN_MAX = 2_000
RATINGS = (1, 2, 3, 4, 5)
#: How the mail and the page word each rating.
RATING_LABELS = {1: "Very poor", 2: "Poor", 3: "OK", 4: "Good", 5: "Excellent"}


class LinkRefused(Exception):
    """The token is not one of ours (malformed, forged, another secret)."""


class LinkExpired(LinkRefused):
    """The token was ours, but its time is over."""


@dataclass(frozen=True)
class SatisfactionClaims:
    tenant_id: str
    ticket_id: str
    customer_id: str
    expires_at: datetime


def link_secret(settings: Settings) -> bytes | None:
    """The key links are signed with; None when the deployment has none."""
    if settings.link_secret:
        return settings.link_secret.encode()
    if settings.jwt_secret:
        # Derived, not the JWT key itself: a link's MAC is never a token's.
        return hmac.new(
            settings.jwt_secret.encode(), _DERIVATION_LABEL, hashlib.sha256
        ).digest()
    return None


def sign(claims: SatisfactionClaims, secret: bytes) -> str:
    body = json.dumps(
        {
            "t": claims.tenant_id,
            "k": claims.ticket_id,
            "c": claims.customer_id,
            "e": int(claims.expires_at.timestamp()),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    first = _b64(body)
    return f"{first}.{_b64(_mac(secret, first))}"


def verify(token: str, secret: bytes | None, now: datetime) -> SatisfactionClaims:
    """The claims of a token we signed that has not expired.

    Raises :class:`LinkRefused` for anything else (:class:`LinkExpired`
    for a good token past its time): the signature is checked before the
    claims are read.
    """
    if secret is None or not token or len(token) > TOKEN_MAX or token.count(".") != 1:
        raise LinkRefused("not a satisfaction link")
    first, _, mac = token.partition(".")
    try:
        given = _unb64(mac)
    except ValueError:
        raise LinkRefused("not a satisfaction link") from None
    if not hmac.compare_digest(given, _mac(secret, first)):
        raise LinkRefused("not a satisfaction link")
    try:
        raw = json.loads(_unb64(first))
        claims = SatisfactionClaims(
            tenant_id=_text(raw["t"]),
            ticket_id=_text(raw["k"]),
            customer_id=_text(raw["c"]),
            expires_at=datetime.fromtimestamp(int(raw["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        raise LinkRefused("not a satisfaction link") from None
    if now >= claims.expires_at:
        raise LinkExpired("this link has expired")
    return claims


def expiry(at: datetime, days: int) -> datetime:
    return at + timedelta(days=days)


def page_url(public_url: str, token: str) -> str:
    """The page that asks for a rating."""
    return f"{public_url.rstrip('/')}/api/v1/satisfaction/{quote(token, safe='.')}"


def rating_urls(public_url: str, token: str) -> list[dict[str, object]]:
    """One link per rating, best last: ``[{"rating": 1, "url": ...}, ...]``."""
    page = page_url(public_url, token)
    return [{"rating": r, "url": f"{page}?rating={r}"} for r in RATINGS]


def _mac(secret: bytes, first: str) -> bytes:
    return hmac.new(secret, _PURPOSE + first.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    try:
        return base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=b"-_", validate=True
        )
    except binascii.Error as error:
        raise ValueError(str(error)) from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected text")
    return value
