"""Which webhook URLs the service may call: no requests into private networks.

A webhook URL is chosen by a tenant's admin, so without a check it is a way
to make the service send requests to its own neighbourhood (server-side
request forgery): the cloud metadata endpoint at 169.254.169.254, a
database on 10.x, the API itself on 127.0.0.1. Two checks, both refusing
unless ``allow_private`` (``TICKETING_WEBHOOK_ALLOW_PRIVATE=true``):

- :func:`check_webhook_url` — pure, at registration and before each send:
  scheme, host, no credentials, and literal addresses in any spelling the
  resolver accepts (``127.1``, ``2130706433``, ``0x7f000001``, ``[::1]``);
- :func:`check_resolved_address` — at send time, on every address the
  host name resolved to, because a public-looking name can point anywhere
  (and can change between registration and delivery).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_MAX = 2048
# RFC 6761: "localhost" and its subdomains are the loopback, whatever DNS says.
_LOOPBACK_NAMES = ("localhost", "localhost.")


class UnsafeWebhookURL(ValueError):
    """The URL may not be called as a webhook; the message says why."""


def check_webhook_url(url: str, allow_private: bool) -> None:
    """Refuse ``url`` as a webhook target, with a reason, or return None."""
    if len(url) > URL_MAX:
        raise UnsafeWebhookURL(f"the URL is longer than {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as error:
        raise UnsafeWebhookURL(f"the URL is malformed: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookURL("the URL must use http or https")
    host = parts.hostname
    if not host:
        raise UnsafeWebhookURL("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookURL(
            "the URL must not contain credentials; use the webhook secret"
        )
    if port == 0:
        raise UnsafeWebhookURL("the URL's port must not be 0")
    if allow_private:
        return
    if host.lower() in _LOOPBACK_NAMES or host.lower().rstrip(".").endswith(
        ".localhost"
    ):
        raise UnsafeWebhookURL(f"{host} is a loopback name")
    address = literal_address(host)
    if address is not None:
        check_resolved_address(host, address, allow_private=False)


def check_resolved_address(
    host: str, address: str | IPAddress, allow_private: bool
) -> None:
    """Refuse an address ``host`` resolved to unless it is globally routable."""
    if allow_private:
        return
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    reason = non_public_reason(ip)
    if reason is not None:
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise UnsafeWebhookURL(
            f"{shown} is a {reason} address; webhooks may only call public"
            " addresses (TICKETING_WEBHOOK_ALLOW_PRIVATE=true allows it)"
        )


def non_public_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and friends reach the embedded IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour or _teredo_client(ip)
        if embedded is not None:
            return non_public_reason(embedded)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        # e.g. 100.64.0.0/10 (carrier-grade NAT), documentation ranges.
        return "non-global"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host that is an IP literal stands for (any spelling)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        # inet_aton accepts the legacy forms getaddrinfo also accepts:
        # "127.1", "2130706433", "0x7f.0.0.1". Pure parsing, no DNS.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _teredo_client(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    teredo = ip.teredo
    return teredo[1] if teredo else None
