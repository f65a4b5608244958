"""The tenants whose settings erase closed tickets' data (``retention_tenants``).

Migration 0006 creates the table; every settings replace writes its
tenant's row in a transaction of its own, and the timers' retention sweep
(``consumers.timers.retention``) reads it to know which tenants to look at.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor


def record_tenant_retention(
    cur: Cursor[Any], tenant_id: str, settings_version: int, erases: bool
) -> None:
    """Whether the tenant's settings erase anything; an older version never wins."""
    cur.execute(
        "INSERT INTO retention_tenants (tenant_id, settings_version, erases)"
        " VALUES (%s, %s, %s) ON CONFLICT (tenant_id) DO UPDATE SET"
        " settings_version = excluded.settings_version,"
        " erases = excluded.erases, updated_at = now()"
        " WHERE retention_tenants.settings_version <= excluded.settings_version",
        (tenant_id, settings_version, erases),
    )
