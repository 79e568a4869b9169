"""The open-loop client itself: one fixed-rate plan driven on asyncio streams in this process
(`drive`, `run_in_process`). What it measures and why: openloop.py; the separate pinned process
that runs it: `openloop.run_open_loop` (``python -m loadtests.openloop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loadtests.histograms import histogram_ms, new_histogram, record
from loadtests.ratesearch import ACHIEVED_MIN
from loadtests.wire import RequestSpec, http_request

LAG_LIMIT_MS = 10.0  # scheduler lateness p99 above this: the client could not keep its plan
ERROR_KEYS = ("connect", "read", "write", "timeout", "status")
START_LEAD_S = 0.05  # the plan starts this long after the driver is ready
SLEEP_MIN_S = 0.0006  # the scheduler's shortest sleep (one uvloop timer tick)


class OpenLoopError(RuntimeError):
    """The open-loop client failed or printed no result."""


# -- one HTTP/1.1 exchange on asyncio streams --------------------------------------------------


class _ResponseError(Exception):
    """The response could not be framed (bad head, bad chunk)."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, connection must be closed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    try:
        status = int(head[9:12])
    except ValueError:
        raise _ResponseError(head[:40]) from None
    lower = head.lower()
    close = b"\r\nconnection: close" in lower or head.startswith(b"HTTP/1.0")
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.find(b"\r\n", at + 17)
        length = int(head[at + 17 : end])
        if length:
            await reader.readexactly(length)
    elif b"\r\ntransfer-encoding:" in lower and b"chunked" in lower:
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise _ResponseError(line[:40]) from None
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            await reader.readexactly(size + 2)
    elif status >= 200 and status not in (204, 304):
        await reader.read()  # delimited by the end of the connection
        close = True
    return status, close


@dataclass(eq=False)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sent_at: float | None = None  # the in-flight request's send time
    timed_out: bool = False


_Item = tuple[float, bool]  # (planned time, measured)
# Timestamps come from the monotonic clock itself: uvloop's loop.time() is libuv's millisecond
# clock, cached per loop iteration — too coarse for sub-millisecond latencies.
_now = time.monotonic


class _Driver:
    """One open-loop run inside the current event loop (see `drive`)."""

    def __init__(
        self,
        url: str,
        spec: RequestSpec,
        rate: float,
        duration_s: float,
        warmup_s: float,
        max_connections: int,
        timeout_s: float,
        seed: int | None,
        start_at: float | None = None,
        offset_s: float = 0.0,
    ) -> None:
        if rate <= 0 or duration_s <= 0 or warmup_s < 0:
            raise ValueError("open loop needs rate > 0, duration_s > 0, warmup_s >= 0")
        if max_connections < 1 or timeout_s <= 0:
            raise ValueError("open loop needs max_connections >= 1 and timeout_s > 0")
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"open loop speaks plain http://host:port, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.spec = spec
        self.rate = float(rate)
        self.duration_s = float(duration_s)
        self.warmup_s = float(warmup_s)
        self.max_connections = max_connections
        self.timeout_s = float(timeout_s)
        self.rng = random.Random(seed)
        # one part of a split plan (loadtests/openloop_split.py): every part starts from the same
        # monotonic instant, shifted by its phase, so the parts interleave into one even stream
        self.start_at = start_at
        self.offset_s = float(offset_s)
        self.start_late_s = 0.0
        self.hist = new_histogram()  # completion − planned
        self.send_hist = new_histogram()  # completion − actual send
        self.lag_hist = new_histogram()  # actual send − planned
        self.sched_hist = new_histogram()  # scheduler release − planned
        self.errors = dict.fromkeys(ERROR_KEYS, 0)
        self.status_counts: dict[int, int] = {}
        self.pending: deque[_Item] = deque()
        self.idle: list[asyncio.Future[_Item | None]] = []
        self.conns: set[_Conn] = set()
        self.opening = 0
        self.connections_opened = 0
        self.peak_connections = 0
        self.cap_hit = False
        self.outstanding = 0  # dispatched, not finished (measured and warmup)
        self.planned_measured = 0
        self.completed_measured = 0
        self.completed_in_window = 0
        self.answered_total = 0  # every answer, warmup and drain included: the server's CPU window
        self.unsent = 0
        self.window_start = 0.0
        self.window_end = 0.0
        self.finishing = False
        self.plan_done = False
        self.drained = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.crashes: list[BaseException | None] = []
        self._constant: bytes | None = None
        placeholders = "{id}" in spec.path or "{grade}" in (spec.body or "") or "{id}" in (spec.body or "")
        if not placeholders and not spec.users:
            self._constant = self._build(spec.headers, spec.path, spec.body)

    # -- requests ------------------------------------------------------------------------
    def _build(self, headers: dict[str, str], path: str, body: str | None) -> bytes:
        return http_request(self.spec.method, f"{self.host}:{self.port}", f"{self.prefix}{path}",
                            headers, body.encode() if body is not None else None)

    def _request(self) -> bytes:
        if self._constant is not None:
            return self._constant
        headers, path, body = self.spec.render_as(self.rng)  # a random user of spec.users, if any
        return self._build(headers, path, body)

    # -- the pool --------------------------------------------------------------------------
    def _dispatch(self, item: _Item) -> None:
        self.outstanding += 1
        while self.idle:
            waiter = self.idle.pop()  # LIFO: the most recently used connection
            if not waiter.done():
                waiter.set_result(item)
                return
        self.pending.append(item)
        if len(self.pending) > self.opening:
            if len(self.conns) + self.opening < self.max_connections:
                self._spawn()
            else:
                self.cap_hit = True

    def _spawn(self) -> None:
        self.opening += 1
        task = asyncio.get_running_loop().create_task(self._connection())
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.crashes.append(task.exception())  # a bug in the driver: reported by run()

    async def _next(self) -> _Item | None:
        while self.pending:
            item = self.pending.popleft()
            if _now() - item[0] <= self.timeout_s:
                return item
            # waited for a connection past the timeout: the user gave up before it was sent
            if item[1]:
                self.unsent += 1
            self._finish(item[0], item[1], None, None, "timeout")
        if self.finishing:
            return None
        waiter: asyncio.Future[_Item | None] = asyncio.get_running_loop().create_future()
        self.idle.append(waiter)
        return await waiter

    async def _open(self) -> _Conn | None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=1 << 20), self.timeout_s
            )
        except (OSError, TimeoutError):
            return None
        self.connections_opened += 1
        conn = _Conn(reader, writer)
        self.conns.add(conn)
        self.peak_connections = max(self.peak_connections, len(self.conns))
        return conn

    def _close(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        conn.writer.transport.abort()

    async def _connection(self) -> None:
        conn = await self._open()
        self.opening -= 1
        if conn is None:
            # the request this connection was opened for fails as a connect error
            if self.pending:
                planned, measured = self.pending.popleft()
                self._finish(planned, measured, None, None, "connect")
            return
        try:
            while True:
                item = await self._next()
                if item is None:
                    return
                if conn.writer.transport.is_closing() or conn.reader.at_eof():
                    self._close(conn)  # the server closed an idle keep-alive connection
                    fresh = await self._open()
                    if fresh is None:
                        self._finish(item[0], item[1], None, None, "connect")
                        return
                    conn = fresh
                if not await self._exchange(conn, item):
                    self._close(conn)
                    return
        finally:
            self._close(conn)

    async def _exchange(self, conn: _Conn, item: _Item) -> bool:
        """Send one request and read its response; False when the connection is done."""
        planned, measured = item
        data = self._request()
        sent = _now()
        conn.sent_at = sent
        try:
            conn.writer.write(data)
        except (OSError, RuntimeError):
            conn.sent_at = None
            self._finish(planned, measured, sent, None, "write")
            return False
        try:
            status, close = await _read_response(conn.reader)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                _ResponseError, ValueError):
            conn.sent_at = None
            self._finish(planned, measured, sent, None, "timeout" if conn.timed_out else "read")
            return False
        conn.sent_at = None
        self._finish(planned, measured, sent, status, None)
        return not close

    def _finish(self, planned: float, measured: bool, sent: float | None, status: int | None,
                error: str | None) -> None:
        now = _now()
        self.outstanding -= 1
        if self.plan_done and self.outstanding == 0:
            self.drained.set()
        if status is not None:
            self.answered_total += 1
            if self.window_start <= now < self.window_end:
                self.completed_in_window += 1
        if not measured:
            return
        if sent is not None:
            record(self.lag_hist, sent - planned)
        if error is not None:
            self.errors[error] += 1
            return
        assert status is not None and sent is not None
        self.completed_measured += 1
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        if not 200 <= status < 300:
            self.errors["status"] += 1
        record(self.hist, now - planned)
        record(self.send_hist, now - sent)

    async def _watchdog(self) -> None:
        """Abort connections whose request has waited more than ``timeout_s`` since its send."""
        tick = min(0.05, self.timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            limit = _now() - self.timeout_s
            for conn in list(self.conns):
                if conn.sent_at is not None and conn.sent_at < limit and not conn.timed_out:
                    conn.timed_out = True
                    conn.writer.transport.abort()

    # -- the plan --------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate
        warm = round(self.rate * self.warmup_s)
        total = warm + max(1, round(self.rate * self.duration_s))
        cpu0 = time.process_time()
        start = _now() + START_LEAD_S
        if self.start_at is not None:
            self.start_late_s = max(0.0, _now() - self.start_at)
            start = self.start_at
        start += self.offset_s
        self.window_start = start + warm * interval
        self.window_end = start + total * interval
        watchdog = loop.create_task(self._watchdog())
        i = 0
        while i < total:
            now = _now()
            due = start + i * interval
            if due > now:
                gap = due - now
                if gap >= SLEEP_MIN_S:
                    await asyncio.sleep(gap)  # uvloop truncates to whole ms: wakes a bit early
                elif self.outstanding == 0:
                    # nothing in flight: a short blocking nap (µs-precise) delays no measurement
                    time.sleep(gap)  # noqa: ASYNC251
                else:
                    # a timer under 0.5 ms fires on the next iteration (a spin that would burn
                    # the CPU the client's saturation is judged by): one tick instead; the
                    # lateness is counted in the latency and reported as schedule_lag
                    await asyncio.sleep(SLEEP_MIN_S)
                continue
            last = min(total, int((now - start) / interval) + 1)
            while i < last:
                planned = start + i * interval
                measured = i >= warm
                if measured:
                    self.planned_measured += 1
                    record(self.sched_hist, now - planned)
                self._dispatch((planned, measured))
                i += 1
        # drain: everything sent gets its response or its timeout
        self.plan_done = True
        if self.outstanding == 0:
            self.drained.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drained.wait(), self.timeout_s + 0.25)
        self.finishing = True
        cpu1 = time.process_time()
        ended = _now()
        while self.pending:  # queued behind the cap and never sent: timed out in the client
            planned, measured = self.pending.popleft()
            self.outstanding -= 1
            if measured:
                self.unsent += 1
                self.errors["timeout"] += 1
        for waiter in self.idle:
            if not waiter.done():
                waiter.set_result(None)
        watchdog.cancel()
        for conn in list(self.conns):
            if conn.sent_at is not None:
                conn.timed_out = True
            self._close(conn)
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=1.0)
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        if self.crashes:
            raise OpenLoopError(f"{len(self.crashes)} connection task(s) crashed") from self.crashes[0]
        return self._sample(cpu1 - cpu0, ended - (start - START_LEAD_S))

    def _sample(self, cpu_s: float, wall_s: float) -> dict[str, Any]:
        window = self.window_end - self.window_start
        rps = self.completed_in_window / window if window > 0 else 0.0
        achieved = rps / self.rate
        sched = histogram_ms(self.sched_hist)
        lagging = (sched["p99"] or 0.0) > LAG_LIMIT_MS
        flags = []
        if achieved < ACHIEVED_MIN:
            flags.append("below-target")
        if lagging:
            flags.append("client-lag")
        if self.cap_hit:
            flags.append("connection-cap")
        lag = histogram_ms(self.lag_hist)
        return {
            "requests": self.completed_measured,
            "duration_s": window,
            "rps": rps,
            "latency_ms": histogram_ms(self.hist),
            "errors": dict(self.errors),
            "client_cpu_pct": 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0,
            "extra": {
                "driver": "openloop",
                "target_rate": self.rate,
                "achieved_fraction": achieved,
                "below_target": achieved < ACHIEVED_MIN,
                "client_lagging": lagging,
                "connection_cap_hit": self.cap_hit,
                "flags": flags,
                "planned": self.planned_measured,
                "completed_in_window": self.completed_in_window,
                # what the server answered over the whole run: its CPU is measured over that
                # run (warmup included), so CPU per request divides by these (metrics.py)
                "answered_total": self.answered_total,
                "unsent": self.unsent,
                "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
                "lag_ms": {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]},
                "schedule_lag_ms": {"p50": sched["p50"], "p99": sched["p99"], "max": sched["max"]},
                "latency_from_send_ms": histogram_ms(self.send_hist),
                "latency_histogram": self.hist.encode().decode()
                if self.hist.get_total_count() else None,
                "connections_opened": self.connections_opened,
                "peak_connections": self.peak_connections,
                "max_connections": self.max_connections,
                "timeout_s": self.timeout_s,
                "warmup_s": self.warmup_s,
                "start_late_s": self.start_late_s,
                "client_cpu_s_window": cpu_s,
                "client_cpu_pct_window": 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0,
            },
        }


async def drive(
    url: str,
    spec: RequestSpec,
    rate: float,
    duration_s: float,
    warmup_s: float,
    *,
    max_connections: int = 512,
    timeout_s: float = 2.0,
    seed: int | None = None,
    start_at: float | None = None,
    offset_s: float = 0.0,
    part_histograms: bool = False,
) -> dict[str, Any]:
    """One open-loop run in the running event loop; a results sample (client CPU: this
    process's, measured from the first planned request to the end of the drain).

    ``start_at`` (a ``time.monotonic()`` instant, shared by every process on the machine) and
    ``offset_s`` place this plan as one phase of a split plan; ``part_histograms`` adds every
    histogram encoded (``extra.part_histograms``) so the parts can be merged exactly."""
    driver = _Driver(url, spec, rate, duration_s, warmup_s, max_connections, timeout_s, seed,
                     start_at, offset_s)
    sample = await driver.run()
    if part_histograms:
        sample["extra"]["part_histograms"] = {
            name: hist.encode().decode() if hist.get_total_count() else None
            for name, hist in (("latency", driver.hist), ("from_send", driver.send_hist),
                               ("lag", driver.lag_hist), ("schedule", driver.sched_hist))}
    return sample


def run_in_process(url: str, spec: RequestSpec, rate: float, duration_s: float,
                   warmup_s: float, **options: Any) -> dict[str, Any]:
    """`drive` on a fresh event loop (uvloop when importable), in this process."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(drive(url, spec, rate, duration_s, warmup_s, **options))
