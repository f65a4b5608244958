"""Signing and checking the tokens of one-click satisfaction links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dotmac.ticketing.service.satisfaction_links import (
    LinkExpired,
    LinkRefused,
    SatisfactionClaims,
    link_secret,
    page_url,
    rating_urls,
    sign,
    verify,
)
from dotmac.ticketing.service.settings import Settings

SECRET = b"s" * 32
NOW = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
CLAIMS = SatisfactionClaims(
    tenant_id="acme",
    ticket_id="3f0c6a8e-8d0f-4a53-9a55-2f4a1c0f6a11",
    customer_id="cust-ü",
    expires_at=NOW + timedelta(days=30),
)


def test_a_signed_token_verifies_to_its_claims() -> None:
    token = sign(CLAIMS, SECRET)
    assert token.isascii() and "/" not in token and "=" not in token
    assert verify(token, SECRET, NOW) == CLAIMS


def test_it_expires() -> None:
    token = sign(CLAIMS, SECRET)
    assert verify(token, SECRET, CLAIMS.expires_at - timedelta(seconds=1))
    with pytest.raises(LinkExpired):
        verify(token, SECRET, CLAIMS.expires_at)


def test_a_changed_claim_signature_or_key_is_refused() -> None:
    token = sign(CLAIMS, SECRET)
    first, _, mac = token.partition(".")
    other = sign(
        SatisfactionClaims("acme", CLAIMS.ticket_id, "cust-2", CLAIMS.expires_at),
        SECRET,
    )
    swapped = f"{other.partition('.')[0]}.{mac}"  # someone else's claims
    for bad in (
        swapped,
        f"{first}.{mac[:-2]}",
        f"{first}x.{mac}",
        token + ".",
        "",
        "x" * 3000,
        "ünï.cöde",
    ):
        with pytest.raises(LinkRefused) as refused:
            verify(bad, SECRET, NOW)
        assert not isinstance(refused.value, LinkExpired)
    with pytest.raises(LinkRefused):
        verify(token, b"another key, also 32 bytes long", NOW)
    with pytest.raises(LinkRefused):
        verify(token, None, NOW)  # the deployment signs nothing


def test_the_key_is_the_link_secret_else_one_derived_from_the_jwt_secret() -> None:
    jwt = "j" * 40
    derived = link_secret(Settings(jwt_secret=jwt))
    assert derived is not None and jwt.encode() not in derived
    assert link_secret(Settings(jwt_secret=jwt, link_secret="l" * 32)) == b"l" * 32
    assert link_secret(Settings()) is None


def test_one_link_per_rating_on_a_get_page() -> None:
    token = sign(CLAIMS, SECRET)
    page = page_url("https://help.acme.test/", token)
    assert page == f"https://help.acme.test/api/v1/satisfaction/{token}"
    assert [link["url"] for link in rating_urls("https://help.acme.test", token)] == [
        f"{page}?rating={r}" for r in range(1, 6)
    ]
