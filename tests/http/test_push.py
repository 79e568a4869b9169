"""The FastAPI feed's direct-write fan-out (impl_rest/push.py) under real servers (uvicorn,
granian): many subscribers get every event in order from direct writes; a reader that stops
reading is dropped with the `dropped` frame once its bounded backlog is full (server memory for
it stays bounded), resumes with Last-Event-ID, and readers that keep up are not affected by it."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flashcards._sync.database import Database
from flashcards.events import EventBus
from impl_rest.push import PushStream
from tests.http.support import PASSWORD, UvicornThread, eventually
from tests.support import make_settings, sqlite_dsn

LIMIT = 16  # event_queue_size: the slow-reader bound, small so a test fills it quickly
BIG = "x" * 32_000  # one frame ≈ 32 KB: kernel and transport buffers fill after a few MB


class GranianThread:
    """The app under granian's embedded server (its own asyncio loop in a thread)."""

    def __init__(self, app: Any) -> None:
        from granian.constants import Interfaces
        from granian.server.embed import Server

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.server = Server(app, port=self.port, interface=Interfaces.ASGI, log_enabled=False)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="granian", daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def start(self) -> GranianThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.05)
        raise RuntimeError("granian did not start")

    def stop(self) -> None:
        if self.loop is not None:  # its stop flag is an asyncio event: set it on its own loop
            self.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(10)


class Feed:
    """One app under a real server, a signed-up user, and raw HTTP/1.1 feed connections to it."""

    def __init__(self, tmp: Path, server: str) -> None:
        from impl_rest import create_app

        self.settings = make_settings(sqlite_dsn(tmp, "push.sqlite3"), event_queue_size=LIMIT, sse_keepalive_s=60.0,
                                     max_streams_per_user=100)
        db = Database(self.settings)
        db.create_schema()
        db.dispose()
        self.app = create_app(self.settings)
        self.server_name = server
        self.server: UvicornThread | GranianThread = (
            UvicornThread(self.app) if server == "uvicorn" else GranianThread(self.app)).start()
        with httpx.Client(base_url=f"http://127.0.0.1:{self.server.port}", timeout=15) as client:
            r = client.post("/api/auth/register", json={"username": "pusher", "display_name": "P", "password": PASSWORD})
            assert r.status_code == 201, r.text
            self.user_id = r.json()["id"]
            token = client.post("/api/auth/token", json={"username": "pusher", "password": PASSWORD}).json()
        self.auth = {"Authorization": f"Bearer {token['access_token']}"}

    @property
    def bus(self) -> EventBus:
        return self.app.state.service.bus  # type: ignore[no-any-return]

    def streams(self) -> list[PushStream]:
        return [sub.queue for sub in self.bus._subscribers.get(self.user_id, ())]

    def connect(self, rcvbuf: int | None = None, last_event_id: int | None = None) -> http.client.HTTPResponse:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(15)
        sock.connect(("127.0.0.1", self.server.port))
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=15)
        conn.sock = sock
        headers = dict(self.auth)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        conn.request("GET", "/api/events", headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        assert next_frame(response) == {"comment": "connected"}
        return response

    def publish(self, count: int, data: dict[str, Any], pause_s: float = 0.0) -> list[int]:
        """Publish `count` events on the server's own loop (as the service does); with
        `pause_s`, one at a time with a pause between them, else all in one turn of the loop."""
        loop = self.streams()[0]._loop

        async def run() -> list[int]:
            ids = []
            for _ in range(count):
                ids.append(self.bus.publish(self.user_id, "deck.updated", data).id)
                if pause_s:
                    await asyncio.sleep(pause_s)
            return ids

        return asyncio.run_coroutine_threadsafe(run(), loop).result(60)

    def close(self) -> None:
        self.server.stop()


def next_frame(response: http.client.HTTPResponse) -> dict[str, str] | None:
    """The next SSE frame as {field: value}; None at the end of the stream."""
    frame: dict[str, str] = {}
    while True:
        line = response.readline()
        if not line:
            return None
        text = line.decode().rstrip("\n")
        if text == "":
            if frame:
                return frame
            continue
        name, _, value = text.partition(":")
        frame[name or "comment"] = value.removeprefix(" ")


@pytest.fixture(scope="module", params=["uvicorn", "granian"])
def feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    f = Feed(tmp_path_factory.mktemp("push"), request.param)
    yield f
    f.close()


def test_many_subscribers_get_every_event_in_order_by_direct_writes(feed: Feed) -> None:
    eventually(lambda: feed.bus.subscriber_count == 0, within=5, what="earlier streams released")
    readers = [feed.connect() for _ in range(40)]
    eventually(lambda: len(feed.streams()) == 40, within=5, what="40 subscribers")
    # one event per turn of the loop, as requests cause them (seen here: granian's send can be
    # pending after a burst of writes in one turn; uvicorn's only once its buffer is full)
    ids = feed.publish(25, {"n": 1}, pause_s=0.002)
    for reader in readers:
        frames = [next_frame(reader) for _ in range(25)]
        assert [int(f["id"]) for f in frames if f] == ids
        assert all(f and f["event"] == "deck.updated" and json.loads(f["data"])["id"] == int(f["id"]) for f in frames)
    streams = feed.streams()
    assert all(s.direct_writes + s.paused_writes == 25 and not s.dropped for s in streams)
    direct = sum(s.direct_writes for s in streams) / (25 * len(streams))
    assert direct == 1.0 if feed.server_name == "uvicorn" else direct > 0.9
    for reader in readers:
        reader.close()
    eventually(lambda: feed.bus.subscriber_count == 0, within=10, what="streams released on disconnect")


def test_a_slow_reader_is_dropped_with_bounded_memory_and_fast_readers_get_everything(feed: Feed) -> None:
    eventually(lambda: feed.bus.subscriber_count == 0, within=10, what="earlier streams released")
    dropped_before = feed.bus.dropped_subscribers
    slow = feed.connect(rcvbuf=4096)  # reads nothing more until the publishing is over
    eventually(lambda: len(feed.streams()) == 1, within=5, what="the slow subscriber")
    slow_stream = feed.streams()[0]
    fast = feed.connect()
    eventually(lambda: len(feed.streams()) == 2, within=5, what="the fast subscriber")
    fast_stream = next(s for s in feed.streams() if s is not slow_stream)
    count = 300  # ≈ 9.6 MB per subscriber: far beyond what the slow one's buffers take
    received: list[int] = []

    def read_fast() -> None:
        while len(received) < count and (frame := next_frame(fast)) is not None:
            if "id" in frame:
                received.append(int(frame["id"]))

    reader = threading.Thread(target=read_fast, daemon=True)
    reader.start()
    ids = feed.publish(count, {"blob": BIG}, pause_s=0.003)
    reader.join(30)

    assert slow_stream.dropped and not fast_stream.dropped
    assert feed.bus.dropped_subscribers == dropped_before + 1
    # memory: never more than LIMIT frames waited for the slow reader, none after the drop
    assert slow_stream.paused_writes >= 1 and slow_stream.peak_backlog <= LIMIT and slow_stream.empty()
    assert received == ids  # the fast reader got all of them, in order

    # the slow reader catches up: a prefix of the events, then `dropped`, then the end
    got: list[int] = []
    frame = next_frame(slow)
    while frame is not None and "id" in frame:
        got.append(int(frame["id"]))
        frame = next_frame(slow)
    assert frame == {"event": "dropped", "data": '{"reason":"slow_reader"}'}
    assert next_frame(slow) is None
    assert 0 < len(got) < count and got == ids[: len(got)]
    # its slot is free once the stream ended, even before the client closes the connection
    eventually(lambda: len(feed.streams()) == 1, within=5, what="the dropped stream unsubscribed")
    slow.close()

    # and resumes where it stopped, with Last-Event-ID
    resumed = feed.connect(last_event_id=got[-1])
    rest = [int(f["id"]) for f in (next_frame(resumed) for _ in range(count - len(got))) if f]
    assert rest == ids[len(got):]
    resumed.close()
    fast.close()


def test_the_harness_measures_one_event_to_every_subscriber_then_the_sustained_ones(feed: Feed) -> None:
    from loadtests.realtime import run_fanout

    eventually(lambda: feed.bus.subscriber_count == 0, within=10, what="earlier streams released")
    url = f"http://127.0.0.1:{feed.server.port}"
    token = feed.auth["Authorization"].removeprefix("Bearer ")
    out = asyncio.run(run_fanout(url, token, "sse", "rest", subscribers=20, events=3, rate=20.0,
                                 publish="/api/decks", connect_concurrency=20, settle_s=0.2))
    single = out["single_event"]
    assert out["connected"] == 20 and single["published"] == 1
    assert single["delivered"] == single["expected"] == 20  # one event reached every subscriber
    one = single["delivery_ms"]
    assert one["n"] == 20 and 0 <= one["p50"] <= one["p99"] <= one["max"] < 10_000
    # the sustained phase counts only its own events (the single one is not in it)
    assert out["published"] == 3 and out["delivered"] == out["expected"] == 20 * 3 and out["lost"] == 0
