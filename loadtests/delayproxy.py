"""A latency-injecting TCP proxy between the apps and PostgreSQL (no `netem` on these kernels).

No well-kept userspace delay proxy installs from the registries here (toxiproxy is a Go binary
in neither PyPI nor Debian; PyPI's `asynctcpproxy` (2019) and `sloww` 0.1.0 are unmaintained or
new, and neither forwards to a Unix socket), so this one is ours, kept small:

* asyncio protocols, whole chunks: every `data_received` chunk is queued with its due time and
  written in order when due. One timer per direction (for the queue's head), so chunks can never
  overtake each other, even with jitter (a chunk is never due before the one ahead of it).
* The delay per direction is fixed when the proxy starts. ``rtt_ms`` is the delay added to each
  round trip; ``split`` says where it goes: ``"even"`` (default, like a symmetric network) half
  each way, ``"reply"`` all of it on the server → client direction (one timer per round trip).
  ``one_way_ms`` instead delays each direction by that much (a round trip then gains twice it).
* Jitter: an extra uniform [0, jitter_ms] per chunk (never negative: a round trip never gains
  less than the setting).
* Back-pressure: reading from a side pauses while the other side's transport buffer is over
  its high-water mark or while more than ``MAX_QUEUED`` bytes wait in the delay queue.
* Timers that are never early and late by ~0.1 ms: the standard asyncio loop over an epoll
  selector that waits whole milliseconds in epoll and sleeps the sub-millisecond rest
  (`_PreciseEpoll`; epoll alone rounds every wait up to the next millisecond, uvloop's clock and
  timers have millisecond granularity and can fire early). uvloop is therefore not used.

Run it as its own process pinned to the client CPUs (`DelayProxy.start`), never on the
server's core, so its CPU is not charged to the server; its CPU time is read from /proc.

    python -m loadtests.delayproxy --upstream-unix /tmp/pg/.s.PGSQL.5432 --rtt-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

MAX_QUEUED = 4 * 1024 * 1024  # bytes waiting in one direction's delay queue before reads pause
# What passed through, for `DelayProxy.stats()` (SIGUSR1 prints it): chunks to the server are
# the client's writes, one per round trip for a request/response protocol.
COUNTERS = {"connections": 0, "chunks_to_server": 0, "chunks_to_client": 0, "bytes_to_server": 0,
            "bytes_to_client": 0}
SPLITS = ("even", "reply")


@dataclass(frozen=True)
class Delays:
    """Seconds added to each chunk per direction, plus jitter (seconds, uniform, ≥ 0)."""

    to_server: float
    to_client: float
    jitter: float = 0.0

    @classmethod
    def of(cls, rtt_ms: float = 0.0, *, split: str = "even", one_way_ms: float | None = None,
           jitter_ms: float = 0.0) -> Delays:
        if min(rtt_ms, jitter_ms, one_way_ms or 0.0) < 0:
            raise ValueError("delays must be ≥ 0")
        if one_way_ms is not None:
            return cls(one_way_ms / 1e3, one_way_ms / 1e3, jitter_ms / 1e3)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split == "even":
            return cls(rtt_ms / 2e3, rtt_ms / 2e3, jitter_ms / 1e3)
        return cls(0.0, rtt_ms / 1e3, jitter_ms / 1e3)

    @property
    def rtt_ms(self) -> float:
        return (self.to_server + self.to_client) * 1e3


class _PreciseEpoll(selectors.EpollSelector):
    """epoll for whole milliseconds, then a sleep for the rest: waits end ~0.1 ms late, never early."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return super().select(timeout)
        deadline = time.monotonic() + timeout
        whole = math.floor(timeout * 1e3) / 1e3
        if whole > 0:
            ready = super().select(whole)
            if ready:
                return ready
        remaining = deadline - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        return super().select(0)


def new_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(_PreciseEpoll())


class _Direction:
    """Chunks from `source` to `sink`, each written `delay` (+ jitter) after it arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, jitter: float, name: str) -> None:
        self.loop, self.delay, self.jitter = loop, delay, jitter
        self.chunks_key, self.bytes_key = f"chunks_{name}", f"bytes_{name}"
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.queued = 0
        self.timer: asyncio.TimerHandle | None = None
        self.sink: asyncio.Transport | None = None
        self.source: asyncio.Transport | None = None
        self.last_due = 0.0
        self.pauses: set[str] = set()
        self.closed = False

    def push(self, data: bytes | None) -> None:
        """Queue a chunk (None: the source closed; the sink is closed once it is due)."""
        if data:
            COUNTERS[self.chunks_key] += 1
            COUNTERS[self.bytes_key] += len(data)
        if self.delay == 0 and self.jitter == 0 and not self.queue and self.sink is not None:
            self._write(data)
            return
        due = self.loop.time() + self.delay + (random.random() * self.jitter if self.jitter else 0.0)
        due = max(due, self.last_due)  # order kept: never due before the chunk ahead
        self.last_due = due
        self.queue.append((due, data))
        if data:
            self.queued += len(data)
            if self.queued > MAX_QUEUED:
                self.pause("queue")
        if self.timer is None and self.sink is not None:
            self.timer = self.loop.call_at(due, self.flush)

    def flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            if data:
                self.queued -= len(data)
            self._write(data)
        if self.queued <= MAX_QUEUED // 2:
            self.resume("queue")
        if self.queue and self.sink is not None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def attach(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        if self.queue and self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def _write(self, data: bytes | None) -> None:
        assert self.sink is not None
        if data is None:
            self.sink.close()  # the source closed: close the sink once its buffer is written
        elif not self.sink.is_closing():
            self.sink.write(data)

    def pause(self, why: str) -> None:
        if not self.pauses and self.source is not None and not self.source.is_closing():
            self.source.pause_reading()
        self.pauses.add(why)

    def resume(self, why: str) -> None:
        if why not in self.pauses:
            return
        self.pauses.discard(why)
        if not self.pauses and self.source is not None and not self.source.is_closing():
            self.source.resume_reading()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: what it reads goes into `out`; `into` feeds it."""

    def __init__(self, out: _Direction, into: _Direction) -> None:
        self.out, self.into = out, into
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.out.source = transport
        self.into.attach(transport)

    def data_received(self, data: bytes) -> None:
        self.out.push(data)

    def eof_received(self) -> bool:
        return False  # PostgreSQL never half-closes: treat EOF as the end (connection_lost follows)

    def pause_writing(self) -> None:
        self.into.pause("sink")

    def resume_writing(self) -> None:
        self.into.resume("sink")

    def connection_lost(self, exc: Exception | None) -> None:
        # What this side sent still arrives, then the other side is closed; what was on its way
        # to this side has nobody to go to.
        self.into.cancel()
        self.into.queue.clear()
        self.out.source = None
        if not self.out.closed:
            self.out.closed = True
            self.out.push(None)


class _Pair:
    """A client connection and its upstream connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delays: Delays) -> None:
        COUNTERS["connections"] += 1
        self.up = _Direction(loop, delays.to_server, delays.jitter, "to_server")
        self.down = _Direction(loop, delays.to_client, delays.jitter, "to_client")
        self.server = _Side(self.down, self.up)


class Upstream:
    """Where the proxy connects: a Unix socket path or (host, port)."""

    def __init__(self, unix: str | None = None, host: str | None = None, port: int | None = None) -> None:
        if (unix is None) == (host is None or port is None):
            raise ValueError("give either a unix socket path or host and port")
        self.unix, self.host, self.port = unix, host, port

    async def connect(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol) -> None:
        if self.unix is not None:
            await loop.create_unix_connection(lambda: protocol, self.unix)
        else:
            assert self.host is not None and self.port is not None
            await loop.create_connection(lambda: protocol, self.host, self.port)


async def serve(upstream: Upstream, delays: Delays, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def accept() -> asyncio.Protocol:
        pair = _Pair(loop, delays)

        class Accepted(_Side):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                task = loop.create_task(upstream.connect(loop, pair.server))
                task.add_done_callback(self._connected)

            def _connected(self, task: asyncio.Task[None]) -> None:
                if task.cancelled() or task.exception() is not None:
                    if self.transport is not None:
                        self.transport.close()

        return Accepted(pair.up, pair.down)

    server = await loop.create_server(accept, host, port, backlog=1024, reuse_address=True)
    return server


# -- the process -------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


@dataclass
class DelayProxy:
    """The proxy as a child process pinned to `cpus`; `dsn()` rewrites a DSN to go through it."""

    upstream: Upstream
    delays: Delays
    cpus: Sequence[int] | None = None
    proc: subprocess.Popen[str] | None = None
    port: int = 0

    def start(self, timeout: float = 10.0) -> DelayProxy:
        argv = [sys.executable, "-m", "loadtests.delayproxy", "--port", "0",
                "--to-server-ms", repr(self.delays.to_server * 1e3),
                "--to-client-ms", repr(self.delays.to_client * 1e3),
                "--jitter-ms", repr(self.delays.jitter * 1e3)]
        if self.upstream.unix is not None:
            argv += ["--upstream-unix", self.upstream.unix]
        else:
            argv += ["--upstream-host", str(self.upstream.host), "--upstream-port", str(self.upstream.port)]
        taskset = shutil.which("taskset")
        if self.cpus and taskset:
            argv = [taskset, "-c", ",".join(map(str, self.cpus)), *argv]
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and not line:
            line = self.proc.stdout.readline()
            if self.proc.poll() is not None:
                break
        if not line.startswith("{"):
            self.stop()
            raise RuntimeError(f"delay proxy did not start: {line!r}")
        self.port = int(json.loads(line)["port"])
        return self

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return _cpu_seconds(self.proc.pid)

    def stats(self) -> dict[str, float]:
        """The counters so far, and the proxy's CPU seconds (`cpu_s`)."""
        assert self.proc is not None and self.proc.stdout is not None
        self.proc.send_signal(signal.SIGUSR1)
        line = self.proc.stdout.readline()
        return {**json.loads(line), "cpu_s": self.cpu_seconds()}

    def dsn(self, dsn: str) -> str:
        return proxied_dsn(dsn, "127.0.0.1", self.port)

    def describe(self) -> dict[str, Any]:
        return {"rtt_ms": self.delays.rtt_ms, "to_server_ms": self.delays.to_server * 1e3,
                "to_client_ms": self.delays.to_client * 1e3, "jitter_ms": self.delays.jitter * 1e3,
                "cpus": list(self.cpus) if self.cpus else None, "port": self.port,
                "upstream": self.upstream.unix or f"{self.upstream.host}:{self.upstream.port}",
                "implementation": "loadtests.delayproxy (asyncio selector loop, whole chunks)"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> DelayProxy:
        return self.start() if self.proc is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()


def unix_socket_of(dsn: str) -> str | None:
    """The PostgreSQL Unix socket a `postgresql://…?host=/dir` DSN uses (None: TCP)."""
    parts = urlsplit(dsn)
    host = parse_qs(parts.query).get("host", [parts.hostname or ""])[0]
    if not host.startswith("/"):
        return None
    port = parse_qs(parts.query).get("port", [str(parts.port or 5432)])[0]
    return f"{host}/.s.PGSQL.{port}"


def upstream_of(dsn: str) -> Upstream:
    unix = unix_socket_of(dsn)
    if unix is not None:
        return Upstream(unix=unix)
    parts = urlsplit(dsn)
    return Upstream(host=parts.hostname or "127.0.0.1", port=parts.port or 5432)


def proxied_dsn(dsn: str, host: str, port: int) -> str:
    """The same DSN (user, database, options) pointed at host:port over TCP."""
    parts = urlsplit(dsn)
    query = {k: v for k, v in parse_qs(parts.query).items() if k not in ("host", "port")}
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, doseq=True), parts.fragment))


def round_trips_ms(dsn: str, count: int) -> list[float]:
    """`count` timed `SELECT 1` round trips over one psycopg connection (after 50 untimed)."""
    import psycopg

    from flashcards.dsn import driver_url

    url = driver_url(dsn, {"postgresql": "postgresql"}).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(50):
            conn.execute("SELECT 1")
        times = []
        for _ in range(count):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - started) * 1e3)
    return times


def measure_overhead(dsn: str, cpus: Sequence[int] | None, count: int = 2000) -> dict[str, Any]:
    """The proxy's own cost at 0 ms: added latency per round trip (median of proxied minus
    median of direct `SELECT 1`, interleaved in blocks) and its CPU per round trip."""
    direct: list[float] = []
    proxied: list[float] = []
    with DelayProxy(upstream_of(dsn), Delays.of(0.0), cpus=cpus) as proxy:
        cpu = 0.0
        for _ in range(4):
            direct += round_trips_ms(dsn, count // 4)
            before = proxy.cpu_seconds()
            proxied += round_trips_ms(proxy.dsn(dsn), count // 4)
            cpu += proxy.cpu_seconds() - before
    mid = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {
        "method": f"{count} psycopg `SELECT 1` round trips direct and through the proxy at 0 ms, "
                  "interleaved in 4 blocks; proxy CPU from /proc (clock ticks) over its blocks",
        "round_trips": count, "direct_p50_ms": mid(direct), "proxied_p50_ms": mid(proxied),
        "added_p50_ms": mid(proxied) - mid(direct),
        "proxy_cpu_us_per_round_trip": cpu / (count // 4 * 4) * 1e6,
        "cpus": list(cpus) if cpus else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.delayproxy", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-unix")
    parser.add_argument("--upstream-host")
    parser.add_argument("--upstream-port", type=int)
    parser.add_argument("--rtt-ms", type=float, default=None, help="delay added per round trip")
    parser.add_argument("--split", choices=SPLITS, default="even")
    parser.add_argument("--one-way-ms", type=float, default=None, help="delay per direction")
    parser.add_argument("--to-server-ms", type=float, default=None)
    parser.add_argument("--to-client-ms", type=float, default=None)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.to_server_ms is not None or args.to_client_ms is not None:
        delays = Delays((args.to_server_ms or 0.0) / 1e3, (args.to_client_ms or 0.0) / 1e3, args.jitter_ms / 1e3)
    else:
        delays = Delays.of(args.rtt_ms or 0.0, split=args.split, one_way_ms=args.one_way_ms,
                           jitter_ms=args.jitter_ms)
    upstream = Upstream(args.upstream_unix, args.upstream_host, args.upstream_port)

    async def run() -> None:
        server = await serve(upstream, delays, args.host, args.port)
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "rtt_ms": delays.rtt_ms}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps(COUNTERS), flush=True))
        async with server:
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
