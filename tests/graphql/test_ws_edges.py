"""graphql-transport-ws edges (issue 19, finding 8), over a real server: the HTTP body limit
holds for socket messages too (a 4 MB query ran), and a query that does not parse is refused
with its reason — Strawberry's own answer, close 4400 and the syntax error — not a bare
`complete` (Strawberry's ParserCache raised out of `subscribe`)."""

from __future__ import annotations

import pytest
import websockets

from tests.graphql.conftest import register
from tests.graphql.support import ServerDriver, ServerThread, WsClient


async def test_a_message_over_the_body_limit_closes_the_socket(server: ServerThread, over_server: ServerDriver) -> None:
    token = await register(over_server, "wsbig")
    limit = server.app.settings.max_body_bytes
    async with WsClient.connect(server.ws_url, token) as ws:
        padding = " " * limit  # whitespace: the query itself is tiny and valid
        await ws.send({"id": "1", "type": "subscribe", "payload": {"query": "subscription {" + padding + " events { id } }"}})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv(within=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_message_at_the_limit_is_served(server: ServerThread, over_server: ServerDriver) -> None:
    token = await register(over_server, "wsfits")
    limit = server.app.settings.max_body_bytes
    async with WsClient.connect(server.ws_url, token) as ws:
        frame = '{"id":"1","type":"subscribe","payload":{"query":"{ config { service } }"}}'
        await ws.ws.send(frame[:-1] + " " * (limit - len(frame)) + "}")
        message = await ws.recv()
        assert message["type"] == "next" and message["payload"]["data"]["config"]["service"]


@pytest.mark.parametrize("query", ["subscription { events { id }", "subscription {{{", "query { nope("])
async def test_a_query_that_does_not_parse_is_refused_with_the_reason(
    server: ServerThread, over_server: ServerDriver, query: str
) -> None:
    token = await register(over_server, f"wssyntax{len(query)}")
    async with WsClient.connect(server.ws_url, token) as ws:
        await ws.send({"id": "7", "type": "subscribe", "payload": {"query": query}})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            message = await ws.recv(within=5)
            pytest.fail(f"answered {message} instead of refusing")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    assert closed.value.rcvd.reason.startswith("Syntax Error")
