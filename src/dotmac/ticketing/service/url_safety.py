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

:func:`resolve_checked_target` does both at send time and pins the request
to the checked address. Workflow integration hooks (``consumers.
integrations``) are URLs chosen by an admin too and get the same checks,
named after their own setting (:data:`INTEGRATIONS`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_MAX = 2048
# RFC 6761: "localhost" and its subdomains are the loopback, whatever DNS says.
_LOOPBACK_NAMES = ("localhost", "localhost.")


class UnsafeWebhookURL(ValueError):
    """The URL may not be called as a webhook; the message says why."""


class UnresolvedHost(OSError):
    """The URL's host name did not resolve (DNS may recover: retry)."""


@dataclass(frozen=True)
class Caller:
    """Who calls admin-chosen URLs, for the messages of a refusal."""

    name: str
    allow_private_setting: str
    credentials_hint: str

    @property
    def public_only(self) -> str:
        return (
            f"{self.name} may only call public addresses"
            f" ({self.allow_private_setting}=true allows it)"
        )


WEBHOOKS = Caller(
    "webhooks", "TICKETING_WEBHOOK_ALLOW_PRIVATE", "use the webhook secret"
)
INTEGRATIONS = Caller(
    "integrations", "TICKETING_INTEGRATIONS_ALLOW_PRIVATE", "use the hook's auth"
)


@dataclass(frozen=True)
class CheckedTarget:
    """Where to send a request so that it reaches a checked address.

    ``url`` has its host replaced by the address; ``host`` is the original
    Host header and ``server_name`` the TLS server name to present.
    """

    url: str
    host: str
    server_name: str


def check_webhook_url(url: str, allow_private: bool, caller: Caller = WEBHOOKS) -> None:
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
            f"the URL must not contain credentials; {caller.credentials_hint}"
        )
    if port == 0:
        raise UnsafeWebhookURL("the URL's port must not be 0")
    if allow_private:
        return
    if host.lower() in _LOOPBACK_NAMES or host.lower().rstrip(".").endswith(
        ".localhost"
    ):
        raise UnsafeWebhookURL(f"{host} is a loopback name; {caller.public_only}")
    address = literal_address(host)
    if address is not None:
        check_resolved_address(host, address, allow_private=False, caller=caller)


def check_resolved_address(
    host: str,
    address: str | IPAddress,
    allow_private: bool,
    caller: Caller = WEBHOOKS,
) -> None:
    """Refuse an address ``host`` resolved to unless it is globally routable."""
    if allow_private:
        return
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    reason = non_public_reason(ip)
    if reason is not None:
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise UnsafeWebhookURL(f"{shown} is a {reason} address; {caller.public_only}")


async def resolve_checked_target(
    url: str, allow_private: bool, caller: Caller = WEBHOOKS
) -> CheckedTarget:
    """Check ``url``, resolve its host, check every address, pin the first.

    Raises :class:`UnsafeWebhookURL` (do not retry) or
    :class:`UnresolvedHost` (DNS may recover). Sending to the returned
    address, not the name, means a name cannot be re-pointed at a private
    address between the check and the connection.
    """
    check_webhook_url(url, allow_private, caller)
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            hostname, port, type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvedHost(f"cannot resolve {hostname}: {error}") from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise UnresolvedHost(f"{hostname} resolves to no address")
    for address in addresses:
        check_resolved_address(hostname, address, allow_private, caller)
    first = addresses[0]
    shown = f"[{first}]" if first.version == 6 else str(first)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return CheckedTarget(
        url=urlunsplit(parts._replace(netloc=netloc)),
        host=parts.netloc.rpartition("@")[2],
        server_name=hostname,
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
