"""Async primitives the service uses; `flashcards/_sync/compat.py` has the same names, blocking.

Hand-written on both sides (the only module `tools/unasync.py` does not generate).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import anyio.to_thread

T = TypeVar("T")

__all__ = ["aclosing", "make_queue", "run_blocking", "run_to_completion", "sleep"]


def make_queue(maxsize: int) -> asyncio.Queue[Any]:
    return asyncio.Queue(maxsize)


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
