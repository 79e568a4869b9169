"""Drivers for what wrk cannot measure: streamed chat answers and held event streams.

Clients are raw asyncio streams on uvloop (the cheapest Python client: FIELD-NOTES), run in a
subprocess pinned to the client CPUs whose own CPU time is reported beside the results.
Latency of event delivery is receipt time − the server's `published_at` (same machine, same
wall clock); chat time-to-first-token is counted from the moment the request is sent.

    python -m loadtests.realtime chat  --url http://127.0.0.1:8000 --token T --clients 100
    python -m loadtests.realtime fanout --url ... --token T --subscribers 1000 --events 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from loadtests.stats import latency_percentiles
from loadtests.wire import http_request

GQL_CHAT = "subscription Chat($m: String!) { chat(input: {message: $m}) { type content } }"
GQL_EVENTS = "subscription Events { events { id type published_at } }"
GQL_CREATE_DECK = "mutation Deck($t: String!) { create_deck(input: {title: $t}) { id } }"


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft limit toward `wanted` within the hard limit; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80, limit=1 << 20)
    return reader, writer, f"{parts.hostname}:{parts.port}"


async def _read_head(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1])


# --- chat ------------------------------------------------------------------------------------
@dataclass
class ChatOutcome:
    ttft_ms: float | None = None
    total_ms: float | None = None
    tokens: int = 0
    error: str | None = None


async def one_chat(url: str, token: str, api: str, message: str, timeout_s: float) -> ChatOutcome:
    out = ChatOutcome()
    started = time.perf_counter()
    writer = None
    try:
        if api == "graphql":
            return await _gql_chat(url, token, message, timeout_s)
        reader, writer, host = await _open(url)
        body = json.dumps({"message": message}).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "text/event-stream"}
        writer.write(http_request("POST", host, "/api/chat", headers, body))
        status = await asyncio.wait_for(_read_head(reader), timeout_s)
        if status != 200:
            out.error = f"http-{status}"
            return out
        buffer = b""
        deadline = started + timeout_s
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.001, deadline - time.perf_counter()))
            if not chunk:
                out.error = out.error or "eof"
                break
            buffer += chunk
            tokens = buffer.count(b"event: token")
            if tokens and out.ttft_ms is None:
                out.ttft_ms = (time.perf_counter() - started) * 1000
            if b"event: error" in buffer:
                out.error = "error-event"
                break
            if b"event: done" in buffer:
                out.tokens = tokens
                out.total_ms = (time.perf_counter() - started) * 1000
                break
            if len(buffer) > 1 << 16:  # keep the tail only: markers never span 64 KiB
                out.tokens += buffer[:-64].count(b"event: token")
                buffer = buffer[-64:]
    except TimeoutError:
        out.error = "timeout"
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        out.error = type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
    return out


async def _gql_chat(url: str, token: str, message: str, timeout_s: float) -> ChatOutcome:
    import websockets

    out = ChatOutcome()
    started = time.perf_counter()
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=timeout_s) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        await asyncio.wait_for(ws.recv(), timeout_s)
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": GQL_CHAT, "variables": {"m": message}}}))
        deadline = started + timeout_s
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.001, deadline - time.perf_counter())))
            if msg["type"] == "next":
                kind = msg["payload"].get("data", {}).get("chat", {}).get("type")
                if msg["payload"].get("errors"):
                    out.error = "graphql-error"
                    return out
                if kind == "token":
                    out.tokens += 1
                    if out.ttft_ms is None:
                        out.ttft_ms = (time.perf_counter() - started) * 1000
                elif kind == "error":
                    out.error = "error-event"
                    return out
            elif msg["type"] == "complete":
                out.total_ms = (time.perf_counter() - started) * 1000
                return out
            elif msg["type"] == "error":
                out.error = "graphql-error"
                return out


async def run_chat(url: str, token: str, api: str, clients: int, timeout_s: float) -> dict[str, Any]:
    raise_open_files_limit(clients * 2 + 100)
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one_chat(url, token, api, f"question {i}", timeout_s) for i in range(clients)))
    elapsed = time.perf_counter() - started
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.error:
            errors[o.error] = errors.get(o.error, 0) + 1
    done = [o for o in outcomes if o.error is None and o.total_ms is not None]
    return {
        "clients": clients,
        "completed": len(done),
        "errors": errors,
        "duration_s": elapsed,
        "ttft_ms": latency_percentiles([o.ttft_ms for o in done if o.ttft_ms is not None]),
        "total_ms": latency_percentiles([o.total_ms for o in done if o.total_ms is not None]),
        "tokens": sum(o.tokens for o in done),
    }


# --- event fan-out ---------------------------------------------------------------------------
@dataclass
class Subscriber:
    connect_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    error: str | None = None


def _published_at(frame: bytes) -> float | None:
    marker = frame.find(b'"published_at":"')
    if marker < 0:
        marker = frame.find(b'"publishedAt":"')
        if marker < 0:
            return None
        start = marker + len(b'"publishedAt":"')
    else:
        start = marker + len(b'"published_at":"')
    end = frame.find(b'"', start)
    return datetime.fromisoformat(frame[start:end].decode().replace("Z", "+00:00")).timestamp()


async def _sse_subscriber(url: str, token: str, sub: Subscriber, ready: asyncio.Event, stop: asyncio.Event) -> None:
    started = time.perf_counter()
    writer = None
    try:
        reader, writer, host = await _open(url)
        writer.write(http_request("GET", host, "/api/events", {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}))
        status = await _read_head(reader)
        sub.connect_ms = (time.perf_counter() - started) * 1000
        if status != 200:
            sub.error = f"http-{status}"
            return
        ready.set()
        buffer = b""
        while not stop.is_set():
            chunk = await reader.read(65536)
            if not chunk:
                sub.error = sub.error or "eof"
                return
            now = time.time()
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                if b"data:" in frame:
                    published = _published_at(frame)
                    if published is not None:
                        sub.latencies_ms.append((now - published) * 1000)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        sub.error = type(exc).__name__
    except asyncio.CancelledError:
        pass
    finally:
        if writer is not None:
            writer.close()


async def _ws_subscriber(url: str, token: str, api: str, sub: Subscriber, ready: asyncio.Event, stop: asyncio.Event) -> None:
    import websockets

    started = time.perf_counter()
    try:
        if api == "graphql":
            ws_url, protocols = url.replace("http", "ws", 1) + "/graphql", ["graphql-transport-ws"]
        else:
            ws_url, protocols = url.replace("http", "ws", 1) + f"/api/events/ws?token={token}", None
        async with websockets.connect(ws_url, subprotocols=protocols, open_timeout=60, ping_interval=None,  # type: ignore[arg-type]
                                      max_queue=None) as ws:
            if api == "graphql":
                await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
                await ws.recv()
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": GQL_EVENTS}}))
            sub.connect_ms = (time.perf_counter() - started) * 1000
            ready.set()
            async for message in ws:
                now = time.time()
                raw = message.encode() if isinstance(message, str) else message
                published = _published_at(raw)
                if published is not None:
                    sub.latencies_ms.append((now - published) * 1000)
                if stop.is_set():
                    return
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        sub.error = type(exc).__name__


async def run_fanout(url: str, token: str, transport: str, api: str, subscribers: int, events: int,
                     rate: float, publish: str, connect_concurrency: int, settle_s: float,
                     connect_timeout_s: float = 120.0) -> dict[str, Any]:
    """Hold `subscribers` streams, then (1) publish ONE event and measure its publish→receipt
    latency at every subscriber (`single_event`: how long one event takes to reach the last of
    them, with nothing queued behind it), then (2) publish `events` at `rate`/s through
    `publish` (a POST path that causes one event) and measure every delivery (`delivery_ms`)."""
    limit = raise_open_files_limit(subscribers + 200)
    if subscribers + 100 > limit:
        subscribers = max(0, limit - 100)
    stop = asyncio.Event()
    subs = [Subscriber() for _ in range(subscribers)]
    gate = asyncio.Semaphore(connect_concurrency)
    connected = settled = 0
    all_settled = asyncio.Event()  # every subscriber has connected or given up
    if not subs:
        all_settled.set()

    async def hold(sub: Subscriber) -> None:
        nonlocal connected, settled
        ready = asyncio.Event()
        async with gate:
            coro = (_sse_subscriber(url, token, sub, ready, stop) if transport == "sse"
                    else _ws_subscriber(url, token, api, sub, ready, stop))
            task = asyncio.ensure_future(coro)
            waiter = asyncio.ensure_future(ready.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if ready.is_set():
                connected += 1
            settled += 1
            if settled == len(subs):
                all_settled.set()
        await task

    t0 = time.perf_counter()
    holders = [asyncio.ensure_future(hold(s)) for s in subs]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_settled.wait(), connect_timeout_s)
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(settle_s)
    single = await _single_event(url, token, api, publish, subs)
    publisher = await _publisher(url, token, api, publish, events, rate)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        received = sum(len(s.latencies_ms) for s in subs if s.error is None)
        if received >= connected * publisher["published"]:
            break
        await asyncio.sleep(0.05)
    stop.set()
    for h in holders:
        h.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    latencies = [lat for s in subs for lat in s.latencies_ms]
    expected = connected * publisher["published"]
    errors: dict[str, int] = {}
    for s in subs:
        if s.error and s.error not in ("eof",):
            errors[s.error] = errors.get(s.error, 0) + 1
    return {
        "subscribers": subscribers,
        "connected": connected,
        "connect_s": connect_s,
        "connects_per_s": connected / connect_s if connect_s > 0 else 0.0,
        "connect_ms": latency_percentiles([s.connect_ms for s in subs if s.connect_ms is not None]),
        "published": publisher["published"],
        "publish_errors": publisher["errors"],
        "delivered": len(latencies),
        "expected": expected,
        "lost": max(0, expected - len(latencies)),
        "delivery_ms": latency_percentiles(latencies),
        "single_event": single,
        "errors": errors,
        "open_files_limit": limit,
    }


async def _single_event(url: str, token: str, api: str, publish: str, subs: list[Subscriber],
                        wait_s: float = 30.0) -> dict[str, Any]:
    """One event to every held subscriber: its delivery latency across them (p50/p99/max: max is
    publish → the LAST subscriber's receipt). Each subscriber's latencies restart empty after it,
    so the sustained phase counts only its own events."""
    live = [s for s in subs if s.error is None and s.connect_ms is not None]
    published = await _publisher(url, token, api, publish, 1, 1.0)
    deadline = time.perf_counter() + wait_s
    while published["published"] and time.perf_counter() < deadline:
        if all(s.latencies_ms or s.error is not None for s in live):
            break
        await asyncio.sleep(0.01)
    firsts = [s.latencies_ms[0] for s in live if s.latencies_ms]
    for s in subs:
        s.latencies_ms = []
    return {"published": published["published"], "expected": len(live) if published["published"] else 0,
            "delivered": len(firsts), "delivery_ms": latency_percentiles(firsts)}


async def _publisher(url: str, token: str, api: str, publish: str, events: int, rate: float) -> dict[str, Any]:
    """Cause events through the public API at a fixed rate (one keep-alive connection). A stack
    whose workers are all held by streams cannot answer: each failed publish is counted, and
    three in a row end the publishing."""
    import httpx

    published = errors = failed_in_row = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        start = time.perf_counter()
        for i in range(events):
            planned = start + i / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if api == "graphql":
                    r = await client.post("/graphql", json={"query": GQL_CREATE_DECK, "variables": {"t": f"fanout {i}"}})
                    ok = r.status_code == 200 and not r.json().get("errors")
                else:
                    r = await client.post(publish, json={"title": f"fanout {i}"})
                    ok = r.status_code in (200, 201)
            except httpx.HTTPError:
                ok = False
            published += ok
            errors += not ok
            failed_in_row = 0 if ok else failed_in_row + 1
            if failed_in_row >= 3:
                errors += events - i - 1
                break
    return {"published": published, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.realtime")
    parser.add_argument("mode", choices=["chat", "fanout"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--api", default="rest", choices=["rest", "graphql"])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--transport", default="sse", choices=["sse", "ws"])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--publish", default="/api/decks")
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--connect-timeout", type=float, default=120.0,
                        help="Stop waiting for subscribers to connect after this many seconds.")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    cpu0 = os.times()
    if args.mode == "chat":
        result = asyncio.run(run_chat(args.url, args.token, args.api, args.clients, args.timeout))
    else:
        result = asyncio.run(run_fanout(args.url, args.token, args.transport, args.api, args.subscribers,
                                        args.events, args.rate, args.publish, args.connect_concurrency, args.settle,
                                        args.connect_timeout))
    cpu1 = os.times()
    result["client_cpu_s"] = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    text = json.dumps(result)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
