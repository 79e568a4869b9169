"""Helpers of the GraphQL tests: a real uvicorn server in a thread, a minimal graphql-transport-ws
client, an upstream for the tutor chat, and two drivers that run the same scenario in-process
and over the network."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import orjson
import uvicorn
import websockets

from flashcards._async.service import Service
from impl_graphql.app import GraphQLApp
from impl_graphql.context import Context

T = TypeVar("T")
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


class GraphQLFailed(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


# --- a real server in a thread -----------------------------------------------------------------
class ServerThread:
    """uvicorn on a free port, in a thread with its own event loop (lifespan on: the app creates
    and closes its own Service there, as in production)."""

    def __init__(self, app: GraphQLApp) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi, interface="asgi3", lifespan="on", log_level="warning", ws_ping_interval=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(10)
        self.sock.close()

    async def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run `fn()` on the server's loop (to look at its tasks) and wait for it here."""
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return await asyncio.wrap_future(future)

    async def task_count(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return await self.call(count)

    @property
    def service(self) -> Service:
        return self.app.service


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# --- a minimal graphql-transport-ws client (raw websockets) ------------------------------------
class WsClient:
    """Just the protocol: connection_init/ack, subscribe/next/error/complete, ping/pong."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, url: str, token: str | None = None, protocol: str = TRANSPORT_WS
    ) -> AsyncIterator[WsClient]:
        async with websockets.connect(url, subprotocols=[protocol], ping_interval=None) as ws:  # type: ignore[list-item]
            client = cls(ws)
            await client.init(token)
            yield client

    async def init(self, token: str | None) -> None:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        ack = await self.recv()
        assert ack["type"] == "connection_ack", ack

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def recv(self, within: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), within)
        assert isinstance(raw, str), "graphql-ws messages are text frames"
        return orjson.loads(raw)  # type: ignore[no-any-return]

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        await self.send(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})


# --- an upstream for the tutor chat ------------------------------------------------------------
FALLBACK_TOKENS = ["Spaced ", "repetition ", "works ", "because ", "forgetting ", "is ", "lawful."]


@contextlib.contextmanager
def running_upstream(tokens: int = 12) -> Iterator[str]:
    """The project's simulator (`upstream_sim`) when present; else a tiny stand-in serving the
    same OpenAI streaming format. Yields the base URL (…/v1)."""
    simulator: Callable[..., contextlib.AbstractContextManager[Any]] | None
    try:
        from upstream_sim.server import running_simulator as simulator
    except ImportError:
        simulator = None
    if simulator is not None:
        with simulator(port=0, ttft_ms=5, inter_token_ms=1, tokens=tokens) as handle:
            url = str(handle.url).rstrip("/")
            yield url if url.endswith("/v1") else url + "/v1"
        return
    server = ServerThread(_FallbackUpstream())  # type: ignore[arg-type]
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/v1"
    finally:
        server.stop()


class _FallbackUpstream:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for token in FALLBACK_TOKENS:
            chunk = {"choices": [{"index": 0, "delta": {"content": token}}]}
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + orjson.dumps(chunk) + b"\n\n",
                    "more_body": True,
                }
            )
            await asyncio.sleep(0.001)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


# --- drivers: the same operations in-process and over the network ------------------------------
class Driver:
    """execute() a query or mutation; subscribe() to a subscription (an async iterator of
    `data` dicts that raises GraphQLFailed on an error payload)."""

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        body = await self.post(query, variables, token)
        if body.get("errors"):
            raise GraphQLFailed(body["errors"])
        return body["data"]  # type: ignore[no-any-return]

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def subscribe(
        self, query: str, variables: dict[str, Any] | None, token: str
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        raise NotImplementedError

    async def subscriber_count(self) -> int:
        raise NotImplementedError


class HttpMixin(Driver):
    client: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()  # type: ignore[no-any-return]


class InProcessDriver(HttpMixin):
    """Queries and mutations through the ASGI app (httpx ASGITransport); subscriptions through
    `schema.subscribe` with the context a WebSocket connection would get."""

    def __init__(self, app: GraphQLApp, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @contextlib.asynccontextmanager
    async def subscribe(
        self, query: str, variables: dict[str, Any] | None, token: str
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        holder = self.app.holder
        ctx = Context(holder.service, holder.config, None, long_lived=True)
        await ctx.sign_in(f"Bearer {token}")
        source = await self.app.schema.subscribe(
            query, variable_values=variables, context_value=ctx
        )

        async def frames() -> AsyncGenerator[dict[str, Any], None]:
            async for result in source:  # type: ignore[union-attr]
                if result.errors:
                    raise GraphQLFailed([dict(e.formatted) for e in result.errors])
                yield result.data  # type: ignore[misc]

        stream = frames()  # an async generator: has aclose()
        try:
            yield stream
        finally:
            await stream.aclose()
            await source.aclose()  # type: ignore[union-attr]

    async def subscriber_count(self) -> int:
        return self.app.service.bus.subscriber_count


class ServerDriver(HttpMixin):
    """Everything over TCP: HTTP POST for queries and mutations, graphql-transport-ws for
    subscriptions (one socket per subscription, as a browser tab would open)."""

    def __init__(self, server: ServerThread, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client

    @contextlib.asynccontextmanager
    async def subscribe(
        self, query: str, variables: dict[str, Any] | None, token: str
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        async with WsClient.connect(self.server.ws_url, token) as ws:
            op_id = await ws.subscribe(query, variables)

            async def frames() -> AsyncIterator[dict[str, Any]]:
                while True:
                    message = await ws.recv()
                    if message["type"] == "ping":
                        await ws.send({"type": "pong"})
                        continue
                    assert message.get("id") == op_id, message
                    if message["type"] == "complete":
                        return
                    if message["type"] == "error":
                        raise GraphQLFailed(message["payload"])
                    payload = message["payload"]
                    if payload.get("errors"):
                        raise GraphQLFailed(payload["errors"])
                    yield payload["data"]

            yield frames()

    async def subscriber_count(self) -> int:
        return self.server.service.bus.subscriber_count
