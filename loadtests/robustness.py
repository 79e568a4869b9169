"""Server-robustness probes (issue 19): hostile or careless clients, over raw loopback sockets.

Each probe is one coroutine against a `Target` (host, port, paths), bounded in connections and
time by its arguments and by a hard timeout of its own, and returns plain JSON data (the
`robustness` section of the results document; `loadtests/robustness_matrix.py` runs them per
server, `loadtests/robustness_render.py` turns them into verdicts). No load generator: the
point is what a server does with a few hundred badly behaved connections, not throughput.

* `slowloris` — N connections send a partial request, then one header byte every few seconds.
* `oversized_header` — one request with a huge `X-Big` header: status, time, RSS growth.
* `slow_body` — POSTs whose declared body trickles in a byte at a time.
* `idle_keepalive` — K keep-alive connections, one request each, then left idle.
* `abandon_streams` — held responses (the SSE feed) whose clients reset the connection.

Throughout, a *probe* is a normal `GET` of the health path on a fresh connection, sent every
`every_s` while the attack runs; it counts as served on a 200 within its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    probe_path: str = "/api/health/live"
    # A route that reads its request body (the JSON login), so a trickled body holds the handler
    post_path: str = "/api/auth/token"
    # A held response to abandon (the SSE feed) and the headers it needs; None: not served
    stream_path: str | None = None
    stream_headers: tuple[tuple[str, str], ...] = ()

    def request(self, path: str, method: str = "GET", headers: tuple[tuple[str, str], ...] = (),
                close: bool = True) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 *(f"{k}: {v}" for k, v in headers)]
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- HTTP/1.1 over asyncio streams -----------------------------------------------------------
async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (head and a Content-Length or chunked body); return its status.
    Raises on EOF or a malformed head, so the caller can tell "closed" from "answered"."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    return int(parts[1])


async def open_many(target: Target, count: int, timeout_s: float) -> list[Conn]:
    """Up to `count` connections, opened together; those not made within `timeout_s` are dropped
    (a full backlog is itself a result: `opened` < `count`)."""
    async def one() -> Conn | None:
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.open_connection(target.host, target.port)
        except (OSError, TimeoutError):
            return None

    made = await asyncio.gather(*(one() for _ in range(count)))
    return [c for c in made if c is not None]


def reset(conns: list[Conn]) -> None:
    """Drop connections with an RST (SO_LINGER 0), as a client that vanishes does: no FIN for
    the server to read politely, its next write fails."""
    for _, writer in conns:
        with contextlib.suppress(OSError):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def watch_close(reader: asyncio.StreamReader, since: float) -> tuple[float, bytes]:
    """Seconds from `since` until the server closed this connection, and the first bytes it sent
    (a 408/400 before closing, or nothing). Runs until EOF or cancellation."""
    first = b""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while chunk := await reader.read(65536):
            first = first or chunk[:64]
    return time.monotonic() - since, first


def _status_of(first: bytes) -> int | None:
    parts = first.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else None


# --- probes: normal requests beside an attack -------------------------------------------------
async def fetch(target: Target, timeout_s: float, raw: bytes | None = None) -> tuple[int | None, float]:
    """One request on a fresh connection: (status or None, seconds)."""
    start = time.monotonic()
    status: int | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            try:
                writer.write(raw or target.request(target.probe_path))
                await writer.drain()
                status = await read_response(reader)
            finally:
                writer.transport.abort()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass
    return status, time.monotonic() - start


async def probe_while(target: Target, stop: asyncio.Event, every_s: float, timeout_s: float) -> dict[str, Any]:
    """A probe every `every_s` (each on its own task, so one stuck probe never delays the next)
    until `stop` is set; then their summary."""
    tasks = []
    while not stop.is_set():
        tasks.append(asyncio.create_task(fetch(target, timeout_s)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    return summarize_probes(await asyncio.gather(*tasks))


def summarize_probes(results: list[tuple[int | None, float]]) -> dict[str, Any]:
    served = [s for status, s in results if status == 200]
    return {"sent": len(results), "served": len(served),
            "p50_ms": 1000 * statistics.median(served) if served else None,
            "max_ms": 1000 * max(served) if served else None,
            "statuses": sorted({str(status) for status, _ in results if status not in (200, None)})}


async def recovery(target: Target, bound_s: float, timeout_s: float) -> float | None:
    """Milliseconds until a probe is served again (probing every 0.2 s), None if not in `bound_s`."""
    start = time.monotonic()
    while (left := bound_s - (time.monotonic() - start)) > 0:
        status, _ = await fetch(target, min(timeout_s, max(left, 0.05)))
        if status == 200:
            return 1000 * (time.monotonic() - start)
        await asyncio.sleep(min(0.2, max(bound_s - (time.monotonic() - start), 0)))
    return None


async def _attack(target: Target, body: Callable[[asyncio.Event], Awaitable[dict[str, Any]]],
                  every_s: float, timeout_s: float) -> dict[str, Any]:
    """Run `body` (which sets the event when it is done) with probes beside it."""
    stop = asyncio.Event()
    probes = asyncio.create_task(probe_while(target, stop, every_s, timeout_s))
    try:
        result = await body(stop)
    finally:
        stop.set()
    result["probes"] = await probes
    return result


def _closes(watchers: list[asyncio.Task[tuple[float, bytes]]]) -> dict[str, Any]:
    """Which held connections the server closed (and after how long, what it said first)."""
    done = [w.result() for w in watchers if w.done() and not w.cancelled()]
    for w in watchers:
        w.cancel()
    statuses = sorted({str(s) for s in (_status_of(first) for _, first in done) if s is not None})
    return {"closed_by_server": len(done),
            "first_close_s": min((t for t, _ in done), default=None),
            "median_close_s": statistics.median([t for t, _ in done]) if done else None,
            "close_statuses": statuses}


# --- the attacks -------------------------------------------------------------------------------
async def slowloris(target: Target, connections: int, duration_s: float, interval_s: float = 2.0, *,
                    every_s: float = 1.0, timeout_s: float = 2.0, recover_s: float = 5.0) -> dict[str, Any]:
    """`connections` half-open requests, one more header byte each `interval_s`, for `duration_s`."""
    async def body(stop: asyncio.Event) -> dict[str, Any]:
        conns = await open_many(target, connections, timeout_s)
        since = time.monotonic()
        watchers = [asyncio.create_task(watch_close(r, since)) for r, _ in conns]
        partial = f"GET {target.probe_path} HTTP/1.1\r\nHost: {target.host}\r\nX-Slow: ".encode()
        for _, w in conns:
            w.write(partial)
        while time.monotonic() - since < duration_s:
            await asyncio.sleep(min(interval_s, max(duration_s - (time.monotonic() - since), 0)))
            for (_, w), watcher in zip(conns, watchers, strict=True):
                if not watcher.done() and not w.is_closing():
                    w.write(b"a")  # one byte: the header line never ends
        stop.set()
        closes = _closes(watchers)
        reset(conns)
        return {"connections": connections, "opened": len(conns), "duration_s": duration_s,
                "interval_s": interval_s, **closes}

    result = await _attack(target, body, every_s, timeout_s)
    result["recovery_ms"] = await recovery(target, recover_s, timeout_s)
    return result


async def oversized_header(target: Target, size: int, *, timeout_s: float = 20.0,
                           rss: Callable[[], int | None] = lambda: None,
                           sample_s: float = 0.1) -> dict[str, Any]:
    """One GET with an `X-Big` header of `size` bytes: what came back, how fast, and how much the
    server's memory (RSS of its processes, sampled every `sample_s`) grew meanwhile."""
    before = rss()
    peak = before
    start = time.monotonic()
    outcome: str = "timeout"
    status: int | None = None

    async def sample() -> None:
        nonlocal peak
        while True:
            now = rss()
            if now is not None and (peak is None or now > peak):
                peak = now
            await asyncio.sleep(sample_s)

    sampler = asyncio.create_task(sample())
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            answer = asyncio.create_task(read_response(reader))  # the server may answer mid-send
            try:
                writer.write(f"GET {target.probe_path} HTTP/1.1\r\nHost: {target.host}\r\nX-Big: ".encode())
                chunk = b"a" * MIB
                for offset in range(0, size, MIB):
                    if answer.done():
                        break
                    writer.write(chunk[: min(MIB, size - offset)])
                    await writer.drain()
                writer.write(b"\r\nConnection: close\r\n\r\n")
                await writer.drain()
            except OSError:
                pass  # closed or reset while sending: the answer (if any) decides
            try:
                status = await answer
                outcome = "answered"
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                outcome = "closed"
            finally:
                writer.transport.abort()
    except TimeoutError:
        pass
    except OSError:
        outcome = "refused"
    elapsed = time.monotonic() - start
    sampler.cancel()
    after = rss()
    served, _ = await fetch(target, 5.0)
    return {"size_bytes": size, "outcome": outcome, "status": status, "elapsed_ms": 1000 * elapsed,
            "rss_before": before, "rss_peak_growth": (peak - before) if peak is not None and before is not None else None,
            "rss_after_growth": (after - before) if after is not None and before is not None else None,
            "served_after": served == 200}


async def slow_body(target: Target, connections: int, duration_s: float, interval_s: float = 1.0, *,
                    declared: int = 1000, every_s: float = 1.0, timeout_s: float = 2.0,
                    recover_s: float = 5.0) -> dict[str, Any]:
    """`connections` POSTs declaring `declared` body bytes, sending one byte each `interval_s`."""
    async def body(stop: asyncio.Event) -> dict[str, Any]:
        conns = await open_many(target, connections, timeout_s)
        since = time.monotonic()
        watchers = [asyncio.create_task(watch_close(r, since)) for r, _ in conns]
        head = target.request(target.post_path, "POST", (("Content-Type", "application/json"),
                                                         ("Content-Length", str(declared))), close=False)
        for _, w in conns:
            w.write(head + b"{")
        while time.monotonic() - since < duration_s:
            await asyncio.sleep(min(interval_s, max(duration_s - (time.monotonic() - since), 0)))
            for (_, w), watcher in zip(conns, watchers, strict=True):
                if not watcher.done() and not w.is_closing():
                    w.write(b" ")  # JSON whitespace: the body stays valid, just never complete
        stop.set()
        closes = _closes(watchers)
        reset(conns)
        return {"connections": connections, "opened": len(conns), "duration_s": duration_s,
                "interval_s": interval_s, "declared_bytes": declared, **closes}

    result = await _attack(target, body, every_s, timeout_s)
    result["recovery_ms"] = await recovery(target, recover_s, timeout_s)
    return result


async def idle_keepalive(target: Target, connections: int, hold_s: float, *, every_s: float = 1.0,
                         timeout_s: float = 2.0, answer_timeout_s: float = 10.0) -> dict[str, Any]:
    """`connections` keep-alive connections, one GET each, then idle for `hold_s` with probes."""
    async def body(stop: asyncio.Event) -> dict[str, Any]:
        conns = await open_many(target, connections, timeout_s)
        raw = target.request(target.probe_path, close=False)

        async def first(conn: Conn) -> int | None:
            try:
                conn[1].write(raw)
                async with asyncio.timeout(answer_timeout_s):
                    return await read_response(conn[0])
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                return None

        answers = await asyncio.gather(*(first(c) for c in conns))
        since = time.monotonic()
        watchers = [asyncio.create_task(watch_close(r, since)) for r, _ in conns]
        await asyncio.sleep(hold_s)
        stop.set()
        closes = _closes(watchers)
        reset(conns)
        return {"connections": connections, "opened": len(conns), "hold_s": hold_s,
                "answered": sum(1 for a in answers if a == 200), **closes}

    return await _attack(target, body, every_s, timeout_s)


async def abandon_streams(target: Target, streams: int, rounds: int, *, start_timeout_s: float = 3.0,
                          bound_s: float = 5.0, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """`rounds` times: open `streams` held responses, wait for their heads, reset them all, then
    time a probe. A server that never frees the abandoned handlers runs out of them round by
    round (fewer streams start, the probe is late or not served). None: no stream path."""
    if target.stream_path is None:
        return None
    raw = target.request(target.stream_path, headers=target.stream_headers, close=False)
    done = []
    for _ in range(rounds):
        conns = await open_many(target, streams, timeout_s)

        async def head(conn: Conn) -> bool:
            conn[1].write(raw)
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                async with asyncio.timeout(start_timeout_s):
                    return (await conn[0].readuntil(b"\r\n")).split(b" ")[1] == b"200"
            return False

        started = await asyncio.gather(*(head(c) for c in conns))
        reset(conns)
        done.append({"started": sum(started), "probe_ms": await recovery(target, bound_s, timeout_s)})
    return {"streams": streams, "rounds": done, "bound_s": bound_s,
            "served_after": done[-1]["probe_ms"] is not None}
