"""stackbench's GraphQL implementation (Strawberry): the flashcards domain as a GraphQL API.

* `create_app(settings)`: the ASGI app (uvicorn, granian): `/graphql` for queries, mutations,
  GraphiQL and WebSocket subscriptions; `uvicorn --factory impl_graphql:create_app`.
* `graphql_router(settings)`: the same schema as a FastAPI router.
* `build_schema(settings)`: the Strawberry schema; `python -m impl_graphql.sdl` prints its SDL
  (committed as `contract/schema.graphql`).
* `settings_for_report(settings)` / `SETTINGS_FOR_REPORT`: the configuration the benchmark
  report prints (caches, limits, subscription cap, JSON library, …).

Field names are snake_case, exactly the REST contract's (`auto_camel_case=False`).
"""

from __future__ import annotations

from typing import Any

from impl_graphql.app import GraphQLApp, create_app, settings_for_report
from impl_graphql.schema import build_schema

__all__ = [
    "SETTINGS_FOR_REPORT",
    "GraphQLApp",
    "build_schema",
    "create_app",
    "graphql_router",
    "settings_for_report",
]


def __getattr__(name: str) -> Any:
    # Lazy: `SETTINGS_FOR_REPORT` reads the environment's settings when first asked for, and
    # `graphql_router` imports FastAPI only when used.
    if name == "SETTINGS_FOR_REPORT":
        return settings_for_report()
    if name == "graphql_router":
        from impl_graphql.router import graphql_router

        return graphql_router
    raise AttributeError(name)
