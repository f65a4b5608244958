"""Notifications sent with a built-in template because the tenant's failed.

The notifier records the failure on the delivery row
(``notification_deliveries.template_fallback``); a tenant's admins read
the latest ones here to fix their templates.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresDatastore

Row = dict[str, Any]


def recent_template_fallbacks(
    datastore: PostgresDatastore, tenant_id: str, *, limit: int
) -> list[Row]:
    """The tenant's latest deliveries that fell back, newest first."""
    with datastore.transaction(commit=False) as cur:
        cur.execute(
            "SELECT delivery_key, event_id, event_type, ticket_id, channel,"
            " recipient, created_at, template_fallback AS failures"
            " FROM notification_deliveries"
            " WHERE tenant_id = %s AND template_fallback IS NOT NULL"
            " ORDER BY created_at DESC, delivery_key LIMIT %s",
            (tenant_id, limit),
        )
        return list(cur.fetchall())
