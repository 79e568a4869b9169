"""Direct-write fan-out of the event feed to held SSE connections, with a slow-reader bound.

A `PushStream` takes the place of a subscriber's queue (`Subscriber.queue`): the bus's
`put_nowait(item)` writes the item's pre-encoded frame to the connection there and then, by
stepping the awaitable of the server's own ASGI `send` once (uvicorn's is a coroutine, granian's
a native awaitable; the middlewares' send wrappers are skipped for body frames: they only act
on the response start). On a connection whose transport is writable that step completes (the
server took the bytes), so publishing to N subscribers is N steps in the publisher's own turn
of the loop: no task, generator or queue waiter is woken per subscriber per event (that wake-up
was a third of publish time at 10,000 streams). Publishers on another thread are handed over
with `call_soon_threadsafe`.

When a step does not complete, the transport is paused (a slow reader): the pending send is
handed to a drain task for that connection alone, and later frames wait in its backlog, in
order. A backlog beyond `limit` frames (the bus's `event_queue_size`, the bound every stack
uses) drops the subscriber: what was still waiting is discarded, the connection gets the
`dropped` frame (`flashcards.web.SSE_DROPPED`) after the frame in flight, and its response
ends; the client resumes with `Last-Event-ID`. So a connection holds at most one frame in
flight plus `limit` shared frame references, above what the server's transport buffers.

Frames are shared `bytes` (encoded once by the bus); keep-alive ticks are not queued behind a
backlog (pending bytes already keep such a connection busy).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from flashcards.events import CLOSED, KEEPALIVE, Event, Subscriber
from flashcards.web import SSE_DROPPED, SSE_EXPIRED, SSE_KEEPALIVE

Send = Callable[[dict[str, Any]], Awaitable[None]]
# Where the app puts the server's own `send` in an HTTP scope (impl_rest/app.py), so body frames
# can skip the middlewares' send wrappers, which only look at the response start.
RAW_SEND_KEY = "stackbench.raw_send"


class SlowReader(Exception):
    """Raised to the bus by `put_nowait` when a backlog passes its bound (the bus marks the
    subscriber overflowed and stops offering it events, as with a full queue)."""


class PushStream:
    __slots__ = (
        "_backlog",
        "_drainer",
        "_final",
        "_limit",
        "_loop",
        "_send",
        "_skip_through",
        "_thread",
        "direct_writes",
        "dropped",
        "ended",
        "on_end",
        "paused_writes",
        "peak_backlog",
    )

    def __init__(self, send: Send, limit: int, on_end: Callable[[], None] = lambda: None) -> None:
        self._send = send
        self._limit = limit
        self._backlog: deque[bytes] = deque()
        self._drainer: asyncio.Future[None] | None = None
        self._final: bytes | None = None  # set once: the last body of the response
        self._skip_through: int | None = None  # see Subscriber.skip_through
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.ended = False  # the response is complete (or the connection failed)
        # Called once when it ends: the handler unsubscribes there, at once, rather than when
        # its request task next runs (some servers keep it parked until the connection closes).
        self.on_end = on_end
        self.direct_writes = 0  # frames written by one step
        self.paused_writes = 0  # sends that found the transport paused
        self.peak_backlog = 0
        self.dropped = False

    # --- the queue interface the bus calls ---------------------------------------------------
    def put_nowait(self, item: object) -> None:
        if threading.get_ident() != self._thread:  # a publisher on another thread
            self._loop.call_soon_threadsafe(self._offer_safely, item)
            return
        self._offer(item)

    def empty(self) -> bool:
        return not self._backlog

    # --- the handler's side ------------------------------------------------------------------
    def attach(self, sub: Subscriber) -> None:
        """Replay the resume backlog and whatever the subscriber's queue caught before the
        response started, then take the queue's place: all in one turn of the loop, so no
        event published meanwhile is missed or reordered."""
        replay, sub.backlog = sub.backlog, []
        queued = sub.queue
        self._limit += len(replay)  # the resume backlog is bounded by the bus' history already
        try:
            for event in replay:
                self._offer(event)
            self._skip_through = sub.skip_through  # live events the replay (or the past) covered
            while not queued.empty():
                self._offer(queued.get_nowait())
        except SlowReader:
            sub.overflowed = True  # as the bus marks it (it offers this stream nothing more)
        sub.queue = self

    def detach(self) -> None:
        """The handler is leaving: stop the drain task, write nothing more."""
        if self._final is None:
            self._final = b""
        self._backlog.clear()
        if self._drainer is not None:
            self._drainer.cancel()

    # --- writing -----------------------------------------------------------------------------
    def _offer_safely(self, item: object) -> None:
        try:
            self._offer(item)
        except SlowReader:
            pass  # dropped and ended all the same; the handler unsubscribes when it returns

    def _offer(self, item: object) -> None:
        if self._final is not None:
            return
        if item is CLOSED:
            self._end(b"")
            return
        if item is KEEPALIVE:
            if self._drainer is not None:
                return
            frame = SSE_KEEPALIVE
        else:
            assert isinstance(item, Event)
            if self._skip_through is not None and item.id <= self._skip_through:
                return
            frame = item.sse
        if self._drainer is None:
            self._step(frame, more=True)
            return
        if len(self._backlog) >= self._limit:
            self._drop()
            raise SlowReader
        self._backlog.append(frame)
        self.peak_backlog = max(self.peak_backlog, len(self._backlog))

    def _step(self, body: bytes, more: bool) -> None:
        """One send, run to completion now if it can be; otherwise finished by a drain task.
        Any awaitable will do: uvicorn's send is a coroutine, granian's a native awaitable."""
        steps = self._send({"type": "http.response.body", "body": body, "more_body": more}).__await__()
        try:
            yielded = next(steps)
        except StopIteration:
            self.direct_writes += 1
            if not more:
                self._ended()
            return
        except Exception:  # the connection is gone (servers that raise rather than ignore)
            self._final = b""
            self._ended()
            return
        self.paused_writes += 1
        self._drainer = self._loop.create_task(self._drain(steps, yielded, more))

    async def _drain(self, steps: Generator[Any, None, Any], yielded: Any, more: bool) -> None:
        try:
            await _finish(steps, yielded)
            while more and self._backlog:
                await self._send({"type": "http.response.body", "body": self._backlog.popleft(), "more_body": True})
            if more and self._final is not None:
                await self._send({"type": "http.response.body", "body": self._final, "more_body": False})
                more = False
        except Exception:
            self._final = self._final if self._final is not None else b""
            more = False
        finally:
            self._drainer = None
        if not more:
            self._ended()

    def _ended(self) -> None:
        if not self.ended:
            self.ended = True
            # Soon, not now: this may run inside the bus' own offering loop (no re-entry there).
            self._loop.call_soon(self.on_end)

    def _end(self, last: bytes) -> None:
        self._final = last
        self._backlog.clear()
        if self._drainer is None:
            self._step(last, more=False)
        # else: the drain task sends it after the frame in flight

    def expire(self) -> None:
        """The stream's token expired: the `expired` frame after the frame in flight, then the end."""
        if self._final is None:
            self._end(SSE_EXPIRED)

    def _drop(self) -> None:
        self.dropped = True
        self._end(SSE_DROPPED)


async def _finish(steps: Generator[Any, None, Any], yielded: Any) -> None:
    """Run an awaitable that was stepped by hand and suspended on `yielded` to its end, as its
    task would have: wait for what it waits on, then resume it (it reads the outcome itself)."""
    try:
        while True:
            if yielded is None:  # a bare `yield` (sleep(0)): just give the loop a turn
                await asyncio.sleep(0)
            elif asyncio.isfuture(yielded):
                yielded._asyncio_future_blocking = False
                await asyncio.wait((yielded,))
            else:
                raise RuntimeError(f"an ASGI send yielded {yielded!r}: not an asyncio server")
            try:
                yielded = next(steps)
            except StopIteration:
                return
    except BaseException:
        close = getattr(steps, "close", None)
        if close is not None:
            close()
        raise
