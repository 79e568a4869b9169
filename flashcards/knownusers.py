"""Which users this process saw in the database recently (issue 20: a token of a deleted user).

A token is signed, so checking it needs no I/O; whether its user still exists does. Every
authenticated request asks the database at most once per `ttl_s` per user and process: a
deleted user's tokens stop working within `ttl_s` (0: every request asks), and a benchmark's
handful of users costs a lookup every few seconds, not one per request.
"""

from __future__ import annotations

from time import monotonic

MAX_ENTRIES = 100_000  # a bound on memory: past it the cache starts over (more lookups, no harm)


class KnownUsers:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._until: dict[int, float] = {}

    def fresh(self, user_id: int) -> bool:
        """Seen in the database less than `ttl_s` ago."""
        until = self._until.get(user_id)
        return until is not None and monotonic() < until

    def saw(self, user_id: int) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._until) >= MAX_ENTRIES:
            self._until.clear()
        self._until[user_id] = monotonic() + self.ttl_s
