"""Tutor chat time limits (issue 19, finding 4), the same in all three apps, against the real
upstream simulator: an upstream that stalls mid-answer is cut by the idle timeout, one that
trickles a token at a time under the idle timeout is cut by the answer's deadline. Either way
the client gets a terminal `error` frame (`UPSTREAM_FAILED` and why), the worker is free again
within the bound (deadline + idle timeout), and the partial answer is stored `failed`. Answers
a dead worker left `streaming` end `failed` too (the service, so every app)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

import impl_flask_baseline
import impl_graphql
import impl_rest
from flashcards import statements as q
from flashcards._sync.database import Database
from flashcards._sync.service import Service as SyncService
from flashcards.settings import Settings
from flashcards.tables import chat_messages
from tests.graphql.support import InProcessDriver
from tests.support import make_settings
from upstream_sim.chunks import answer_text
from upstream_sim.server import SimulatorHandle, running_simulator

IDLE_S = 0.6
DEADLINE_S = 1.5
APPS = ["flask", "rest", "graphql"]
CASES = [
    # first token at once, the next after a minute: the idle timeout ends it after one token
    ("[[inter_token_ms:60000 tokens:5]]", "The tutor upstream timed out.", IDLE_S),
    # a token every 0.3 s, never idle long enough: the deadline ends it
    ("[[inter_token_ms:300 tokens:1000]]", f"The tutor answer passed its {DEADLINE_S:g} s deadline.", DEADLINE_S),
]
CHAT = "subscription($m: String!) { chat(input: {message: $m}) { type answer_id index content code detail message { id role content status } } }"
CREDS = {"username": "learner", "password": "correct horse"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimulatorHandle]:
    with running_simulator(ttft_ms=5, inter_token_ms=1, tokens=12) as sim:
        yield sim


def _settings(tmp_path: Path, upstream: SimulatorHandle) -> Settings:
    settings = make_settings(f"sqlite:///{tmp_path / 'chat.sqlite3'}", upstream_url=upstream.url,
                             upstream_read_timeout_s=IDLE_S, chat_deadline_s=DEADLINE_S)  # fmt: skip
    db = Database(settings)
    db.create_schema()
    db.dispose()
    return settings


def _sse(body: bytes) -> list[dict[str, Any]]:
    frames = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            frames.append({"type": fields["event"], **orjson.loads(fields["data"])})
    return frames


def _flask_chat(settings: Settings, message: str) -> list[dict[str, Any]]:
    client = impl_flask_baseline.create_app(settings).test_client()
    assert client.post("/api/auth/register", json={**CREDS, "display_name": "L"}).status_code == 201
    token = client.post("/api/auth/token", json=CREDS).get_json()["access_token"]
    r = client.post("/api/chat", json={"message": message}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    return _sse(r.get_data())


async def _rest_chat(settings: Settings, message: str) -> list[dict[str, Any]]:
    app = impl_rest.create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30
    ) as client:
        assert (await client.post("/api/auth/register", json={**CREDS, "display_name": "L"})).status_code == 201
        token = (await client.post("/api/auth/token", json=CREDS)).json()["access_token"]
        r = await client.post("/api/chat", json={"message": message}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        return _sse(r.content)


async def _graphql_chat(settings: Settings, message: str) -> list[dict[str, Any]]:
    app = impl_graphql.create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        driver = InProcessDriver(app, client)
        try:
            await driver.execute("mutation($i: RegisterInput!) { register(input: $i) { id } }",
                                 {"i": {**CREDS, "display_name": "L"}})  # fmt: skip
            data = await driver.execute("mutation($i: LoginInput!) { login(input: $i) { access_token } }", {"i": CREDS})
            frames = []
            async with driver.subscribe(CHAT, {"m": message}, data["login"]["access_token"]) as stream:
                async for frame in stream:
                    frames.append({k: v for k, v in frame["chat"].items() if v is not None})
            return frames
        finally:
            await app.holder.close()


@pytest.mark.parametrize("impl", APPS)
@pytest.mark.parametrize(("magic", "detail", "limit_s"), CASES, ids=["stalled", "trickling"])
async def test_a_slow_upstream_ends_the_chat_with_an_error_frame(
    impl: str, magic: str, detail: str, limit_s: float, tmp_path: Path, upstream: SimulatorHandle
) -> None:
    settings = _settings(tmp_path, upstream)
    message = f"{magic} explain SM-2"
    started = time.monotonic()
    if impl == "flask":
        frames = _flask_chat(settings, message)
    elif impl == "rest":
        frames = await _rest_chat(settings, message)
    else:
        frames = await _graphql_chat(settings, message)
    elapsed = time.monotonic() - started
    types = [f["type"] for f in frames]
    assert types[0] == "message" and types[-1] == "error" and set(types[1:-1]) == {"token"}, types
    error = frames[-1]
    assert (error["code"], error["detail"]) == ("UPSTREAM_FAILED", detail)
    partial = "".join(f["content"] for f in frames[1:-1])
    assert partial == answer_text(len(frames) - 2)
    assert (error["message"]["content"], error["message"]["status"]) == (partial, "failed")
    # never longer than the limit plus one idle timeout (and the app's own start-up)
    assert limit_s <= elapsed < limit_s + IDLE_S + 2.0, elapsed


def _stored_answers(svc: SyncService, user_id: int) -> dict[int, str]:
    with svc.db.connect() as conn:
        rows = conn.execute(select(chat_messages.c.id, chat_messages.c.status)
                            .where(chat_messages.c.user_id == user_id, chat_messages.c.role == "assistant")).all()  # fmt: skip
    return {r.id: r.status for r in rows}


def test_answers_left_streaming_by_a_dead_worker_end_failed(tmp_path: Path, upstream: SimulatorHandle) -> None:
    """Workers killed mid-answer leave `streaming` rows nothing will ever end: past the longest a
    chat may run they read as `failed`, and the next process's first chat marks them all."""
    settings = _settings(tmp_path, upstream)
    svc = SyncService(settings)
    try:
        for name in ("alice", "bobby"):
            svc.register({"username": name, "display_name": name, "password": "correct horse"})
        now = datetime.now(UTC)
        long_ago = now - timedelta(seconds=settings.chat_stale_after_s + 1)
        with svc.db.begin() as conn:  # what a killed worker leaves behind
            dead = {u: conn.execute(q.insert_chat_message(u, "assistant", "half an", "streaming", long_ago)).one().id
                    for u in (1, 2)}  # fmt: skip
            live = conn.execute(q.insert_chat_message(1, "assistant", "still", "streaming", now)).one().id
        statuses = {m.id: m.status for m in svc.chat_history(1).items}
        assert (statuses[dead[1]], statuses[live]) == ("failed", "streaming")  # a live answer is left alone
        assert _stored_answers(svc, 1) == {dead[1]: "failed", live: "streaming"}
        assert _stored_answers(svc, 2) == {dead[2]: "streaming"}  # not read yet
    finally:
        svc.close()
    restarted = SyncService(settings)  # a new worker process: its first chat sweeps every user
    try:
        events = list(restarted.chat(1, {"message": "explain SM-2"}))
        assert events[-1].type == "done"
        assert _stored_answers(restarted, 2) == {dead[2]: "failed"}
    finally:
        restarted.close()
