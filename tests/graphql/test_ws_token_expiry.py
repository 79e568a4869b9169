"""A GraphQL WebSocket outlives its token (issue 20): before, a mutation over the connection
succeeded 9 s after the token expired. Every operation after `exp` is now UNAUTHENTICATED, as
over HTTP; the connection stays open (a client may reconnect with a fresh token)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from flashcards import security
from flashcards._async.service import Service
from flashcards.settings import Settings
from tests.graphql.support import ServerThread, WsClient

MUTATION = 'mutation { create_deck(input: {title: "after expiry"}) { id } }'


async def _operation(ws: WsClient, query: str) -> dict:
    op = await ws.subscribe(query)
    while True:
        message = await ws.recv()
        if message.get("id") == op and message["type"] in ("next", "error"):
            return message


async def test_operations_after_the_token_expires_are_refused(server: ServerThread, service: Service,
                                                              settings: Settings) -> None:
    user = await service.register({"username": "expiring", "display_name": "E", "password": "password1"})
    soon = datetime.now(UTC) - timedelta(seconds=settings.jwt_ttl_s - 2)  # expires in about 2 s
    token = security.issue_token(settings, user.id, soon)
    async with WsClient.connect(server.ws_url, token) as ws:
        first = await _operation(ws, MUTATION)
        assert first["type"] == "next" and first["payload"]["data"]["create_deck"]["id"], first
        await asyncio.sleep(max(0.0, security.expires_at(token) - datetime.now(UTC).timestamp()) + 1.1)
        late = await _operation(ws, MUTATION)
        payload = late["payload"]
        errors = payload["errors"] if late["type"] == "next" else payload
        assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"], late
        assert "expired" in errors[0]["message"]
