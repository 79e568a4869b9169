"""Blocking twins of `flashcards/_async/compat.py` (hand-written, same names)."""

from __future__ import annotations

import queue
import time
from contextlib import closing as aclosing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["aclosing", "get_until", "make_queue", "run_blocking", "run_to_completion", "sleep"]


def make_queue(maxsize: int) -> queue.Queue[Any]:
    return queue.Queue(maxsize)


def get_until(q: queue.Queue[Any], deadline: float | None, timed_out: object) -> Any:
    """The queue's next item, or `timed_out` once the Unix time `deadline` has passed."""
    if deadline is None:
        return q.get()
    remaining = deadline - time.time()
    if remaining <= 0:
        return timed_out
    try:
        return q.get(timeout=remaining)
    except queue.Empty:
        return timed_out


def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def run_to_completion(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)
