"""The Strawberry database floor: one card read the way a Strawberry + asyncpg app writes it.

The GraphQL app's card request (POST `/graphql`, `query Card($id: ID!) { card(card_id: $id)
{ … } }`, a bearer token) answered by Strawberry's own ASGI view over an asyncpg pool, with no
service layer and no stackbench app code: the same PyJWT check as the app and the other database
floors (`bearer.py`), the app's query (`card.py`), and the GraphQL app's Strawberry setup (its
extensions with the parser and validation caches, orjson, snake_case names: the same list as
`hello_strawberry`). The answer is the app's: the card, `null` for a card that is not the
user's, an `UNAUTHENTICATED` error without a valid token. Not done, as in `db_fastapi`: the
app's "the user still exists" lookup, its edge checks and error annotation beyond the code.

A one-function lifespan wrapper makes the pool at start-up (Strawberry's view has no lifespan).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.types import Info

from flashcards.runtime import apply_gc_policy
from loadtests.floors.bearer import user_id
from loadtests.floors.card import asyncpg_pool, card_body, card_sql
from loadtests.floors.hello_strawberry import OrjsonGraphQL, config, extensions

CARD_SQL = card_sql("$1", "$2")
POOL: dict[str, asyncpg.Pool] = {}


@strawberry.type
class Card:
    id: strawberry.ID
    deck_id: strawberry.ID
    front: str
    back: str
    ease: float
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime
    created_at: datetime
    updated_at: datetime


@strawberry.type
class Query:
    @strawberry.field
    async def message(self) -> str:
        return "hello"

    @strawberry.field
    async def card(self, info: Info, card_id: strawberry.ID) -> Card | None:
        owner = info.context["user_id"]
        if owner is None:
            raise GraphQLError("Not authenticated.", extensions={"code": "UNAUTHENTICATED"})
        try:
            wanted = int(card_id)
        except ValueError:
            return None
        row = await POOL["pool"].fetchrow(CARD_SQL, wanted, owner)
        if row is None:
            return None
        return Card(**card_body(row, _aware))


def _aware(stamp: datetime) -> datetime:
    return stamp.replace(tzinfo=UTC)


class View(OrjsonGraphQL):
    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        assert isinstance(request, Request)
        return {"user_id": user_id(request.headers.get("authorization"))}


schema = strawberry.Schema(query=Query, extensions=extensions(), config=config)
view = View(schema, graphql_ide=None)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        await view(scope, receive, send)
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                POOL["pool"] = await asyncpg_pool()
            except RuntimeError as error:
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            pool = POOL.pop("pool", None)
            if pool is not None:
                await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
