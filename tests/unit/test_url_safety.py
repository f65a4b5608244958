"""Webhook URLs: no requests into private networks unless allowed."""

from __future__ import annotations

import pytest

from dotmac.ticketing.service.url_safety import (
    UnsafeWebhookURL,
    check_resolved_address,
    check_webhook_url,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/ticketing",
        "http://203.0.113.0.nip.io/x",  # a name: checked after resolution
        "https://8.8.8.8:8443/hook",
        "https://[2606:4700:4700::1111]/hook",
    ],
)
def test_public_urls_pass(url: str) -> None:
    check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/api", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("http://0x7f000001/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://localhost/", "loopback name"),
        ("http://api.localhost/", "loopback name"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10/", "private"),
        ("http://[::ffff:192.168.0.10]/", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "non-global"),
        ("http://240.0.0.1/", "reserved"),
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:pw@example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("http://example.com:99999/", "malformed"),
        ("https://example.com/" + "a" * 3000, "longer than"),
    ],
)
def test_unsafe_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeWebhookURL, match=reason):
        check_webhook_url(url, allow_private=False)


def test_allow_private_admits_loopback_but_not_nonsense() -> None:
    check_webhook_url("http://127.0.0.1:9000/hook", allow_private=True)
    check_webhook_url("http://localhost:9000/hook", allow_private=True)
    with pytest.raises(UnsafeWebhookURL, match="http or https"):
        check_webhook_url("gopher://127.0.0.1/", allow_private=True)


def test_resolved_addresses_are_checked() -> None:
    check_resolved_address("hooks.example.com", "93.184.216.34", allow_private=False)
    with pytest.raises(UnsafeWebhookURL, match=r"rebind\.test \(10\.0\.0\.5\)"):
        check_resolved_address("rebind.test", "10.0.0.5", allow_private=False)
    check_resolved_address("rebind.test", "10.0.0.5", allow_private=True)
