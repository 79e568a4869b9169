"""Failed-login limiting: a sliding window per key, pure (the clock is passed in).

Only failed attempts count, so a user who types the right password is never slowed down, while a
password-guessing run against one account (key `user:<name>`) or from one client (key
`client:<address>`) gets 429 with `Retry-After` once it passes the limit. The state is per worker
process (an in-memory table, bounded in size); with W workers an attacker gets at most W × the
limit, which the report and README state — a shared store (Redis) would tighten it.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque

WINDOW_S = 60.0


class FailureWindow:
    def __init__(self, limit: int, window_s: float = WINDOW_S, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # the sync twin runs in many threads

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until `key` may try again; 0 when it may try now."""
        with self._lock:
            times = self._prune(key, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window_s - now))

    def record_failure(self, key: str, now: float) -> None:
        with self._lock:
            times = self._prune(key, now)
            if times is None:
                times = self._failures[key] = deque()
                if len(self._failures) > self.max_keys:  # bounded memory under a key flood
                    self._failures.popitem(last=False)
            times.append(now)
            self._failures.move_to_end(key)

    def _prune(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
