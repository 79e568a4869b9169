"""WebSocket connection rate, closed loop: `clients` asyncio clients each open a session to the
event feed, see it established, close it cleanly, and start the next one, for the whole window.

A session is TCP connect → HTTP upgrade (101 with the right `Sec-WebSocket-Accept`) → proof that
the server accepted the user → close handshake → the server's EOF. The proof differs by API:

* GraphQL (graphql-transport-ws): `connection_init` with the token, then `connection_ack`.
* REST/Flask plain feed (`/api/events/ws?token=`): the contract sends no frame on success (JSON
  EventOut messages only; a bad token gets close 1008). So the client sends close 1000 at once
  and the session counts only when the server's close *echoes* 1000: a rejected token arrives as
  the server's own 1008 close instead, a failure with its reason. Both apps authenticate right
  after the accept, before reading; a server slower to authenticate than one round trip could
  see the client's close first (then a rejected session would echo 1000): the bad-token test
  in tests/loadtests/test_wsconnect.py checks that this does not happen on these apps.

The client is raw asyncio streams (on uvloop when installed), not the `websockets` library: the
handshake in pure Python would cost the client more CPU per session than the servers spend, and
this driver's whole job is a rate. Its CPU over the measured window is reported; at or above
`stats.CLIENT_CPU_SATURATED` % of its one core the sample says `client_bound`.

    python -m loadtests.wsconnect --url http://127.0.0.1:8000 --token T --clients 32 --duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from loadtests.realtime import raise_open_files_limit
from loadtests.stats import CLIENT_CPU_SATURATED, latency_percentiles

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
CLOSE_NORMAL = 1000
EOF_WAIT_S = 1.0  # the server closes TCP first (RFC 6455 §7.1.1): TIME_WAIT stays on its side


class SessionFailed(Exception):
    """A session that did not get established; the message is the reason counted."""


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
    return head + mask + masked


def _close_frame(code: int = CLOSE_NORMAL) -> bytes:
    return _frame(OP_CLOSE, code.to_bytes(2, "big"))


async def _read_frame(reader: asyncio.StreamReader, pongs: bool = False) -> tuple[int, bytes]:
    """The next data or close frame (opcode, payload; a pong too with `pongs`); pings are
    skipped (the session is too short for the server's keep-alive to matter)."""
    while True:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        mask = await reader.readexactly(4) if b1 & 0x80 else b""
        payload = await reader.readexactly(n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        opcode = b0 & 0x0F
        if opcode < OP_PING or (pongs and opcode == OP_PONG):
            return opcode, payload


def _close_reason(payload: bytes) -> str:
    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
    reason = payload[2:].decode(errors="replace")[:60]
    return f"close-{code}" + (f" {reason}" if reason else "")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    token: str
    api: str  # "graphql": graphql-transport-ws on /graphql; otherwise the plain feed

    @classmethod
    def of(cls, url: str, token: str, api: str) -> Target:
        parts = urlsplit(url)
        path = "/graphql" if api == "graphql" else f"/api/events/ws?token={token}"
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, path, token, api)

    def upgrade(self) -> tuple[bytes, bytes]:
        """The upgrade request and the `Sec-WebSocket-Accept` the server must answer with."""
        key = base64.b64encode(os.urandom(16))
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
        if self.api == "graphql":
            lines.append("Sec-WebSocket-Protocol: graphql-transport-ws")
        return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept


async def session(target: Target, timeout_s: float) -> float:
    """One session; returns ms from the TCP connect to the proof of acceptance. Raises
    SessionFailed (or an OS/timeout error) when it was not established."""
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), timeout_s)
    try:
        request, accept = target.upgrade()
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        status = head.split(b" ", 2)[1]
        if status != b"101":
            raise SessionFailed(f"http-{status.decode(errors='replace')}")
        if accept not in head:
            raise SessionFailed("bad-accept")
        if target.api == "graphql":
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {target.token}"}}
            writer.write(_frame(OP_TEXT, json.dumps(init).encode()))
            opcode, payload = await asyncio.wait_for(_read_frame(reader), timeout_s)
            if opcode == OP_CLOSE:
                raise SessionFailed(_close_reason(payload))
            kind = json.loads(payload).get("type")
            if kind != "connection_ack":
                raise SessionFailed(f"unexpected-{kind}")
            established_ms = (time.perf_counter() - started) * 1000
            writer.write(_close_frame())
            await asyncio.wait_for(_until_close(reader), timeout_s)
        else:
            # one round trip first (ping → pong) so the handler, which authenticates right after
            # the accept, has run before the client's close can overtake its verdict
            writer.write(_frame(OP_PING, b"auth"))
            opcode, payload = await asyncio.wait_for(_read_frame(reader, pongs=True), timeout_s)
            if opcode == OP_CLOSE:
                raise SessionFailed(_close_reason(payload))
            writer.write(_close_frame())
            payload = await asyncio.wait_for(_until_close(reader), timeout_s)
            if payload[:2] != CLOSE_NORMAL.to_bytes(2, "big"):
                raise SessionFailed(_close_reason(payload))  # the server's own close: refused
            established_ms = (time.perf_counter() - started) * 1000
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(reader.read(), EOF_WAIT_S)
        return established_ms
    finally:
        writer.close()


async def _until_close(reader: asyncio.StreamReader) -> bytes:
    """The payload of the server's close frame (messages before it are discarded)."""
    while True:
        opcode, payload = await _read_frame(reader)
        if opcode == OP_CLOSE:
            return payload


@dataclass
class Tally:
    """What one window saw: sessions completed in it, their connect latencies, failures by reason."""

    sessions: int = 0
    connect_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)


async def run_connects(url: str, token: str, api: str, clients: int, warmup_s: float, duration_s: float,
                       timeout_s: float = 10.0) -> dict[str, Any]:
    """`clients` closed loops for warmup + duration seconds; what ends inside the window counts."""
    raise_open_files_limit(clients * 2 + 100)
    target = Target.of(url, token, api)
    tally = Tally()
    begin = time.perf_counter()
    window_start = begin + warmup_s
    window_end = window_start + duration_s
    cpu_start: list[float] = []

    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    async def loop() -> None:
        while time.perf_counter() < window_end:
            ms = 0.0
            try:
                ms = await session(target, timeout_s)
                ok, reason = True, ""
            except SessionFailed as exc:
                ok, reason = False, str(exc)
            except TimeoutError:
                ok, reason = False, "timeout"
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
                ok, reason = False, type(exc).__name__
            # completions inside the window, whenever they started: the steady-state rate
            if not window_start <= time.perf_counter() <= window_end:
                continue
            if ok:
                tally.sessions += 1
                tally.connect_ms.append(ms)
            else:
                tally.failures[reason] = tally.failures.get(reason, 0) + 1

    async def mark_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        cpu_start.append(cpu())

    marker = asyncio.ensure_future(mark_window())
    await asyncio.gather(*(loop() for _ in range(clients)))
    await marker
    window_cpu_s = cpu() - cpu_start[0]
    elapsed = time.perf_counter() - window_start  # the window, plus the last sessions' tails
    cpu_pct = 100.0 * window_cpu_s / elapsed if elapsed > 0 else 0.0
    return {
        "clients": clients, "api": api, "warmup_s": warmup_s, "duration_s": duration_s,
        "sessions": tally.sessions, "sessions_per_s": tally.sessions / duration_s if duration_s else 0.0,
        "connect_ms": latency_percentiles(tally.connect_ms),
        "connect_mean_ms": sum(tally.connect_ms) / len(tally.connect_ms) if tally.connect_ms else None,
        "failures": sum(tally.failures.values()), "failure_reasons": tally.failures,
        "client_cpu_pct_window": cpu_pct, "client_bound": cpu_pct >= CLIENT_CPU_SATURATED,
        # the headroom in the same run: at this CPU per session, what one saturated client core
        # would reach (a rate claimed above it cannot be tested with this client)
        "client_ceiling_per_s": (tally.sessions / duration_s) * 100.0 / cpu_pct if cpu_pct > 0 and duration_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.wsconnect")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--api", default="rest", choices=["rest", "graphql"])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="per session step, seconds")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(run_connects(args.url, args.token, args.api, args.clients, args.warmup,
                                      args.duration, args.timeout))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
