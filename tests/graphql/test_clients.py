"""Off-the-shelf clients, written only from the public protocols, against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.graphql.conftest import register
from tests.graphql.support import (
    LEGACY_WS,
    TRANSPORT_WS,
    ServerDriver,
    ServerThread,
    WsClient,
    eventually,
)

pytestmark = pytest.mark.server

EVENTS = GraphQLRequest("subscription { events { id type data } }")


async def _events_via_gql(server: ServerThread, driver: ServerDriver, protocol: str) -> None:
    token = await register(driver, "carol")
    transport = WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[protocol],  # type: ignore[list-item]
    )
    received: list[dict[str, Any]] = []
    base = server.service.bus.subscriber_count
    async with Client(transport=transport) as session:

        async def listen() -> None:
            async for result in session.subscribe(EVENTS):
                received.append(result["events"])
                if len(received) == 2:
                    return

        task = asyncio.create_task(listen())
        await eventually(lambda: server.service.bus.subscriber_count > base)
        # The mutations go over HTTP, on another connection.
        deck = await driver.execute(
            'mutation { create_deck(input: {title: "gql"}) { id } }', token=token
        )
        await driver.execute(
            'mutation($d: ID!) { update_deck(deck_id: $d, input: {title: "gql 2"}) { id } }',
            {"d": deck["create_deck"]["id"]},
            token,
        )
        await asyncio.wait_for(task, 10)
        query = GraphQLRequest("{ config { api_version } }")
        if protocol == WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL:
            # graphql-transport-ws carries any operation
            assert await session.execute(query) == {"config": {"api_version": "1"}}
        else:
            # Strawberry's legacy graphql-ws handler runs subscriptions only: a clear error
            with pytest.raises(TransportQueryError) as err:
                await session.execute(query)
            assert err.value.errors and err.value.errors[0]["message"] == "queries are not allowed"
            assert err.value.errors[0]["extensions"]["code"] == "BAD_REQUEST"
    assert [e["type"] for e in received] == ["deck.created", "deck.updated"]
    assert received[1]["data"] == {"deck_id": int(deck["create_deck"]["id"]), "fields": ["title"]}
    await eventually(lambda: server.service.bus.subscriber_count == base)


async def test_gql_websockets_transport(server: ServerThread, over_server: ServerDriver) -> None:
    await _events_via_gql(server, over_server, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL)


async def test_gql_legacy_graphql_ws(server: ServerThread, over_server: ServerDriver) -> None:
    await _events_via_gql(server, over_server, WebsocketsTransport.APOLLO_SUBPROTOCOL)


async def test_gql_http_transport(server: ServerThread, over_server: ServerDriver) -> None:
    token = await register(over_server, "dave")
    transport = HTTPXAsyncTransport(
        url=server.http_url, headers={"Authorization": f"Bearer {token}"}
    )
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        me = await session.execute(GraphQLRequest("{ me { username display_name } }"))
        assert me == {"me": {"username": "dave", "display_name": "Dave"}}
        with pytest.raises(TransportQueryError) as err:
            await session.execute(GraphQLRequest('{ deck(deck_id: "42") { id } }'))
        assert err.value.errors and err.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_chat_subscription_via_gql(server: ServerThread, over_server: ServerDriver) -> None:
    token = await register(over_server, "erin")
    transport = WebsocketsTransport(
        url=server.ws_url, init_payload={"Authorization": f"Bearer {token}"}
    )
    request = GraphQLRequest(
        "subscription($m: String!) { chat(input: {message: $m}) { type index content message { content } } }",
        variable_values={"m": "hello"},
    )
    async with Client(transport=transport) as session:
        frames = [r["chat"] async for r in session.subscribe(request)]
    assert frames[0]["type"] == "message" and frames[-1]["type"] == "done"
    streamed = "".join(f["content"] for f in frames if f["type"] == "token")
    assert streamed and frames[-1]["message"]["content"] == streamed


async def test_bad_token_is_refused(server: ServerThread) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT_WS]) as ws:  # type: ignore[list-item]
        await ws.send('{"type":"connection_init","payload":{"Authorization":"Bearer nope"}}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_bad_token_legacy_protocol(server: ServerThread) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[LEGACY_WS]) as ws:  # type: ignore[list-item]
        await ws.send('{"type":"connection_init","payload":{"token":"nope"}}')
        reply = await asyncio.wait_for(ws.recv(), 5)
    assert '"connection_error"' in str(reply) and "UNAUTHENTICATED" in str(reply)


async def test_anonymous_socket_gets_unauthenticated(server: ServerThread) -> None:
    async with WsClient.connect(server.ws_url) as ws:
        op = await ws.subscribe("subscription { events { id } }")
        message = await ws.recv()
        assert message["id"] == op and message["type"] == "next"
        assert message["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await ws.recv())["type"] == "complete"
        # config needs no token
        op = await ws.subscribe("{ config { service } }")
        message = await ws.recv()
        assert message["payload"]["data"] == {"config": {"service": "stackbench-flashcards"}}


async def test_token_in_handshake_header(server: ServerThread, over_server: ServerDriver) -> None:
    token = await register(over_server, "frank")
    async with websockets.connect(
        server.ws_url,
        subprotocols=[TRANSPORT_WS],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as raw:
        ws = WsClient(raw)
        await ws.init(None)
        await ws.subscribe("{ me { username } }")
        message = await ws.recv()
        assert message["payload"]["data"] == {"me": {"username": "frank"}}
