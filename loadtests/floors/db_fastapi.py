"""The FastAPI database floor: one card read the way a FastAPI + asyncpg app writes it.

No ORM, no service layer, no stackbench app code: an asyncpg pool made in the `lifespan`, one
`SELECT` by primary key and owner, a Pydantic response model (FastAPI's idiom; it also puts the
200 answer on the same serializer as `impl_rest`: FastAPI's default response class, which dumps
a response model to JSON through pydantic-core). The body is the rest app's `CardOut`, field for
field (tests/loadtests/test_db_floors.py compares them).

What it does per request, so that the app-to-floor ratio is honest:

* authentication: the same PyJWT verification as the app (HS256, issuer ``stackbench``,
  ``exp``/``iat``/``sub``/``iss`` required, the secret from ``STACKBENCH_JWT_SECRET``) — that is
  work every community app with bearer tokens does. Not done: the app's "the user still exists"
  lookup (once per user every few seconds: flashcards/knownusers.py), its edge middleware
  (body limit, request checks) and its RFC 9457 problem details beyond status and title.
* the query: the app's own (`cards.id = $1 AND cards.owner_id = $2`, the owner denormalised on
  the card), as an asyncpg prepared statement (asyncpg caches them per connection).
* the pool: the app's budget per worker process (its `Settings`: ``STACKBENCH_POOL_SIZE``
  connections kept, up to ``+ STACKBENCH_POOL_MAX_OVERFLOW``; `card.asyncpg_pool`).

``GET /`` answers ``{"message": "hello"}``: the servers' readiness probe.

The routes are on an `APIRouter` included in the app, as the app's are (hello_fastapi.py: why).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from flashcards.runtime import apply_gc_policy
from loadtests.floors.bearer import user_id
from loadtests.floors.card import asyncpg_pool, card_body, card_sql

CARD_SQL = card_sql("$1", "$2")


class Card(BaseModel):
    id: int
    deck_id: int
    front: str
    back: str
    ease: float
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime
    created_at: datetime
    updated_at: datetime


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg_pool()
    try:
        yield
    finally:
        await app.state.pool.close()


router = APIRouter()


def problem(status: int, title: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status}, status_code=status,
                        media_type="application/problem+json")


@router.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


@router.get("/api/cards/{card_id}", response_model=Card)
async def get_card(card_id: int, request: Request) -> Any:
    owner = user_id(request.headers.get("authorization"))
    if owner is None:
        return problem(401, "Unauthorized")
    row = await request.app.state.pool.fetchrow(CARD_SQL, card_id, owner)
    if row is None:
        return problem(404, "Not Found")
    # Timestamps are stored as naive UTC (flashcards/tables.py): aware again, they serialize
    # with the `Z` the app's answers carry.
    return card_body(row, _aware)


def _aware(stamp: datetime) -> datetime:
    return stamp.replace(tzinfo=UTC)


app = FastAPI(lifespan=lifespan)
app.include_router(router)
apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
