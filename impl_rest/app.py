"""The FastAPI application factory (`impl_rest:create_app`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from flashcards._async.service import Service
from flashcards.runtime import apply_gc_policy
from flashcards.settings import Settings, get_settings
from flashcards.web import CORS_ALLOW_HEADERS, Receive, Scope, Send
from impl_rest import auth, cards, chat, decks, events, health, problems
from impl_rest.edge import EdgeMiddleware
from impl_rest.push import RAW_SEND_KEY
from impl_rest.responses import COMMON, Problem

API_PREFIX = "/api"


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """One app per worker process; `service` lets tests share theirs (it is not closed here)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = service is None
        app.state.service = service or Service(settings)
        app.state.config_json = app.state.service.config.model_dump_json().encode()
        await app.state.service.start_feed()  # PostgreSQL: LISTEN before the first stream
        ticker = asyncio.create_task(app.state.service.keepalive_loop())
        try:
            yield
        finally:
            ticker.cancel()
            if own:
                await app.state.service.close()
            else:
                app.state.service.bus.close_all()

    app = _App(
        title="stackbench flashcards",
        version="1",
        summary="A spaced-repetition study service (the REST contract of stackbench).",
        lifespan=lifespan,
        responses=COMMON,
        openapi_url="/openapi.json",
    )
    # `/api/decks/` is no route (as in the Flask app), not a 307 whose Location echoes the
    # client's Host header.
    app.router.redirect_slashes = False
    for router in (health.router, auth.router, decks.router, cards.router, chat.router, events.router):
        app.include_router(router, prefix=API_PREFIX)
    problems.install(app)
    _document_problem(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
            allow_headers=CORS_ALLOW_HEADERS,
        )
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes)
    apply_gc_policy()  # flashcards.runtime: the same GC policy for every stack
    return app


class _App(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server's own send, for the event feed's body frames (impl_rest/push.py). Taken
        # out again at the end: uvicorn's cycle holds the scope and `send` is a method of that
        # cycle, so the key would make every request a reference cycle (about 11 objects) that
        # only the cyclic GC frees; gen-1 collections then took ~10 % of the config path's CPU.
        scope[RAW_SEND_KEY] = send
        try:
            await super().__call__(scope, receive, send)
        finally:
            del scope[RAW_SEND_KEY]


BEARER = "bearerAuth"
# The event feed also takes a single-use stream ticket in its query (EventSource sends no headers).
TICKET = "streamTicket"
TICKET_SCHEME = {
    "type": "apiKey",
    "in": "query",
    "name": "ticket",
    "description": "A single-use stream ticket from POST /api/events/ticket (GET /api/events only).",
}
EVENTS = ("/api/events", "get")


# Operations that answer 401 need the bearer token, all but this one (its 401: wrong password).
SIGN_IN = ("/api/auth/token", "post")


def _document_problem(app: FastAPI) -> None:
    """Register the Problem schema in components (responses reference it by $ref), and the
    bearer token as a security scheme on every operation that needs one (issue 19: external
    contract tools could not tell which operations need auth). Documentation only: the token
    is still read by `current_user`, with no extra dependency per request."""
    original = app.openapi

    def openapi() -> dict:  # type: ignore[type-arg]
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            components["securitySchemes"] = {
                BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                TICKET: TICKET_SCHEME,
            }
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    if "401" in operation.get("responses", {}) and (path, method) != SIGN_IN:
                        operation["security"] = [{BEARER: []}]
                        if (path, method) == EVENTS:
                            operation["security"].append({TICKET: []})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
