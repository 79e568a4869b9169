"""Blocking twins of `flashcards/_async/compat.py` (hand-written, same names)."""

from __future__ import annotations

import queue
import time
from contextlib import closing as aclosing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["aclosing", "make_queue", "run_blocking", "run_to_completion", "sleep"]


def make_queue(maxsize: int) -> queue.Queue[Any]:
    return queue.Queue(maxsize)


def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def run_to_completion(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)
