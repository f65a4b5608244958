"""Customers known by e-mail address only: normalisation and derived ids."""

import pytest

from dotmac.ticketing.domain.customers import derived_customer_id, normalize_email
from dotmac.ticketing.domain.errors import InvalidCommand


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("ZOË@Exämple.de", "zoë@exämple.de"),
        # A decomposed ë (e + combining diaeresis) is the same address.
        ("zoe\u0308@example.de", "zo\u00eb@example.de"),
    ],
)
def test_addresses_are_trimmed_composed_and_lower_cased(
    given: str, normalised: str
) -> None:
    assert normalize_email(given) == normalised


@pytest.mark.parametrize(
    "bad", ["", "ada", "@example.com", "ada@", "a@b@c", "ada @example.com", "a\x00@b"]
)
def test_what_is_not_an_address_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        normalize_email(bad)
    assert refused.value.field == "customer_email"


def test_the_derived_id_is_stable_per_tenant_and_address_and_hides_it() -> None:
    first = derived_customer_id("acme", "Ada@Example.com")
    assert first == derived_customer_id("acme", " ada@example.COM")
    assert first.startswith("email-")
    assert "ada" not in first
    assert derived_customer_id("globex", "ada@example.com") != first
    assert derived_customer_id("acme", "bob@example.com") != first
    # Fixed for good: stored tickets carry it.
    assert first == "email-9e4124f9-e68a-52b6-91c6-51cb2fa60bc2"
