"""Baseline (b): the least a Python HTTP service can do per create.

A FastAPI endpoint that validates the same body and inserts one row with
psycopg, served by the same uvicorn with the same number of workers as
``ticketing api``: what this machine's Python HTTP stack allows, against
which the service's creates are a ratio.

``uvicorn tests.bench.minimal_app:create_app --factory`` with
``DATABASE_URL`` set; the table is ``bench_minimal_items``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_minimal_items"
    " (id bigserial PRIMARY KEY, title text NOT NULL, body jsonb NOT NULL)"
)


class CreateBody(BaseModel):
    title: str
    description: str = ""
    priority: str = "normal"
    customer_id: str
    tags: list[str] = []
    channel: str = "api"


class Created(BaseModel):
    id: int
    title: str


def create_app() -> FastAPI:
    pool: ConnectionPool[Any] = ConnectionPool(
        os.environ["DATABASE_URL"], min_size=2, max_size=16, open=True
    )
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    # The service's path, so the same client code drives both.
    @app.post("/api/v1/tickets/", status_code=201)
    def create(body: CreateBody) -> Created:
        with pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO bench_minimal_items (title, body)"
                " VALUES (%s, %s) RETURNING id",
                (body.title, body.model_dump_json()),
            ).fetchone()
        assert row is not None
        return Created(id=row[0], title=body.title)

    return app
