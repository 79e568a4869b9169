"""An in-memory todo store, seeded alike in every worker process (ids 1..SEED)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

SEED = 20
MAX_TITLE = 200


class Store:
    def __init__(self, seed: int = SEED) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, dict[str, Any]] = {}
        self._next = 1
        for i in range(seed):
            self.add(f"todo {i + 1}", done=i % 3 == 0)

    def add(self, title: str, done: bool = False) -> dict[str, Any]:
        with self._lock:
            item = {"id": self._next, "title": title, "done": done}
            self._items[self._next] = item
            self._next += 1
            return dict(item)

    def get(self, item_id: int) -> dict[str, Any] | None:
        item = self._items.get(item_id)
        return dict(item) if item else None

    def page(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(v) for v in itertools.islice(self._items.values(), limit)]


def parse_new(data: Any) -> tuple[str, bool] | str:
    """(title, done) from a JSON body, or the reason it is not a todo."""
    if not isinstance(data, dict):
        return "body must be a JSON object"
    title, done = data.get("title"), data.get("done", False)
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        return f"title must be a non-empty string of at most {MAX_TITLE} characters"
    if not isinstance(done, bool):
        return "done must be true or false"
    return title, done


def parse_limit(raw: str | None) -> int | str:
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        return "limit must be an integer from 1 to 500"
    return int(raw)
