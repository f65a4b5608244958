"""In-app notifications: what one person has been told, read or not.

The notifier writes the rows (``inapp_notifications``); this module reads
them for their recipient and marks them read. Every query names the tenant
and the user, so another tenant's or another person's notification is
simply not found.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from dotmac.ticketing.projections.ticket_queries import InvalidCursor
from dotmac.ticketing.service.errors import NotificationNotFound

Row = dict[str, Any]

_COLUMNS = "id, event_id, event_type, ticket_id, title, body, created_at, read_at"
# A row's created_at is its writer's transaction start, so a row can become
# visible after rows with later times: the stream looks back this far.
STREAM_LOOKBACK = timedelta(seconds=30)
STREAM_BATCH = 100


@dataclass(frozen=True)
class NotificationPage:
    items: list[Row]
    next: str | None


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream is: the last row sent, in (created_at, id) order."""

    created_at: datetime
    id: UUID


def encode_cursor(row: Row) -> str:
    raw = json.dumps([row["created_at"].isoformat(), str(row["id"])])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> StreamPosition:
    """Check a cursor fully before any of it reaches SQL."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = json.loads(base64.urlsafe_b64decode(padded))
        position = StreamPosition(datetime.fromisoformat(created_at), UUID(row_id))
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidCursor("the cursor is malformed") from error
    if position.created_at.tzinfo is None:
        raise InvalidCursor("the cursor is malformed")
    return position


class NotificationStore:
    """The in-app notifications of one tenant's users, on a datastore pool."""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore

    def list(
        self,
        *,
        tenant_id: str,
        user_id: str,
        unread_only: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> NotificationPage:
        """A page of the user's notifications, newest first."""
        where = ["tenant_id = %(tenant)s", "user_id = %(user)s"]
        params: dict[str, Any] = {"tenant": tenant_id, "user": user_id}
        if unread_only:
            where.append("read_at IS NULL")
        if cursor is not None:
            after = decode_cursor(cursor)
            where.append("(created_at, id) < (%(at)s, %(id)s)")
            params |= {"at": after.created_at, "id": after.id}
        params["limit"] = limit + 1
        query = (
            f"SELECT {_COLUMNS} FROM inapp_notifications"
            f" WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        )
        with self._datastore.transaction() as cur:
            cur.execute(query, params)
            rows: builtins.list[Row] = cur.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return NotificationPage(
            items=rows, next=encode_cursor(rows[-1]) if more else None
        )

    def mark_read(self, *, tenant_id: str, user_id: str, notification_id: UUID) -> Row:
        """Mark one notification read (again is harmless: the first time stays)."""
        with self._datastore.transaction(commit=True) as cur:
            cur.execute(
                "UPDATE inapp_notifications SET read_at = coalesce(read_at, now())"
                " WHERE id = %s AND tenant_id = %s AND user_id = %s"
                f" RETURNING {_COLUMNS}",
                (notification_id, tenant_id, user_id),
            )
            row: Row | None = cur.fetchone()
        if row is None:
            raise NotificationNotFound(notification_id)
        return row

    def position_of(
        self, *, tenant_id: str, user_id: str, notification_id: UUID
    ) -> StreamPosition | None:
        """Where the user's notification sits in stream order (None: not theirs)."""
        with self._datastore.transaction() as cur:
            cur.execute(
                "SELECT created_at FROM inapp_notifications"
                " WHERE id = %s AND tenant_id = %s AND user_id = %s",
                (notification_id, tenant_id, user_id),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return StreamPosition(row["created_at"], notification_id)

    def unread_after(
        self,
        *,
        tenant_id: str,
        user_id: str,
        floor: StreamPosition | None,
        since: datetime | None,
        exclude: builtins.list[UUID],
        limit: int = STREAM_BATCH,
    ) -> builtins.list[Row]:
        """Unread rows for a stream, oldest first.

        ``floor``: rows at or before it were sent on an earlier connection.
        ``since`` and ``exclude``: rows older than ``since`` were seen on this
        one, and so were the ``exclude``\\ d rows after it.
        """
        where = ["tenant_id = %(tenant)s", "user_id = %(user)s", "read_at IS NULL"]
        params: dict[str, Any] = {"tenant": tenant_id, "user": user_id}
        if floor is not None:
            where.append("(created_at, id) > (%(floor_at)s, %(floor_id)s)")
            params |= {"floor_at": floor.created_at, "floor_id": floor.id}
        if since is not None:
            where.append("created_at >= %(since)s")
            params["since"] = since
        if exclude:
            where.append("NOT (id = ANY(%(exclude)s))")
            params["exclude"] = exclude
        params["limit"] = limit
        with self._datastore.transaction() as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM inapp_notifications"
                f" WHERE {' AND '.join(where)}"
                " ORDER BY created_at, id LIMIT %(limit)s",
                params,
            )
            rows: builtins.list[Row] = cur.fetchall()
        return rows


class UnreadFollower:
    """Follows one user's unread notifications for a stream: each
    :meth:`poll` returns the rows not returned before, oldest first.

    The first polls return what is unread already (after ``resume_after``,
    the last row an earlier connection sent); later ones return new rows.
    Rows written by slow transactions show up late with earlier times, so
    each poll looks back ``STREAM_LOOKBACK`` and skips the rows it sent.
    """

    def __init__(
        self,
        store: NotificationStore,
        *,
        tenant_id: str,
        user_id: str,
        resume_after: UUID | None = None,
        batch: int = STREAM_BATCH,
    ) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._user_id = user_id
        self._resume_after = resume_after
        self._floor: StreamPosition | None = None
        self._started = False
        self._since: datetime | None = None
        self._sent: dict[UUID, datetime] = {}
        self.batch = batch

    def poll(self) -> builtins.list[Row]:
        if not self._started:
            if self._resume_after is not None:
                self._floor = self._store.position_of(
                    tenant_id=self._tenant_id,
                    user_id=self._user_id,
                    notification_id=self._resume_after,
                )
            self._started = True
        rows = self._store.unread_after(
            tenant_id=self._tenant_id,
            user_id=self._user_id,
            floor=self._floor,
            since=self._since,
            exclude=list(self._sent),
            limit=self.batch,
        )
        if rows:
            self._sent.update((row["id"], row["created_at"]) for row in rows)
            self._since = max(self._sent.values()) - STREAM_LOOKBACK
            self._sent = {
                key: at for key, at in self._sent.items() if at >= self._since
            }
        return rows
