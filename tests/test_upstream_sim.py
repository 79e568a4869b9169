"""The upstream simulator, through the project's real upstream clients (async and sync twin)
and through raw HTTP where the wire format itself is the subject."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psutil
import pytest

from flashcards._async.upstream import UpstreamClient
from flashcards._sync.upstream import UpstreamClient as SyncUpstreamClient
from flashcards.errors import UpstreamFailed
from flashcards.settings import Settings
from upstream_sim.__main__ import parse
from upstream_sim.chunks import answer_text, token_text
from upstream_sim.config import ConfigError, SimConfig, coerce, from_env, magic_overrides
from upstream_sim.server import SimulatorHandle, create_app, running_simulator

pytestmark = pytest.mark.server

TOKENS = 12


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator(ttft_ms=20, inter_token_ms=2, tokens=TOKENS) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh_settings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from the startup settings, whatever a previous one left in /control."""
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").control(reset=True)


def ask(text: str = "Why does spacing work?") -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a tutor."}, {"role": "user", "content": text}]


def body(text: str = "hi", **more: Any) -> dict[str, Any]:
    return {"model": "tutor-sim", "messages": ask(text), **more}


async def collect(settings: Settings, text: str = "Why?") -> list[str]:
    client = UpstreamClient(settings)
    try:
        return [token async for token in client.stream(ask(text))]
    finally:
        await client.aclose()


def sse_chunks(raw: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON chunks and every `data:` payload of an SSE body."""
    payloads = [line[5:].strip() for line in raw.decode().split("\n") if line.startswith("data:")]
    return [orjson.loads(p) for p in payloads if p != "[DONE]"], payloads


# --- format ------------------------------------------------------------------------------------
async def test_real_client_reads_every_token(sim: SimulatorHandle) -> None:
    tokens = await collect(Settings(upstream_url=sim.url))
    assert tokens == [token_text(i) for i in range(TOKENS)]
    assert "".join(tokens) == answer_text(TOKENS)
    assert all(token.endswith(" ") for token in tokens)


async def test_stream_matches_openai_chunk_format(sim: SimulatorHandle) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(sim.url + "/chat/completions", json=body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    float(response.headers["x-sim-started"])
    chunks, payloads = sse_chunks(response.content)
    assert payloads[-1] == "[DONE]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert {c["model"] for c in chunks} == {"tutor-sim"}
    first, *content, last = (c["choices"][0] for c in chunks)
    assert first["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["delta"] for c in content] == [{"content": token_text(i)} for i in range(TOKENS)]
    assert all(c["finish_reason"] is None and c["index"] == 0 for c in [first, *content])
    assert last["delta"] == {} and last["finish_reason"] == "stop"


async def test_usage_chunk_when_asked(sim: SimulatorHandle) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            sim.url + "/chat/completions",
            json=body(stream=True, stream_options={"include_usage": True}),
        )
    chunks, _ = sse_chunks(response.content)
    assert all("usage" in c for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == TOKENS
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_non_streamed_completion_and_models(sim: SimulatorHandle) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post("/chat/completions", json=body())
        models = (await client.get("/models")).json()
        health = await client.get(sim.url.removesuffix("/v1") + "/health")
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {
        "role": "assistant", "content": answer_text(TOKENS), "refusal": None,
    }
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == TOKENS
    assert models["object"] == "list" and models["data"][0]["id"] == "tutor-sim"
    assert health.json() == {"status": "ok"}


# --- timing -----------------------------------------------------------------------------------
async def test_schedule_is_respected(sim: SimulatorHandle) -> None:
    """Lower bounds from the server's own X-Sim-Started (one monotonic clock per machine);
    upper bounds only generous ones: this is not a benchmark."""
    headers = {"X-Sim-TTFT-Ms": "150", "X-Sim-Inter-Token-Ms": "25", "X-Sim-Tokens": "5"}
    arrivals: list[float] = []
    sent = time.monotonic()
    async with httpx.AsyncClient() as client, client.stream(
        "POST", sim.url + "/chat/completions", json=body(stream=True), headers=headers
    ) as response:
        started = float(response.headers["x-sim-started"])
        async for line in response.aiter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.monotonic())
    assert response.headers["x-sim-tokens"] == "5"
    assert len(arrivals) == 5
    assert sent <= started
    assert arrivals[0] >= started + 0.150  # never early
    for i, arrival in enumerate(arrivals):
        assert arrival >= started + 0.150 + i * 0.025 - 0.002  # uvloop timers: 1 ms resolution
    assert arrivals[-1] - sent < 2.0


# --- faults -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("fail", "HTTP 500"),
        ("status:429", "HTTP 429"),
        ("status:503", "HTTP 503"),
        ("disconnect", "RemoteProtocolError"),
        ("truncate", "before it finished"),
        ("malformed", "malformed chunk"),
        ("slow", "timed out"),
    ],
)
async def test_each_fault_fails_the_client(sim: SimulatorHandle, fault: str, reason: str) -> None:
    settings = Settings(upstream_url=sim.url, upstream_read_timeout_s=0.3,
                        upstream_first_token_timeout_s=0.3)
    client = UpstreamClient(settings)
    received: list[str] = []
    with pytest.raises(UpstreamFailed, match=reason):
        async for token in client.stream(ask(f"[[fault:{fault}]] Why?")):
            received.append(token)
    await client.aclose()
    # Mid-stream faults strike after `fault_after` (3) good tokens.
    expected = 3 if fault in ("disconnect", "truncate", "malformed") else 0
    assert received == [token_text(i) for i in range(expected)]


async def test_control_flips_a_running_simulator(sim: SimulatorHandle) -> None:
    settings = Settings(upstream_url=sim.url)
    before = sim.stats()["faults"]
    assert sim.control(fault="fail", tokens=4)["fault"] == "fail"
    assert sim.settings()["tokens"] == 4
    with pytest.raises(UpstreamFailed, match="HTTP 500"):
        await collect(settings)
    assert sim.control(fault="none") == {**sim.settings(), "fault": "none"}
    assert len(await collect(settings)) == 4
    sim.control(reset=True)
    assert len(await collect(settings)) == TOKENS
    assert sim.stats()["faults"] == before + 1
    with pytest.raises(httpx.HTTPStatusError):
        sim.control(fault="explode")


async def test_header_overrides_and_echo(sim: SimulatorHandle) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            sim.url + "/chat/completions", json=body(),
            headers={"X-Sim-Tokens": "3", "X-Sim-TTFT-Ms": "0", "X-Sim-Fault": "status:418"},
        )
        magic_wins = await client.post(
            sim.url + "/chat/completions", json=body("[[tokens:2]] hi"), headers={"X-Sim-Tokens": "5"}
        )
    assert response.status_code == 418
    assert response.headers["x-sim-fault"] == "status:418"
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert magic_wins.json()["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        (b"{", {}),
        (b"[]", {}),
        (orjson.dumps({"model": "m"}), {}),
        (orjson.dumps({"messages": ask()}), {}),
        (orjson.dumps({"model": "m", "messages": []}), {}),
        (orjson.dumps({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}), {}),
        (orjson.dumps({"model": "m", "messages": ["hi"]}), {}),
        (orjson.dumps({**body(), "stream": "yes"}), {}),
        (orjson.dumps({**body(), "stream_options": {"include_usage": True}}), {}),
        (orjson.dumps(body("[[colour:red]] hi")), {}),
        (orjson.dumps(body()), {"X-Sim-Tokens": "lots"}),
        (orjson.dumps(body()), {"X-Sim-Fault": "status:99"}),
        (orjson.dumps(body()), {"X-Sim-Nonsense": "1"}),
    ],
)
async def test_bad_requests_get_openai_style_400(
    sim: SimulatorHandle, payload: bytes, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(sim.url + "/chat/completions", content=payload,
                                     headers={"content-type": "application/json", **headers})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


async def test_unknown_routes(sim: SimulatorHandle) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(sim.url + "/embeddings")
        wrong = await client.get(sim.url + "/chat/completions")
    assert missing.status_code == 404 and wrong.status_code == 405
    assert missing.json()["error"]["code"] is None


async def test_client_leaving_frees_the_stream(sim: SimulatorHandle) -> None:
    before = sim.stats()["client_disconnects"]
    async with httpx.AsyncClient() as client, client.stream(
        "POST", sim.url + "/chat/completions", json=body(stream=True),
        headers={"X-Sim-Fault": "slow"},
    ) as response:
        assert response.headers["x-sim-fault"] == "slow"
    for _ in range(100):  # the simulator notices at once, not after slow_ms (60 s)
        stats = sim.stats()
        if stats["client_disconnects"] > before and stats["streams_active"] == 0:
            break
        await asyncio.sleep(0.02)
    assert stats["client_disconnects"] == before + 1 and stats["streams_active"] == 0


# --- load, twin, processes ------------------------------------------------------------------
async def test_200_concurrent_streams_complete(sim: SimulatorHandle) -> None:
    sim.reset_stats()
    client = UpstreamClient(Settings(upstream_url=sim.url))
    try:
        async def one() -> str:
            return "".join([token async for token in client.stream(ask())])

        answers = await asyncio.gather(*(one() for _ in range(200)))
    finally:
        await client.aclose()
    assert answers == [answer_text(TOKENS)] * 200
    stats = sim.stats()
    assert stats["streams_completed"] == 200 and stats["tokens_sent"] == 200 * TOKENS


def test_sync_twin_client(sim: SimulatorHandle) -> None:
    client = SyncUpstreamClient(Settings(upstream_url=sim.url))
    try:
        assert "".join(client.stream(ask())) == answer_text(TOKENS)
        with pytest.raises(UpstreamFailed, match="before it finished"):
            list(client.stream(ask("[[fault:truncate]] hi")))
    finally:
        client.close()


def test_workers_share_control_and_stats() -> None:
    with running_simulator(ttft_ms=0, inter_token_ms=0, tokens=2, workers=2) as sim:
        for _ in range(100):  # the second worker may still be starting
            if sim.stats()["workers"] == 2:
                break
            time.sleep(0.05)
        sim.control(fault="status:503")
        with httpx.Client() as client:
            codes = {client.post(sim.url + "/chat/completions", json=body(),
                                 headers={"connection": "close"}).status_code for _ in range(16)}
        stats = sim.stats()
        pid = sim.pid
    assert codes == {503}
    assert stats["workers"] == 2 and stats["faults"] == 16
    assert not _live_group_members(pid)  # uvicorn's supervisor, workers, resource tracker


def _live_group_members(pgid: int, within_s: float = 3.0) -> list[int]:
    """Processes still running in a process group (zombies awaiting init's reaping excepted),
    after waiting up to `within_s` for them to go: SIGKILL is delivered asynchronously, so an
    orphaned worker can still be listed as running for a moment after stop() returns (CI saw
    one)."""
    deadline = time.monotonic() + within_s
    while (members := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def _group_members(pgid: int) -> list[int]:
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
    return members


async def test_in_process_app() -> None:
    app = create_app(SimConfig(ttft_ms=0, inter_token_ms=0, tokens=3))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        response = await client.post("/v1/chat/completions", json=body(stream=True))
        stats = (await client.get("/stats")).json()
    chunks, payloads = sse_chunks(response.content)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == answer_text(3)
    assert payloads[-1] == "[DONE]" and stats["streams_completed"] == 1


# --- configuration ----------------------------------------------------------------------------
def test_settings_validation_and_sources() -> None:
    assert coerce("ttft_ms", "12.5") == 12.5 and coerce("tokens", 4.0) == 4
    assert coerce("fault", " Status:429 ") == "status:429" and coerce("fault", "") == "none"
    for key, value in [("tokens", True), ("tokens", 2.5), ("ttft_ms", -1), ("ttft_ms", "nan"),
                       ("fault", "status:600"), ("nope", 1)]:
        with pytest.raises(ConfigError):
            coerce(key, value)
    assert magic_overrides("[[fault:status:429, tokens:5]] hi") == [
        ("fault", "status:429"), ("tokens", "5")]
    assert magic_overrides("no magic [[fault:fail]]") == []
    assert from_env({"UPSTREAM_SIM_TOKENS": "7"}).tokens == 7
    args, config = parse(["--port", "9", "--ttft-ms", "5", "--fault", "slow", "--workers", "2"])
    assert (args.port, args.workers, config.ttft_ms, config.fault) == (9, 2, 5.0, "slow")
    assert SimConfig(fault="fail").status == 500 and SimConfig().status is None
