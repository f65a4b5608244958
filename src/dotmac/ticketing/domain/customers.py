"""Customers known only by their e-mail address (pure).

Staff may open a ticket for a customer they know by address alone (a
phone call, a forwarded mail), and an inbound e-mail names nothing else.
Such a customer gets an id of their own that the same address always
gives again: ``email-<uuid5>`` of the tenant and the normalised address.
It is scoped to the tenant, so the same person at two tenants is two
customers (as with every id here), and the address itself is not in it:
ids travel into URLs, logs and analysts' tables, addresses should not.

Which id an address stands for (a known customer's, else this one) is
decided by ``service.customers.CustomerDirectory.customer_for_email``.
"""

from __future__ import annotations

import unicodedata
from uuid import NAMESPACE_URL, uuid5

from dotmac.ticketing.domain.errors import InvalidCommand

#: The namespace of ids derived from addresses: ``uuid5(namespace, tenant, address)``.
CUSTOMER_EMAIL_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dotmac-ticketing:customer-email")

#: The prefix of a derived id, so that one reads as "known by address only".
DERIVED_ID_PREFIX = "email-"

#: RFC 5321's limit on a forward path.
EMAIL_MAX = 320


def normalize_email(address: str) -> str:
    """The form two spellings of one address share: trimmed, NFC, lower-case.

    Mail systems treat the domain case-insensitively and, in practice, the
    local part too (``Ada@Example.com`` and ``ada@example.com`` reach the
    same person), so both are folded. Anything without exactly one ``@``
    between a non-empty local part and domain is refused.
    """
    text = unicodedata.normalize("NFC", address).strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise InvalidCommand("customer_email", "must be an e-mail address")
    if len(text) > EMAIL_MAX or any(c.isspace() or c == "\x00" for c in text):
        raise InvalidCommand(
            "customer_email",
            f"must be an e-mail address without spaces (at most {EMAIL_MAX} chars)",
        )
    return text


def derived_customer_id(tenant_id: str, address: str) -> str:
    """The stable id of the tenant's customer known only by ``address``."""
    key = f"{tenant_id}\x00{normalize_email(address)}"
    return f"{DERIVED_ID_PREFIX}{uuid5(CUSTOMER_EMAIL_NAMESPACE, key)}"
