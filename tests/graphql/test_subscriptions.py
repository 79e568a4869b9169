"""Subscription lifecycle on a real server: nothing leaks when subscribers go away."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import websockets

from flashcards._async.service import Service
from flashcards.settings import Settings
from impl_graphql import create_app
from tests.graphql.conftest import register
from tests.graphql.support import TRANSPORT_WS, ServerDriver, ServerThread, WsClient, eventually

pytestmark = pytest.mark.server

EVENTS = "subscription { events { id type } }"
HELD = 200


async def test_dropped_subscribers_free_queue_and_task(
    server: ServerThread, over_server: ServerDriver
) -> None:
    token = await register(over_server, "grace")
    bus = server.service.bus
    base_subs = bus.subscriber_count
    base_tasks = await server.task_count()

    stack = contextlib.AsyncExitStack()
    clients: list[WsClient] = []
    async with stack:
        # 200 sockets, one subscription each, opened a batch at a time.
        for start in range(0, HELD, 50):
            batch = await asyncio.gather(
                *(
                    stack.enter_async_context(WsClient.connect(server.ws_url, token))
                    for _ in range(start, start + 50)
                )
            )
            for client in batch:
                await client.subscribe(EVENTS)
            clients.extend(batch)
        await eventually(lambda: bus.subscriber_count == base_subs + HELD)
        # at least one task per connection and one per operation
        assert await server.task_count() > base_tasks + HELD

        # One event reaches every subscriber.
        await over_server.execute(
            'mutation { create_deck(input: {title: "fan-out"}) { id } }', token=token
        )
        frames = await asyncio.gather(*(c.recv() for c in clients))
        assert all(f["payload"]["data"]["events"]["type"] == "deck.created" for f in frames)

        # Drop them all at once, without `complete` or a close handshake.
        for client in clients:
            client.ws.transport.abort()
        await eventually(lambda: bus.subscriber_count == base_subs)
        await eventually(lambda: _tasks_back(server, base_tasks))
    assert bus.subscriber_count == base_subs


async def _tasks_back(server: ServerThread, base: int) -> bool:
    return await server.task_count() <= base


async def test_complete_unsubscribes_and_socket_stays_usable(
    server: ServerThread, over_server: ServerDriver
) -> None:
    token = await register(over_server, "heidi")
    bus = server.service.bus
    base = bus.subscriber_count
    async with WsClient.connect(server.ws_url, token) as ws:
        ops = [await ws.subscribe(EVENTS) for _ in range(3)]
        await eventually(lambda: bus.subscriber_count == base + 3)
        await ws.complete(ops[0])
        await eventually(lambda: bus.subscriber_count == base + 2)
        await over_server.execute(
            'mutation { create_deck(input: {title: "x"}) { id } }', token=token
        )
        got = {(await ws.recv())["id"] for _ in range(2)}
        assert got == set(ops[1:])
    await eventually(lambda: bus.subscriber_count == base)


async def test_subscriptions_per_connection_are_capped(
    server: ServerThread, over_server: ServerDriver
) -> None:
    token = await register(over_server, "ivan")
    cap = server.app.settings.graphql_max_subscriptions_per_connection
    async with WsClient.connect(server.ws_url, token) as ws:
        for _ in range(cap):
            await ws.subscribe(EVENTS)
        await eventually(lambda: server.service.bus.subscriber_count >= cap)
        refused = await ws.subscribe(EVENTS)
        message = await ws.recv()
        assert message["id"] == refused and message["type"] == "error"
        assert message["payload"][0]["message"] == "Subscription limit reached"


async def test_connection_init_required(server: ServerThread) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT_WS]) as ws:  # type: ignore[list-item]
        await ws.send(
            '{"id":"1","type":"subscribe","payload":{"query":"subscription { events { id } }"}}'
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_unknown_subprotocol_and_path(server: ServerThread) -> None:
    async with websockets.connect(server.ws_url, subprotocols=["nope"]) as ws:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(server.ws_url.replace("/graphql", "/other")):
            pass


async def test_server_shutdown_ends_subscriptions(settings: Settings, service: Service) -> None:
    """Stopping the server ends every open feed and the app closes its own service."""
    thread = ServerThread(create_app(settings)).start()
    try:
        async with httpx.AsyncClient(base_url=thread.http_url.removesuffix("/graphql")) as http:
            token = await register(ServerDriver(thread, http), "judy")
        async with WsClient.connect(thread.ws_url, token) as ws:
            await ws.subscribe(EVENTS)
            bus = thread.service.bus
            await eventually(lambda: bus.subscriber_count == 1)
            stopping = asyncio.create_task(asyncio.to_thread(thread.stop))
            with contextlib.suppress(websockets.ConnectionClosed):
                while (await ws.recv(within=10))["type"] != "complete":
                    pass
            await stopping
    finally:
        thread.stop()
    assert bus.subscriber_count == 0
    assert thread.app.holder._service is None  # closed at lifespan shutdown
