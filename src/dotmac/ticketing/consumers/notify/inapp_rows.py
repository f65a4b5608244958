"""Writing one in-app notification: the ledger row, the notification, its NOTIFY.

In-app deliveries are complete in the writer's transaction: the ledger row
is ``sent`` and the ``inapp_notifications`` row exists, or neither (the
key was there: a duplicate). Written by the notifier (for ticket events)
and by the dispatcher (to tell a tenant's admins that a webhook paused).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb

# In-app rows get ids derived from their delivery key: a replay that got
# past the ledger (it cannot) would still not duplicate them.
INAPP_NAMESPACE = uuid.UUID("6f1c2a0e-4c55-4a5e-9a8e-6d4f3f0b7a21")
# Channel in-app rows are announced on, for server-sent-event streams.
INAPP_CHANNEL = "inapp_notifications"

_INSERT_INAPP = """
WITH given (delivery_key, tenant_id, event_id, event_type, ticket_id, channel,
            recipient, payload, template_fallback, id, title, body,
            announce_on) AS (
    VALUES (%s, %s, %s, %s, %s::uuid, 'in_app', %s, %s::jsonb, %s::jsonb,
            %s::uuid, %s, %s, %s)
), ledger AS (
    INSERT INTO notification_deliveries (delivery_key, tenant_id, event_id,
        event_type, ticket_id, channel, recipient, payload, template_fallback,
        status, sent_at)
    SELECT delivery_key, tenant_id, event_id, event_type, ticket_id, channel,
           recipient, payload, template_fallback, 'sent', now() FROM given
    ON CONFLICT (delivery_key) DO NOTHING RETURNING delivery_key
), notification AS (
    -- clock_timestamp(), not now(): the consumer writes a batch of events in
    -- one transaction, and a person's notifications list in event order.
    INSERT INTO inapp_notifications (id, tenant_id, user_id, event_id,
        event_type, ticket_id, title, body, created_at)
    SELECT id, tenant_id, recipient, event_id, event_type, ticket_id, title, body,
           clock_timestamp()
      FROM given WHERE EXISTS (SELECT FROM ledger)
    ON CONFLICT DO NOTHING RETURNING id, tenant_id, user_id
)
SELECT pg_notify(
    (SELECT announce_on FROM given),
    json_build_object('tenant_id', tenant_id, 'user_id', user_id, 'id', id)::text
) FROM notification
"""


async def insert_inapp(
    cur: AsyncCursor[Any],
    *,
    key: str,
    tenant_id: str,
    event_id: str,
    event_type: str,
    ticket_id: str | None,
    user_id: str,
    payload: Mapping[str, Any],
    template_fallback: Jsonb | None = None,
) -> bool:
    """Write the notification (``payload`` has its title and body); False if
    the delivery key was there already. ``template_fallback``: the tenant
    template parts that failed for it (``notification_templates``)."""
    await cur.execute(
        _INSERT_INAPP,
        (
            key,
            tenant_id,
            event_id,
            event_type,
            ticket_id,
            user_id,
            Jsonb(payload),
            template_fallback,
            uuid.uuid5(INAPP_NAMESPACE, key),
            payload["title"],
            payload["body"],
            INAPP_CHANNEL,
        ),
    )
    return await cur.fetchone() is not None
