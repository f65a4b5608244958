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

from dotmac.ticketing.service.errors import WebhookLimitReached, WebhookNotFound
from dotmac.ticketing.service.url_safety import (
    UnsafeWebhookURL,
    check_resolved_address,
    check_webhook_url,
    literal_address,
)
from dotmac.ticketing.store.notification_ledger import DUE_NOW, WAKE_CHANNEL

Row = dict[str, Any]
Resolver = Callable[[str, int], Sequence[str]]

_COLUMNS = (
    "id, url, event_types, created_at, created_by,"
    " CASE WHEN paused_at IS NULL THEN 'active' ELSE 'paused' END AS state,"
    " paused_at AS paused_since, retry_at AS next_trial_at,"
    " consecutive_failures, last_error, last_failure_at"
)
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
        max_per_tenant: int = 20,
        resolve: Resolver = resolve_host,
    ) -> None:
        self._datastore = datastore
        self._allow_private = allow_private
        self._max_per_tenant = max_per_tenant
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
        """Register a webhook; the row includes its secret (shown once).

        Raises :class:`WebhookLimitReached` when the tenant has as many as
        it may: every webhook is a lane the dispatcher serves, so one
        tenant's hundred failing receivers cannot crowd out everyone else.
        """
        check_registration_url(
            url, allow_private=self._allow_private, resolve=self._resolve
        )
        with self._datastore.transaction(commit=True) as cur:
            # One registration per tenant at a time: two concurrent ones
            # must not both see room for one more.
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext('ticketing-webhooks'),"
                " hashtext(%s))",
                (tenant_id,),
            )
            cur.execute(
                "SELECT count(*) AS registered FROM webhooks WHERE tenant_id = %s",
                (tenant_id,),
            )
            if cur.fetchone()["registered"] >= self._max_per_tenant:
                raise WebhookLimitReached(self._max_per_tenant)
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

    def resume(self, *, tenant_id: str, webhook_id: UUID) -> Row:
        """Put a paused webhook back in service (an active one stays so).

        Its waiting deliveries are due at once and the dispatcher is woken;
        their give-up time counts from now (``resumed_at``).
        """
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "SELECT paused_at FROM webhooks WHERE id = %s AND tenant_id = %s",
                (webhook_id, tenant_id),
            )
            found: Row | None = cur.fetchone()
            if found is None:
                raise WebhookNotFound(webhook_id)
            was_paused = found["paused_at"] is not None
            if was_paused:
                # The deliveries before the webhook row: the dispatcher
                # recording an outcome locks them in that order too.
                cur.execute(DUE_NOW, (webhook_id,))
            cur.execute(
                "UPDATE webhooks SET consecutive_failures = 0, paused_at = NULL,"
                " retry_at = NULL"
                + (", resumed_at = now()" if was_paused else "")
                + f" WHERE id = %s RETURNING {_COLUMNS}",
                (webhook_id,),
            )
            row: Row = cur.fetchone()
            if was_paused:
                cur.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))
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
    "WebhookLimitReached",
    "WebhookStore",
    "check_registration_url",
    "new_secret",
    "resolve_host",
]
