"""The GraphQL tutor chat under upstream faults, as `tests/http/test_chat.py` checks the REST apps:
an upstream that answers an error status, drops the connection mid-stream, ends the body early,
sends a malformed chunk or is too slow ends the `chat` subscription with an `error` frame
(`UPSTREAM_FAILED` and the reason), and the partial answer is stored with status `failed`.

Run in-process (`schema.subscribe`) and over a real server (graphql-transport-ws), against the
upstream simulator in a subprocess (faults chosen per request by a `[[fault:…]]` prefix).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from flashcards.settings import Settings
from impl_graphql import create_app
from impl_graphql.app import GraphQLApp
from tests.graphql.support import Driver, InProcessDriver, ServerDriver, ServerThread
from tests.support import fresh_schema, make_settings, postgres_dsn
from upstream_sim.chunks import answer_text
from upstream_sim.server import SimulatorHandle, running_simulator

CHAT = (
    "subscription($m: String!) { chat(input: {message: $m}) { type answer_id index content code detail "
    "message { id role content status } } }"
)
FAULTS = [
    ("[[fault:status:503]]", 0, "The tutor upstream answered HTTP 503."),
    ("[[fault:disconnect fault_after:2]]", 2, "The tutor upstream failed: RemoteProtocolError."),
    ("[[fault:truncate fault_after:2]]", 2, "The tutor upstream closed the stream before it finished."),
    ("[[fault:malformed fault_after:3]]", 3, "The tutor upstream sent a malformed chunk."),
    ("[[fault:slow slow_ms:5000]]", 0, "The tutor upstream timed out."),
]
FAULT_IDS = ["http-503", "connection-dropped", "body-ends-early", "malformed-chunk", "too-slow"]


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimulatorHandle]:
    with running_simulator(ttft_ms=5, inter_token_ms=1, tokens=12) as sim:
        yield sim


@pytest.fixture(scope="module")
def chat_settings(upstream: SimulatorHandle) -> Settings:
    # a read timeout well under the `slow` fault's first token: the app gives up at 0.5 s
    settings = make_settings(postgres_dsn("stackbench_test_graphql_chat_faults"), upstream_url=upstream.url,
                             upstream_read_timeout_s=0.5, upstream_first_token_timeout_s=0.5)  # fmt: skip
    return fresh_schema(settings)


@pytest.fixture(scope="module")
def server(chat_settings: Settings) -> Iterator[ServerThread]:
    thread = ServerThread(create_app(chat_settings)).start()
    yield thread
    thread.stop()


@pytest.fixture(params=["in-process", "websocket"])
async def driver(request: pytest.FixtureRequest, chat_settings: Settings) -> AsyncIterator[Driver]:
    if request.param == "in-process":
        app: GraphQLApp = create_app(chat_settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            try:
                yield InProcessDriver(app, client)
            finally:
                await app.holder.close()
    else:
        thread: ServerThread = request.getfixturevalue("server")
        async with httpx.AsyncClient(base_url=thread.http_url.removesuffix("/graphql"), timeout=20) as client:
            yield ServerDriver(thread, client)


_users = iter(range(1, 10**6))


async def _signup(driver: Driver) -> str:
    name = f"chat_fault_{next(_users)}_{id(driver) % 10**6}"
    await driver.execute(
        "mutation($i: RegisterInput!) { register(input: $i) { id } }",
        {"i": {"username": name, "display_name": "C", "password": "password1"}},
    )
    data = await driver.execute(
        "mutation($i: LoginInput!) { login(input: $i) { access_token } }",
        {"i": {"username": name, "password": "password1"}},
    )
    return str(data["login"]["access_token"])


@pytest.mark.parametrize(("magic", "tokens", "detail"), FAULTS, ids=FAULT_IDS)
async def test_upstream_fault_ends_the_subscription_with_an_error_frame(
    driver: Driver, magic: str, tokens: int, detail: str
) -> None:
    token = await _signup(driver)
    frames: list[dict[str, Any]] = []
    async with driver.subscribe(CHAT, {"m": f"{magic} explain SM-2"}, token) as stream:
        async for frame in stream:
            frames.append(frame["chat"])
    assert [f["type"] for f in frames] == ["message"] + ["token"] * tokens + ["error"]
    answer_id = frames[0]["answer_id"]
    error = frames[-1]
    assert (error["code"], error["detail"]) == ("UPSTREAM_FAILED", detail)
    partial = "".join(f["content"] for f in frames[1:-1])
    assert partial == answer_text(tokens)
    stored = error["message"]
    assert (stored["id"], stored["role"], stored["content"], stored["status"]) == (answer_id, "assistant", partial, "failed")
    history = await driver.execute("{ chat_history(limit: 2) { items { id role content status } } }", token=token)
    assert history["chat_history"]["items"][0] == stored
    assert history["chat_history"]["items"][1]["role"] == "user"
