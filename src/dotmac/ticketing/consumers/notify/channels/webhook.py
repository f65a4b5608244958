"""Webhooks: the CloudEvent POSTed to a tenant's URL, signed with its secret.

Headers: ``Content-Type: application/cloudevents+json`` (structured mode),
``X-Ticketing-Signature: sha256=<hex HMAC-SHA256 of the body>`` keyed with
the webhook's secret, and ``X-Ticketing-Delivery: <delivery key>``, which
stays the same across retries so a receiver can drop a delivery it already
processed. Any 2xx is success; anything else (redirects included: they are
not followed) is retried by the dispatcher with back-off.

The target is checked at send time, after DNS resolution: every address
the host resolves to must be public unless private addresses are allowed,
and the request goes to the checked address (with the original Host header
and TLS server name), so a name cannot be re-pointed at a private address
between the check and the connection.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from dotmac.ticketing.consumers.notify.channels import (
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
)
from dotmac.ticketing.service.url_safety import (
    UnresolvedHost,
    UnsafeWebhookURL,
    resolve_checked_target,
)

CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Ticketing-Signature"
DELIVERY_HEADER = "X-Ticketing-Delivery"
USER_AGENT = "dotmac-ticketing-webhooks/1"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (used by the tests): constant-time comparison."""
    return hmac.compare_digest(signature(secret, body), header)


class WebhookChannel:
    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: httpx.Timeout = TIMEOUT,
        max_connections: int = 100,
    ) -> None:
        self._allow_private = allow_private
        # As many connections as the dispatcher has sends in flight: receivers
        # that hang must not make the others wait for a connection.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=20
            ),
        )

    async def send(self, delivery: Delivery) -> None:
        payload = delivery.payload
        url = str(payload["url"])
        body = str(payload["body"]).encode()
        if delivery.secret is None:
            raise DeliveryRefused("the webhook is no longer registered")
        try:
            target = await resolve_checked_target(url, self._allow_private)
        except UnsafeWebhookURL as error:
            raise DeliveryRefused(f"refused webhook URL: {error}") from error
        except UnresolvedHost as error:
            raise DeliveryFailed(str(error)) from error
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: signature(delivery.secret, body),
            DELIVERY_HEADER: delivery.key,
            "User-Agent": USER_AGENT,
            "Host": target.host,
        }
        try:
            response = await self._client.post(
                target.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.server_name},
            )
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"webhook: {error!r}") from error
        if not response.is_success:
            raise DeliveryFailed(
                f"webhook answered {response.status_code}: {response.text[:300]}"
            )

    async def aclose(self) -> None:
        await self._client.aclose()
