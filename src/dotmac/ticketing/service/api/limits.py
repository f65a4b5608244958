"""Refuse oversized request bodies before they are read into memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dotmac.ticketing.service.api.problems import PayloadTooLarge, problem


class BodySizeLimitMiddleware:
    """Answer 413 when a body exceeds its limit, by header or as it streams.

    Uploads (multipart) get their own, larger limit; everything else is
    JSON and gets ``json_limit``.
    """

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"")
        limit = (
            self.upload_limit
            if content_type.startswith((b"multipart/", b"message/rfc822"))
            else self.json_limit
        )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem(
                413,
                "payload-too-large",
                "Payload too large",
                f"the request body is larger than {limit} bytes",
            )(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge as exc:
            if started:
                raise
            await problem(413, "payload-too-large", "Payload too large", str(exc))(
                scope, receive, send
            )
