"""The Strawberry floor: a one-field schema on `strawberry.asgi.GraphQL`.

`app` is the bare hello world; `app_cached` adds the `ParserCache` and `ValidationCache`
extensions (the community's fast setup). Query it with GET `/?query={message}`, which answers
`{"data":{"message":"hello"}}`.
"""

from __future__ import annotations

import strawberry
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from flashcards.runtime import apply_gc_policy

QUERY_PATH = "/?query=%7Bmessage%7D"


@strawberry.type
class Query:
    @strawberry.field
    async def message(self) -> str:
        return "hello"


schema = strawberry.Schema(query=Query)
# Classes, not instances (deprecated): Strawberry builds one per request; the caches are shared.
cached_schema = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])

app = GraphQL(schema, graphql_ide=None)
app_cached = GraphQL(cached_schema, graphql_ide=None)

apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
