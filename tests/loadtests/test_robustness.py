"""The robustness probes against tiny in-test servers: one that serves every connection
concurrently (every probe passes), one that accepts and never answers (every probe fails)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from loadtests import robustness as rb

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class ToyServer:
    """``mode="serve"``: each connection handled on its own (keep-alive, POST bodies read, a
    header over 64 KiB refused with 431, ``/stream`` held open and written to every 50 ms).
    ``mode="mute"``: connections accepted, read, never answered. ``idle_close_s``: close a
    keep-alive connection idle that long."""

    def __init__(self, mode: str = "serve", idle_close_s: float | None = None) -> None:
        self.mode, self.idle_close_s = mode, idle_close_s
        self.port = 0
        self.streams_ended = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            if self.mode == "mute":
                while await reader.read(65536):
                    pass
                return
            while True:
                try:
                    async with asyncio.timeout(self.idle_close_s):
                        head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    writer.write(b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    return
                text = head.decode("latin-1").lower()
                if "content-length:" in text:
                    await reader.readexactly(int(text.split("content-length:")[1].split("\r\n")[0]))
                if text.startswith("get /stream"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                    try:
                        while True:
                            writer.write(b": keep-alive\n\n")
                            await writer.drain()
                            await asyncio.sleep(0.05)
                    finally:
                        self.streams_ended += 1
                writer.write(OK)
                await writer.drain()
        writer.transport.abort()

    def __enter__(self) -> ToyServer:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def target(self) -> rb.Target:
        return rb.Target("127.0.0.1", self.port, probe_path="/live", post_path="/login", stream_path="/stream")


@pytest.fixture
def serving() -> Iterator[ToyServer]:
    with ToyServer("serve") as server:
        yield server


@pytest.fixture
def mute() -> Iterator[ToyServer]:
    with ToyServer("mute") as server:
        yield server


FAST = {"every_s": 0.3, "timeout_s": 0.5}


def test_slowloris_probes_are_served_by_a_concurrent_server(serving: ToyServer) -> None:
    r = asyncio.run(rb.slowloris(serving.target(), 5, 1.0, 0.3, recover_s=1.0, **FAST))
    assert r["opened"] == 5 and r["closed_by_server"] == 0
    assert r["probes"]["sent"] >= 3 and r["probes"]["served"] == r["probes"]["sent"]
    assert r["probes"]["p50_ms"] < 500 and r["recovery_ms"] is not None


def test_slowloris_against_a_server_that_never_answers_serves_nothing(mute: ToyServer) -> None:
    r = asyncio.run(rb.slowloris(mute.target(), 5, 1.0, 0.3, recover_s=0.6, **FAST))
    assert r["probes"]["sent"] >= 3 and r["probes"]["served"] == 0
    assert r["probes"]["p50_ms"] is None and r["recovery_ms"] is None


def test_oversized_header_reads_the_refusal_and_memory(serving: ToyServer) -> None:
    samples = iter(range(100, 10_000, 100))
    r = asyncio.run(rb.oversized_header(serving.target(), rb.MIB, timeout_s=5, rss=lambda: next(samples)))
    assert r["outcome"] == "answered" and r["status"] == 431 and r["served_after"]
    assert r["rss_before"] == 100 and r["rss_peak_growth"] >= 0 and r["elapsed_ms"] < 5000


def test_oversized_header_times_out_on_a_mute_server(mute: ToyServer) -> None:
    r = asyncio.run(rb.oversized_header(mute.target(), rb.MIB, timeout_s=0.5))
    assert r["outcome"] == "timeout" and r["status"] is None and not r["served_after"]
    assert r["rss_peak_growth"] is None  # no RSS reader given


def test_slow_body_holds_its_connections_while_probes_pass(serving: ToyServer) -> None:
    r = asyncio.run(rb.slow_body(serving.target(), 3, 1.0, 0.3, declared=1000, recover_s=1.0, **FAST))
    assert r["opened"] == 3 and r["closed_by_server"] == 0
    assert r["probes"]["served"] == r["probes"]["sent"] > 0


def test_slow_body_on_a_mute_server_serves_no_probe(mute: ToyServer) -> None:
    r = asyncio.run(rb.slow_body(mute.target(), 3, 1.0, 0.3, declared=1000, recover_s=0.5, **FAST))
    assert r["probes"]["served"] == 0 and r["recovery_ms"] is None


def test_idle_keepalive_counts_answers_and_the_servers_closes() -> None:
    with ToyServer("serve", idle_close_s=0.3) as server:
        r = asyncio.run(rb.idle_keepalive(server.target(), 20, 1.0, answer_timeout_s=2.0, **FAST))
    assert r["opened"] == 20 and r["answered"] == 20
    assert r["closed_by_server"] == 20 and 0.1 < r["first_close_s"] < 1.0
    assert r["probes"]["served"] == r["probes"]["sent"] > 0


def test_idle_keepalive_on_a_mute_server_answers_nothing(mute: ToyServer) -> None:
    r = asyncio.run(rb.idle_keepalive(mute.target(), 10, 0.5, answer_timeout_s=0.3, **FAST))
    assert r["answered"] == 0 and r["probes"]["served"] == 0


def test_abandoned_streams_are_reset_and_the_server_carries_on(serving: ToyServer) -> None:
    r = asyncio.run(rb.abandon_streams(serving.target(), 3, 2, start_timeout_s=1.0, bound_s=1.0, timeout_s=0.5))
    assert r is not None and [x["started"] for x in r["rounds"]] == [3, 3] and r["served_after"]
    deadline = 50
    while serving.streams_ended < 6 and deadline:  # the server's writes fail on the reset sockets
        deadline -= 1
        threading.Event().wait(0.05)
    assert serving.streams_ended == 6


def test_abandoned_streams_on_a_mute_server(mute: ToyServer) -> None:
    r = asyncio.run(rb.abandon_streams(mute.target(), 2, 1, start_timeout_s=0.3, bound_s=0.5, timeout_s=0.3))
    assert r is not None and r["rounds"][0]["started"] == 0 and not r["served_after"]


def test_no_stream_route_means_no_stream_probe(serving: ToyServer) -> None:
    target = rb.Target("127.0.0.1", serving.port, stream_path=None)
    assert asyncio.run(rb.abandon_streams(target, 2, 1)) is None


def test_read_response_handles_chunked_bodies() -> None:
    async def go() -> int:
        reader = asyncio.StreamReader()
        reader.feed_data(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        reader.feed_eof()
        return await rb.read_response(reader)

    assert asyncio.run(go()) == 404
