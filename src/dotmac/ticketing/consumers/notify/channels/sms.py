"""SMS through an HTTP provider: a Twilio-style form post (To, From, Body).

The delivery key goes in an ``Idempotency-Key`` header: a provider that
honours it (as payment and messaging APIs commonly do) accepts a re-send
after a crash as the same request instead of a second message, and one that
does not can still be audited by it. Without ``TICKETING_SMS_URL`` the text
is written to the log and counts as sent.
"""

from __future__ import annotations

import httpx
import structlog

from dotmac.ticketing.consumers.notify.channels import (
    Delivery,
    DeliveryFailed,
    DeliveryRefused,
)

log = structlog.get_logger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Client errors that may pass later: credentials an operator fixes (401,
# 403), timeouts and rate limits.
_WORTH_RETRYING = frozenset({401, 403, 408, 409, 425, 429})


class SmsChannel:
    def __init__(
        self,
        url: str | None,
        *,
        user: str | None = None,
        password: str | None = None,
        sender: str = "Ticketing",
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self._url = url
        self._sender = sender
        auth = httpx.BasicAuth(user, password or "") if user else None
        self._client = httpx.AsyncClient(auth=auth, timeout=timeout) if url else None

    async def send(self, delivery: Delivery) -> None:
        body = str(delivery.payload["body"])
        if self._client is None or self._url is None:
            log.info("SMS (no provider configured)", to=delivery.recipient, body=body)
            return
        try:
            response = await self._client.post(
                self._url,
                data={"To": delivery.recipient, "From": self._sender, "Body": body},
                headers={"Idempotency-Key": delivery.key},
            )
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"SMS provider: {error!r}") from error
        if response.is_success:
            return
        detail = f"SMS provider answered {response.status_code}: {response.text[:300]}"
        if 400 <= response.status_code < 500 and response.status_code not in (
            _WORTH_RETRYING
        ):
            # A malformed number or a refused message does not improve with time.
            raise DeliveryRefused(detail)
        raise DeliveryFailed(detail)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
