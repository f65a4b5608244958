"""The webhooks' circuit breakers in PostgreSQL, and telling admins.

The state of each breaker lives in its ``webhooks`` row (see migration
0001); the transitions are the pure functions of
``circuit_breaker``, applied here under the row's lock in the transaction
that records a delivery's outcome. When an endpoint is paused, the tenant's
admins get an in-app notification in that same transaction: the admins
this service knows of, which are those who registered the tenant's
webhooks (only admins may).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncCursor

from dotmac.ticketing.consumers.notify.circuit_breaker import (
    BreakerPolicy,
    BreakerState,
    failed,
    succeeded,
)
from dotmac.ticketing.consumers.notify.inapp_rows import insert_inapp
from dotmac.ticketing.store.notification_ledger import DUE_NOW

PAUSED_EVENT_TYPE = "ticketing.webhook.paused.v1"


_STATE = (
    "consecutive_failures, paused_at, retry_at, last_error, last_failure_at,"
    " tenant_id, url"
)


def _state(row: dict[str, Any]) -> BreakerState:
    return BreakerState(
        consecutive_failures=int(row["consecutive_failures"]),
        paused_at=row["paused_at"],
        retry_at=row["retry_at"],
        last_error=row["last_error"],
        last_failure_at=row["last_failure_at"],
    )


async def breaker_of(
    cur: AsyncCursor[Any], webhook_id: str, *, lock: bool = False
) -> BreakerState | None:
    """The webhook's breaker (None: the webhook was removed)."""
    await cur.execute(
        f"SELECT {_STATE} FROM webhooks WHERE id = %s{' FOR UPDATE' if lock else ''}",
        (webhook_id,),
    )
    row = await cur.fetchone()
    return None if row is None else _state(row)


async def _save(
    cur: AsyncCursor[Any], webhook_id: str, state: BreakerState, *, closed: bool
) -> None:
    await cur.execute(
        "UPDATE webhooks SET consecutive_failures = %s, paused_at = %s,"
        " retry_at = %s, last_error = %s, last_failure_at = %s"
        + (", resumed_at = now()" if closed else "")
        + " WHERE id = %s",
        (
            state.consecutive_failures,
            state.paused_at,
            state.retry_at,
            state.last_error,
            state.last_failure_at,
            webhook_id,
        ),
    )


async def record_success(cur: AsyncCursor[Any], webhook_id: str) -> bool:
    """A delivery to the webhook was accepted; True if that closed its breaker.

    Writes only when something changes: a webhook in good health is not
    rewritten (and locked) by every one of its deliveries.
    """
    seen = await breaker_of(cur, webhook_id)
    if seen is None or succeeded(seen) == seen:
        return False
    state = await breaker_of(cur, webhook_id, lock=True)
    if state is None:
        return False
    await _save(cur, webhook_id, succeeded(state), closed=state.paused)
    if state.paused:
        await due_now(cur, webhook_id)
    return state.paused


async def record_failure(
    cur: AsyncCursor[Any],
    webhook_id: str,
    error: str,
    now: datetime,
    policy: BreakerPolicy,
) -> BreakerState | None:
    """Count a failed delivery; pause the webhook (and tell its admins) at
    the threshold. Returns the breaker after it."""
    state = await breaker_of(cur, webhook_id, lock=True)
    if state is None:
        return None
    after = failed(state, error, now, policy)
    await _save(cur, webhook_id, after.state, closed=False)
    if after.opened:
        await tell_admins(cur, webhook_id, after.state)
    return after.state


async def start_trial(
    cur: AsyncCursor[Any], webhook_id: str, now: datetime, retry_at: datetime
) -> bool:
    """Take the paused webhook's trial (False: another dispatcher has it)."""
    await cur.execute(
        "UPDATE webhooks SET retry_at = %s"
        " WHERE id = %s AND paused_at IS NOT NULL AND retry_at <= %s RETURNING id",
        (retry_at, webhook_id, now),
    )
    return await cur.fetchone() is not None


async def due_now(cur: AsyncCursor[Any], webhook_id: str) -> None:
    """The webhook's deliveries waiting for a retry are due at once (it is
    back in service: no reason to wait out a back-off)."""
    await cur.execute(DUE_NOW, (webhook_id,))


async def tenant_admins(cur: AsyncCursor[Any], tenant_id: str) -> list[str]:
    await cur.execute(
        "SELECT DISTINCT created_by FROM webhooks WHERE tenant_id = %s"
        " ORDER BY created_by",
        (tenant_id,),
    )
    return [str(row["created_by"]) for row in await cur.fetchall()]


async def tell_admins(
    cur: AsyncCursor[Any], webhook_id: str, state: BreakerState
) -> None:
    """An in-app notification to each of the tenant's admins: paused, why,
    and how it resumes."""
    await cur.execute(
        "SELECT tenant_id, url FROM webhooks WHERE id = %s", (webhook_id,)
    )
    webhook = await cur.fetchone()
    if webhook is None or state.paused_at is None:
        return
    tenant_id = str(webhook["tenant_id"])
    event_id = f"webhook:{webhook_id}:paused:{state.paused_at.isoformat()}"
    retry = state.retry_at.isoformat() if state.retry_at else "later"
    payload = {
        "kind": "webhook_paused",
        "audience": "admin",
        "title": f"Webhook paused: {webhook['url']}",
        "body": (
            f"Deliveries to {webhook['url']} failed"
            f" {state.consecutive_failures} times in a row; the last error was:"
            f" {state.last_error}. Its deliveries are kept and wait. It is"
            f" tried again with one delivery at {retry}, or resume it now:"
            f" POST /api/v1/webhooks/{webhook_id}/resume."
        ),
    }
    for admin in await tenant_admins(cur, tenant_id):
        await insert_inapp(
            cur,
            key=f"{event_id}|in_app|{admin}",
            tenant_id=tenant_id,
            event_id=event_id,
            event_type=PAUSED_EVENT_TYPE,
            ticket_id=None,
            user_id=admin,
            payload=payload,
        )
