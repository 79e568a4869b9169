"""The GraphQL `events` subscription under uvicorn with 3 workers on PostgreSQL: subscriptions on
two different workers get every event published through any worker, in order, none twice, and
a resubscription with `last_event_id` on another worker loses nothing (as the REST feed:
tests/reliability/test_feed_workers.py, whose fixtures and helpers this reuses)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest

from loadtests.launcher import RunningServer, serving
from loadtests.servers import ServerSpec
from loadtests.stacks import APPS
from tests.graphql.support import WsClient
from tests.reliability.test_feed_workers import FAST_HASH_ENV, client_port, feed_dsn, worker_of  # noqa: F401

pytestmark = pytest.mark.server
EVENTS = "subscription($after: ID) { events(last_event_id: $after) { id type data } }"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(feed_dsn: str) -> Iterator[RunningServer]:  # noqa: F811
    env = {"STACKBENCH_DSN": feed_dsn, "STACKBENCH_ENVIRONMENT": "test", **FAST_HASH_ENV}
    with serving(ServerSpec("uvicorn", APPS["graphql"], port=0, workers=3, env=env), timeout=90) as running:
        yield running


def gql(server: RunningServer, query: str, variables: dict[str, object], token: str | None = None) -> tuple[dict, int | None]:  # type: ignore[type-arg]
    """One operation on a fresh connection: its data and the worker that served it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as c:
        r = c.post("/graphql", json={"query": query, "variables": variables})
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        return r.json()["data"], worker_of(server, client_port(r))


async def subscription(server: RunningServer, stack: contextlib.AsyncExitStack, token: str,
                       after: str | None = None, avoid: int | None = None) -> tuple[WsClient, int | None]:
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    for _ in range(30):
        inner = contextlib.AsyncExitStack()
        ws = await inner.enter_async_context(WsClient.connect(ws_url, token))
        worker = worker_of(server, ws.ws.local_address[1])
        if avoid is None or (worker is not None and worker != avoid):
            await ws.subscribe(EVENTS, {"after": after})
            stack.push_async_callback(inner.aclose)
            return ws, worker
        await inner.aclose()
    pytest.fail(f"30 connections all landed on worker {avoid}")


async def events_of(ws: WsClient, n: int) -> list[dict]:  # type: ignore[type-arg]
    out = []
    while len(out) < n:
        message = await ws.recv(within=15)
        if message["type"] == "ping":
            await ws.send({"type": "pong"})
            continue
        assert message["type"] == "next", message
        out.append(message["payload"]["data"]["events"])
    return out


async def test_graphql_subscriptions_on_two_workers_get_every_event(server: RunningServer) -> None:
    name = f"gql_{time.monotonic_ns() % 10**9}"
    register = "mutation($i: RegisterInput!) { register(input: $i) { id } }"
    gql(server, register, {"i": {"username": name, "display_name": "G", "password": PASSWORD}})
    login = "mutation($i: LoginInput!) { login(input: $i) { access_token } }"
    token = gql(server, login, {"i": {"username": name, "password": PASSWORD}})[0]["login"]["access_token"]
    async with contextlib.AsyncExitStack() as stack:
        first, w1 = await subscription(server, stack, token)
        second, _ = await subscription(server, stack, token, avoid=w1)
        created = [gql(server, 'mutation { create_deck(input: {title: "d"}) { id } }', {}, token)
                   for _ in range(8)]
        decks = [int(data["create_deck"]["id"]) for data, _ in created]
        for ws in (first, second):
            got = await events_of(ws, 8)
            assert [e["data"]["deck_id"] for e in got] == decks
            ids = [int(e["id"]) for e in got]
            assert ids == sorted(set(ids))
        # resubscribe after the 4th event on a worker other than the first subscription's
        resumed, _ = await subscription(server, stack, token, after=got[3]["id"], avoid=w1)
        assert [e["data"]["deck_id"] for e in await events_of(resumed, 4)] == decks[4:]
