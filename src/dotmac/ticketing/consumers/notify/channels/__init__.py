"""Channel adapters: how one pending delivery reaches its recipient.

Each channel sends one :class:`Delivery` (a row of the
``notification_deliveries`` ledger) and either returns (the provider
accepted it), raises :class:`DeliveryFailed` (try again later) or
:class:`DeliveryRefused` (will never work: give up now). Every channel
passes the delivery key to the provider where the provider takes one, so a
re-send after a crash between "sent" and "marked sent" is recognisable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Delivery:
    key: str
    tenant_id: str
    event_id: str
    event_type: str
    channel: str
    recipient: str
    payload: Mapping[str, Any]
    attempts: int = 0
    created_at: datetime | None = None
    # Looked up at send time (a webhook's secret is not copied into the ledger).
    secret: str | None = field(default=None, repr=False)


class DeliveryFailed(Exception):
    """The send did not succeed; it may succeed later."""


class DeliveryRefused(DeliveryFailed):
    """The send can never succeed (bad address, forbidden URL): give up."""


class Channel(Protocol):
    async def send(self, delivery: Delivery) -> None:
        """Hand the delivery to its provider, or raise DeliveryFailed."""

    async def aclose(self) -> None:
        """Release connections."""
