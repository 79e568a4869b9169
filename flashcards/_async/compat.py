"""Async primitives the service uses; `flashcards/_sync/compat.py` has the same names, blocking.

Hand-written on both sides (the only module `tools/unasync.py` does not generate).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import anyio.to_thread

T = TypeVar("T")

__all__ = ["aclosing", "get_until", "make_queue", "run_blocking", "run_to_completion", "sleep"]


def make_queue(maxsize: int) -> asyncio.Queue[Any]:
    return asyncio.Queue(maxsize)


async def get_until(queue: asyncio.Queue[Any], deadline: float | None, timed_out: object) -> Any:
    """The queue's next item, or `timed_out` once the Unix time `deadline` has passed (None:
    wait for ever). No timer while items are already waiting."""
    if deadline is None:
        return await queue.get()
    remaining = deadline - time.time()
    if remaining <= 0:
        return timed_out
    if not queue.empty():
        return queue.get_nowait()
    try:
        async with asyncio.timeout(remaining):
            return await queue.get()
    except TimeoutError:
        return timed_out


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """CPU-heavy work (password hashing) off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def run_to_completion(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Finish `fn` even if the caller is cancelled (a client hung up mid-stream).

    Used to store a partial chat answer: the work runs as its own task, so a cancellation of
    the request only stops the waiting, never the write.
    """
    task = asyncio.ensure_future(fn(*args))
    return await asyncio.shield(task)
