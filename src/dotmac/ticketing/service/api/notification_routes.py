"""HTTP routes of in-app notifications: the caller's own, listed or streamed.

The caller is the token's ``sub`` within its tenant; nobody reads another
person's notifications, so another's id is simply not found (404).
"""

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dotmac.ticketing.schemas import NotificationPage, NotificationRead
from dotmac.ticketing.service.api.deps import Notifications, User
from dotmac.ticketing.service.api.problems import ProblemRoute
from dotmac.ticketing.service.api.responses import PARAMETERS, RESOURCE, problems
from dotmac.ticketing.service.notifications import UnreadFollower

EVENT_STREAM = "text/event-stream"
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
# How long a browser's EventSource waits before reconnecting (milliseconds).
RETRY_MILLISECONDS = 3000

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `event: notification` with a "
        "notification as JSON `data` and its id as `id`; a comment every "
        f"{HEARTBEAT_SECONDS:.0f} s keeps the connection open.",
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
    }
}


router = APIRouter(
    prefix="/notifications",
    tags=["notifications"],
    route_class=ProblemRoute,
    # Only the caller's own notifications: no role is refused (no 403).
    responses={**problems(401), **PARAMETERS},
)


@router.get("", summary="The caller's notifications, newest first")
def list_notifications(
    user: User,
    store: Notifications,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$")
    ] = None,
) -> NotificationPage:
    page = store.list(
        tenant_id=user.tenant_id,
        user_id=user.sub,
        unread_only=unread,
        limit=limit,
        cursor=cursor,
    )
    return NotificationPage(
        items=[NotificationRead.model_validate(row) for row in page.items],
        next=page.next,
    )


@router.post(
    "/{notification_id}/read",
    summary="Mark a notification read",
    responses=RESOURCE,
)
def mark_read(
    notification_id: UUID, user: User, store: Notifications
) -> NotificationRead:
    row = store.mark_read(
        tenant_id=user.tenant_id, user_id=user.sub, notification_id=notification_id
    )
    return NotificationRead.model_validate(row)


@router.get(
    "/stream",
    summary="The caller's unread notifications, then new ones as they come",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
)
async def stream(
    request: Request,
    user: User,
    store: Notifications,
    last_event_id: Annotated[
        UUID | None,
        Header(
            description="The last `id` received: resume after it "
            "(browsers send it when they reconnect)."
        ),
    ] = None,
) -> StreamingResponse:
    follower = UnreadFollower(
        store,
        tenant_id=user.tenant_id,
        user_id=user.sub,
        resume_after=last_event_id,
    )
    events = notification_events(follower, disconnected=request.is_disconnected)
    # no-store, not SSE's usual no-cache: notifications are personal data.
    return StreamingResponse(
        events,
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def notification_events(
    follower: UnreadFollower,
    *,
    disconnected: Callable[[], Any],
    poll_seconds: float = POLL_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[str]:
    """The SSE text of a stream, until the client goes away.

    The database is asked every ``poll_seconds`` (on a worker thread, so the
    event loop never waits on it); a comment goes out when nothing else did
    for ``heartbeat_seconds``, so proxies keep the connection open.
    """
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    last_sent = time.monotonic()
    while not await disconnected():
        rows = await run_in_threadpool(follower.poll)
        for row in rows:
            yield sse_event(NotificationRead.model_validate(row))
        now = time.monotonic()
        if rows:
            last_sent = now
            if len(rows) >= follower.batch:
                continue  # more are waiting
        elif now - last_sent >= heartbeat_seconds:
            yield ": heartbeat\n\n"
            last_sent = now
        until_heartbeat = max(0.0, last_sent + heartbeat_seconds - now)
        await anyio.sleep(min(poll_seconds, until_heartbeat))


def sse_event(notification: NotificationRead) -> str:
    # JSON has no raw newlines, so the data is one line.
    return (
        f"id: {notification.id}\n"
        "event: notification\n"
        f"data: {notification.model_dump_json()}\n\n"
    )
