"""Webhook registrations: where a tenant wants its ticket events sent.

The notifier reads the ``webhooks`` table to deliver; this module is the
admin's side of it. Every query names the tenant, so another tenant's
webhook is simply not found. A registration's URL is checked here against
server-side request forgery (see ``consumers.channels.url_safety``); the
sender checks the resolved addresses again before every delivery.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from dotmac.ticketing.consumers.channels.url_safety import (
    UnsafeWebhookURL,
    check_resolved_address,
    check_webhook_url,
    literal_address,
)
from dotmac.ticketing.service.errors import WebhookNotFound

Row = dict[str, Any]
Resolver = Callable[[str, int], Sequence[str]]

_COLUMNS = "id, url, event_types, created_at, created_by"
SECRET_BYTES = 32


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_registration_url(
    url: str, *, allow_private: bool, resolve: Resolver = resolve_host
) -> None:
    """Refuse a webhook URL that is, or resolves to, a non-public address.

    Raises :class:`UnsafeWebhookURL`. A name that does not resolve now is
    accepted: DNS may be having a bad minute, and delivery checks again.
    """
    check_webhook_url(url, allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    if literal_address(host) is not None:
        return  # checked above, without DNS
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for address in resolve(host, port):
        check_resolved_address(host, address, allow_private=False)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


class WebhookStore:
    """One tenant's webhook registrations, on a datastore pool."""

    def __init__(
        self,
        datastore: Any,
        *,
        allow_private: bool = False,
        resolve: Resolver = resolve_host,
    ) -> None:
        self._datastore = datastore
        self._allow_private = allow_private
        self._resolve = resolve

    def create(
        self,
        *,
        tenant_id: str,
        created_by: str,
        url: str,
        event_types: Sequence[str],
        secret: str | None = None,
    ) -> Row:
        """Register a webhook; the row includes its secret (shown once)."""
        check_registration_url(
            url, allow_private=self._allow_private, resolve=self._resolve
        )
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "INSERT INTO webhooks"
                " (id, tenant_id, url, event_types, secret, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}, secret",
                (
                    uuid4(),
                    tenant_id,
                    url,
                    sorted(set(event_types)),
                    secret or new_secret(),
                    created_by,
                ),
            )
            row: Row = cur.fetchone()
        return row

    def list(self, *, tenant_id: str) -> list[Row]:
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM webhooks WHERE tenant_id = %s"
                " ORDER BY created_at, id",
                (tenant_id,),
            )
            rows: list[Row] = cur.fetchall()
        return rows

    def get(self, *, tenant_id: str, webhook_id: UUID) -> Row:
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM webhooks WHERE id = %s AND tenant_id = %s",
                (webhook_id, tenant_id),
            )
            row: Row | None = cur.fetchone()
        if row is None:
            raise WebhookNotFound(webhook_id)
        return row

    def delete(self, *, tenant_id: str, webhook_id: UUID) -> None:
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "DELETE FROM webhooks WHERE id = %s AND tenant_id = %s",
                (webhook_id, tenant_id),
            )
            deleted = cur.rowcount
        if not deleted:
            raise WebhookNotFound(webhook_id)


__all__ = [
    "UnsafeWebhookURL",
    "WebhookStore",
    "check_registration_url",
    "new_secret",
    "resolve_host",
]
