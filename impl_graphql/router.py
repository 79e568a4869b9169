"""The same schema as a FastAPI router (`app.include_router(graphql_router(), prefix="/graphql")`).

The router does not own a service: it asks `get_service(connection)` for the one the host app
created in its lifespan (default: `connection.app.state.service`, where `impl_rest` keeps it).
Everything else (schema, limits, caches, auth on `connection_init`, orjson) is what the plain
ASGI app uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext, GraphQLRouter

from flashcards._async.service import Service
from flashcards.settings import Settings, get_settings
from impl_graphql.app import ViewHooks, config_view, view_options
from impl_graphql.context import Context
from impl_graphql.schema import build_schema
from impl_graphql.types import Config


class RouterContext(Context, BaseContext):
    """Our context, with the `request`/`response`/`background_tasks` FastAPI's router sets."""


def _state_service(connection: HTTPConnection) -> Service:
    return connection.app.state.service  # type: ignore[no-any-return]


class StackbenchGraphQLRouter(ViewHooks, GraphQLRouter[RouterContext, None]):
    """Strawberry's FastAPI router with the ASGI view's hooks (auth on `connection_init`, orjson)."""


def graphql_router(
    settings: Settings | None = None,
    *,
    get_service: Callable[[HTTPConnection], Service] = _state_service,
    path: str = "",
    **router_options: Any,
) -> StackbenchGraphQLRouter:
    settings = settings or get_settings()
    configs: dict[int, Config] = {}

    async def context_getter(connection: HTTPConnection) -> RouterContext:
        service = get_service(connection)
        config = configs.get(id(service))
        if config is None:
            config = configs[id(service)] = config_view(service.config)
        context = RouterContext(
            service,
            config,
            connection.headers.get("authorization"),
            long_lived=connection.scope["type"] == "websocket",
        )
        if connection.scope["type"] == "websocket":
            context.websocket = connection
            connection.scope[Context.SCOPE_KEY] = context
        await context.check_user()
        return context

    router = StackbenchGraphQLRouter(
        build_schema(settings),
        path=path,
        context_getter=context_getter,
        **{**view_options(settings), **router_options},
    )
    router.max_response_bytes = settings.graphql_max_response_bytes
    return router
