"""The committed SDL, the report settings, the FastAPI mount, and chat edge cases."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from flashcards._async.service import Service
from flashcards.settings import Settings
from impl_graphql.sdl import sdl
from tests.graphql.conftest import register
from tests.graphql.support import GraphQLFailed, InProcessDriver

ROOT = Path(__file__).resolve().parents[2]
SDL_FILE = ROOT / "contract" / "schema.graphql"


def test_committed_sdl_is_current() -> None:
    assert SDL_FILE.read_text() == sdl(), (
        "contract/schema.graphql is stale: run `python -m impl_graphql.sdl > contract/schema.graphql`"
    )


def test_sdl_module_prints_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "impl_graphql.sdl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == SDL_FILE.read_text()


def test_ids_are_id_typed() -> None:
    text = sdl()
    for line in (
        "  id: ID!",
        "  deck_id: ID!",
        "  card_id: ID!",
        "deck(deck_id: ID!)",
        "card(card_id: ID!)",
    ):
        assert line in text, line


def test_settings_for_report() -> None:
    import impl_graphql

    report = impl_graphql.SETTINGS_FOR_REPORT
    assert {"ParserCache", "ValidationCache"} <= set(report["extensions"])
    assert (
        report["max_subscriptions_per_connection"]
        == Settings().graphql_max_subscriptions_per_connection
    )
    assert report["subscription_protocols"] == ["graphql-transport-ws", "graphql-ws"]
    assert report["auto_camel_case"] is False
    custom = impl_graphql.settings_for_report(
        Settings(graphql_max_depth=5, graphql_introspection=False)
    )
    assert (
        custom["max_depth"] == 5
        and custom["introspection"] is False
        and custom["graphiql"] is False
    )


async def test_mounted_in_fastapi(settings: Settings, service: Service) -> None:
    from fastapi import FastAPI

    from impl_graphql import graphql_router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    api = FastAPI(lifespan=lifespan)
    api.state.service = service
    api.include_router(graphql_router(settings), prefix="/graphql")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        driver = InProcessDriver(None, client)  # type: ignore[arg-type]
        token = await register(driver, "pat")
        assert (await driver.execute("{ me { username } }", token=token)) == {
            "me": {"username": "pat"}
        }
        with pytest.raises(GraphQLFailed) as err:
            await driver.execute('{ deck(deck_id: "x") { id } }', token=token)
        assert err.value.codes == ["BAD_USER_INPUT"]
        config = await driver.execute("{ config { limits { page_max } } }")
        assert config == {"config": {"limits": {"page_max": 100}}}


CHAT = "subscription($m: String!) { chat(input: {message: $m}) { type code detail content message { status content } } }"


async def _chat(driver: InProcessDriver, token: str, message: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with driver.subscribe(CHAT, {"m": message}, token) as stream:
        async for frame in stream:
            frames.append(frame["chat"])
    return frames


async def test_chat_validation_error(in_process: InProcessDriver) -> None:
    token = await register(in_process, "quinn")
    with pytest.raises(GraphQLFailed) as err:
        await _chat(in_process, token, "")
    assert err.value.codes == ["BAD_USER_INPUT"]
    assert err.value.errors[0]["extensions"]["errors"][0]["field"] == "message"


async def test_chat_upstream_failure_is_an_error_frame(
    in_process: InProcessDriver, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await register(in_process, "ruth")
    monkeypatch.setattr(service.upstream, "url", "http://127.0.0.1:9/v1/chat/completions")
    frames = await _chat(in_process, token, "anyone there?")
    assert [f["type"] for f in frames] == ["message", "error"]
    assert frames[-1]["code"] == "UPSTREAM_FAILED"
    assert frames[-1]["message"]["status"] == "failed"
    history = await in_process.execute("{ chat_history { items { role status } } }", token=token)
    assert history["chat_history"]["items"][0] == {"role": "assistant", "status": "failed"}


async def test_chat_client_gone_mid_stream_stores_failed(in_process: InProcessDriver) -> None:
    token = await register(in_process, "sam")
    async with in_process.subscribe(CHAT, {"m": "tell me"}, token) as stream:
        first = await stream.__anext__()
        assert first["chat"]["type"] == "message"
        second = await stream.__anext__()
        assert second["chat"]["type"] == "token"
    history = await in_process.execute(
        "{ chat_history { items { role status content } } }", token=token
    )
    answer = history["chat_history"]["items"][0]
    assert answer["role"] == "assistant" and answer["status"] == "failed"
    assert answer["content"] == second["chat"]["content"]
