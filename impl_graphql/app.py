"""The plain ASGI application: Strawberry's `GraphQL` view behind a minimal lifespan wrapper.

`create_app()` returns an ASGI 3 callable (uvicorn, granian, hypercorn, …):

* `/graphql` (and `/graphql/`): POST and GET queries, GraphiQL for a browser's GET, and
  WebSocket subscriptions over `graphql-transport-ws` and the legacy `graphql-ws`;
* `/api/health/live`, `/api/health/ready`: the REST app's probes, so the harness waits for
  every implementation the same way;
* the service layer is created at lifespan startup and closed at shutdown (created on first
  use when the server sends no lifespan events, e.g. httpx's `ASGITransport`).

No Starlette/FastAPI routing in front of the view: one string comparison per request.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from flashcards._async.service import Service
from flashcards.errors import NotFound, PayloadTooLarge, Unauthenticated
from flashcards.models import ConfigOut
from flashcards.runtime import apply_gc_policy
from flashcards.settings import Settings, get_settings
from flashcards.web import CORS_ALLOW_HEADERS, SECURITY_HEADER_PAIRS, Message, Receive, Scope, Send
from impl_graphql.context import Context, authorization_from_params
from impl_graphql.cost import RESPONSE_TOO_LARGE
from impl_graphql.schema import StackbenchSchema, build_schema, schema_settings
from impl_graphql.types import Config, ConfigFeatures, ConfigLimits, ConfigSm2

logger = logging.getLogger("impl_graphql")

PATHS = frozenset({"/graphql", "/graphql/"})
SUBSCRIPTION_PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL)
# A socket that never sends connection_init is closed (4408) after this long.
CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
WS_MESSAGE_TOO_BIG = 1009  # RFC 6455: a message too big to process


def config_view(config: ConfigOut) -> Config:
    """The config document as GraphQL objects, built once per process."""
    return Config(
        service=config.service,
        api_version=config.api_version,
        features=ConfigFeatures(**config.features),
        limits=ConfigLimits(**config.limits),
        sm2=ConfigSm2(**config.sm2),
    )


class ServiceHolder:
    """The one `Service` of a process and what is derived from it once."""

    def __init__(self, settings: Settings, service: Service | None = None) -> None:
        self.settings = settings
        self._service = service
        self.owns_service = service is None
        self._config: Config | None = None

    @property
    def service(self) -> Service:
        if self._service is None:
            self._service = Service(self.settings)
        return self._service

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = config_view(self.service.config)
        return self._config

    def start(self) -> None:
        _ = self.config  # creates the service (the engine connects lazily)

    async def close(self) -> None:
        if self._service is not None and self.owns_service:
            await self._service.close()
            self._service = None


def ws_authorization(context: Context) -> str | None:
    return authorization_from_params(context.connection_params) or context.authorization


async def ws_connect(context: Context) -> None:
    """`connection_init`: a token (payload, else the handshake's header) must be valid.

    No token: the connection is accepted anonymously and every field but `config` answers
    UNAUTHENTICATED. A bad token: the connection is refused (graphql-transport-ws closes
    with 4403, graphql-ws answers `connection_error`).
    """
    authorization = ws_authorization(context)
    if authorization is None:
        return
    try:
        await context.sign_in(authorization)
    except Unauthenticated as exc:
        raise ConnectionRejectionError({"code": exc.code, "message": exc.detail}) from None


def decode_json(data: str | bytes) -> object:
    value = orjson.loads(data)
    if not isinstance(value, (dict, list)):
        # Strawberry calls `.get` on the body: a bare JSON string or number would be a 500.
        raise orjson.JSONDecodeError("a GraphQL request is a JSON object", "", 0)
    return value


def too_large_response(limit: int) -> bytes:
    """The body that replaces a result over `graphql_max_response_bytes`."""
    return orjson.dumps({
        "data": None,
        "errors": [{
            "message": f"The response would be larger than {limit} bytes: ask for smaller pages "
            "(`limit`) or fewer fields.",
            "extensions": {"code": RESPONSE_TOO_LARGE, "max_bytes": limit},
        }],
    })


class ViewHooks:
    """What the ASGI view and the FastAPI router (`impl_graphql.router`) both override: token
    auth on `connection_init`, orjson both ways. Listed before Strawberry's base class."""

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await ws_connect(context)
        context.close_at_expiry()  # 4401 when the token expires (issue 20)
        return UNSET

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context, root_value)  # type: ignore[misc]
        finally:
            ctx = request.scope.get(Context.SCOPE_KEY)
            if ctx is not None:  # a WebSocket connection has ended: no timer outlives it
                ctx.stop_expiry()

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket messages must be text frames for graphql-ws clients.
        return orjson.dumps(data).decode()

    max_response_bytes: int = Settings.model_fields["graphql_max_response_bytes"].default

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        body = orjson.dumps(response_data)
        if len(body) > self.max_response_bytes:
            body = too_large_response(self.max_response_bytes)
        response = Response(body, media_type="application/json")
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response


class GraphQLView(ViewHooks, GraphQL[Context, None]):
    """Strawberry's ASGI view with our context, orjson, and token auth on `connection_init`."""

    def __init__(self, schema: StackbenchSchema, holder: ServiceHolder, **options: Any) -> None:
        super().__init__(schema, **options)
        self.holder = holder
        self.max_response_bytes = holder.settings.graphql_max_response_bytes

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        holder = self.holder
        context = Context(
            holder.service,
            holder.config,
            request.headers.get("authorization"),
            long_lived=request.scope["type"] == "websocket",
            client=request.client.host if request.client else None,
        )
        if isinstance(request, WebSocket):
            context.websocket = request
            request.scope[Context.SCOPE_KEY] = context
        await context.check_user()
        return context


def view_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of the Strawberry view (plain ASGI and FastAPI router alike)."""
    return {
        "graphql_ide": "graphiql" if settings.graphql_introspection else None,
        "allow_queries_via_get": True,
        "subscription_protocols": SUBSCRIPTION_PROTOCOLS,
        "max_subscriptions_per_connection": settings.graphql_max_subscriptions_per_connection,
        # Legacy graphql-ws: the server sends `ka` (Apollo's old client drops a silent socket).
        # graphql-transport-ws keeps alive by client pings; the service's keepalive_loop is
        # not run for GraphQL.
        "keep_alive": True,
        "keep_alive_interval": settings.sse_keepalive_s,
        "connection_init_wait_timeout": CONNECTION_INIT_TIMEOUT,
        "allowed_origins": tuple(settings.cors_origins),
    }


def _limit_messages(receive: Receive, send: Send, limit: int) -> Receive:
    """The body limit for graphql-transport-ws too (issue 19, finding 8: a 4 MB query ran over
    the socket): a message over `max_body_bytes` closes the connection with 1009 (too big)."""

    async def limited() -> Message:
        message = await receive()
        if message["type"] == "websocket.receive":
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > limit:
                await send({"type": "websocket.close", "code": WS_MESSAGE_TOO_BIG, "reason": "message too big"})
                return {"type": "websocket.disconnect", "code": WS_MESSAGE_TOO_BIG}
        return message

    return limited


class GraphQLApp:
    """ASGI 3 entry point: lifespan, two probes, and the GraphQL view."""

    def __init__(self, settings: Settings, service: Service | None = None) -> None:
        self.settings = settings
        self.holder = ServiceHolder(settings, service)
        self.schema = build_schema(settings)
        self.view = GraphQLView(self.schema, self.holder, **view_options(settings))
        self.max_body = settings.max_body_bytes
        # CORS as in the REST apps (same origins, same headers); none configured: no CORS at all
        self._entry: Any = self._dispatch
        if settings.cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            self._entry = CORSMiddleware(
                self._dispatch, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                allow_headers=CORS_ALLOW_HEADERS,
            )

    @property
    def service(self) -> Service:
        return self.holder.service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind == "http":
            send = _with_security_headers(send)
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path = scope["path"]
        if path in PATHS:
            if kind == "http" and scope["method"] == "POST":
                limited = await self._limit_body(scope, receive, send)
                if limited is None:
                    return
                receive = limited
            elif kind == "websocket":
                receive = _limit_messages(receive, send, self.max_body)
            try:
                await self.view(scope, receive, send)
            except ClientDisconnect:
                # The client left while its body was read (or uvicorn already answered 400 for
                # broken chunked framing): nobody to answer, and nothing went wrong here.
                pass
            return
        if kind == "http":
            await self._other(scope, send, path)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """413 for a body over `max_body_bytes` (declared, or counted when chunked)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) <= self.max_body:
                    return receive
                await _too_large(send, self.max_body)
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # http.disconnect: the client is gone, nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                await _too_large(send, self.max_body)
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed

    async def _other(self, scope: Scope, send: Send, path: str) -> None:
        if path == "/api/health/live":
            await _json(send, 200, {"status": "ok", "checks": {}})
        elif path == "/api/health/ready":
            try:
                checks = await self.service.ready()
            except Exception as exc:
                logger.warning("readiness failed: %s", type(exc).__name__)
                await _json(
                    send, 503, {"status": "unavailable", "checks": {"database": "unavailable"}}
                )
            else:
                await _json(send, 200, {"status": "ok", "checks": checks})
        else:
            problem = NotFound(f"No route {path}; GraphQL is served at /graphql.").problem(path)
            await _json(send, 404, problem, "application/problem+json")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.holder.start()
                    await self.holder.service.start_feed()  # PostgreSQL: LISTEN before the first stream
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.holder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _with_security_headers(send: Send) -> Send:
    """The REST apps' security headers on every HTTP response (flashcards.web)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *SECURITY_HEADER_PAIRS]
        await send(message)

    return sending


async def _json(send: Send, status: int, body: Any, media_type: str = "application/json") -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _too_large(send: Send, limit: int) -> None:
    err = PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    await _json(send, 413, {"errors": [{"message": err.detail, "extensions": {"code": err.code}}]})


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> GraphQLApp:
    """The ASGI app. `service`: use this one (tests); the app then leaves closing it to you."""
    app = GraphQLApp(settings or get_settings(), service)
    apply_gc_policy()  # flashcards.runtime: the same GC policy for every stack
    return app


def settings_for_report(settings: Settings | None = None) -> dict[str, Any]:
    """What the benchmark report prints beside every GraphQL cell."""
    settings = settings or get_settings()
    options = view_options(settings)
    return {
        **schema_settings(settings),
        "max_subscriptions_per_connection": options["max_subscriptions_per_connection"],
        "subscription_protocols": list(SUBSCRIPTION_PROTOCOLS),
        "legacy_keep_alive_interval_s": options["keep_alive_interval"],
        "connection_init_wait_timeout_s": CONNECTION_INIT_TIMEOUT.total_seconds(),
        "graphiql": options["graphql_ide"] is not None,
        "allow_queries_via_get": True,
        "batching": False,
        "json": "orjson (encode and decode)",
        "service_keepalive_loop": False,
        "max_body_bytes": settings.max_body_bytes,
        "max_response_bytes": settings.graphql_max_response_bytes,
    }
