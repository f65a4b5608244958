"""Past its most requests in flight, a process answers 503 at once."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dotmac.ticketing.service.api.load_shedding import LoadShedding


def _app(gate: asyncio.Event) -> Starlette:
    async def slow(request: Request) -> PlainTextResponse:
        await gate.wait()
        return PlainTextResponse("done")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/api/v1/slow", slow), Route("/health", health)])
    app.add_middleware(LoadShedding, prefix="/api/v1", max_in_flight=2)
    return app


def test_the_request_past_the_bound_is_refused_at_once_and_the_others_served() -> None:
    async def scenario() -> tuple[list[int], httpx.Response, int, int]:
        gate = asyncio.Event()
        transport = httpx.ASGITransport(app=_app(gate))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            working = [
                asyncio.create_task(client.get("/api/v1/slow")) for _ in range(2)
            ]
            await asyncio.sleep(0.05)
            refused = await client.get("/api/v1/slow")
            health = (await client.get("/health")).status_code
            gate.set()
            served = [(await task).status_code for task in working]
            after = (await client.get("/api/v1/slow")).status_code
        return served, refused, health, after

    served, refused, health, after = asyncio.run(scenario())

    assert served == [200, 200]
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["type"].endswith("/overloaded")
    assert health == 200
    assert after == 200  # the count went down again
