"""Failed-login limiting: sliding windows per key, pure (the clock is passed in).

Only failed attempts count, so a user who types the right password is never slowed down. Three
windows, checked and reserved in ONE step under one lock (`LoginLimiter.begin`): an attempt in
flight counts as a failure until it succeeds, so 50 concurrent guesses get exactly `limit`
verdicts, never more (the check and the count used to be two steps with the password hash in
between).

* `pair`   (client, username): `login_rate_per_minute` guesses from one address at one account;
* `client` (client): `login_client_rate_per_minute` guesses from one address over all accounts;
* `user`   (username): `login_rate_per_minute` failures from all addresses together, enforced
  only against addresses that have themselves failed at that account in the window. A guesser
  spreading over many addresses gets one guess per address and minute once the account is
  under attack, while the owner, from an address that has not failed, still signs in: knowing
  a username is not enough to lock its owner out.

The state is per worker process (an in-memory table, bounded in size); with W workers an
attacker gets at most W × the limit, which the report and README state — a shared store (Redis)
would tighten it. The client address is the peer address the server reports: the harness runs
every server with proxy headers off (`trust_forwarded_for` in the settings).
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
            return self._wait(key, now)

    def record_failure(self, key: str, now: float) -> None:
        with self._lock:
            self._add(key, now)

    def _wait(self, key: str, now: float) -> int:
        times = self._prune(key, now)
        if times is None or len(times) < self.limit:
            return 0
        return max(1, math.ceil(times[0] + self.window_s - now))

    def _has(self, key: str, now: float) -> bool:
        return self._prune(key, now) is not None

    def _add(self, key: str, now: float) -> None:
        times = self._prune(key, now)
        if times is None:
            times = self._failures[key] = deque()
            if len(self._failures) > self.max_keys:  # bounded memory under a key flood
                self._failures.popitem(last=False)
        times.append(now)
        self._failures.move_to_end(key)

    def _remove(self, key: str, now: float) -> None:
        times = self._failures.get(key)
        if times is not None:
            try:
                times.remove(now)
            except ValueError:
                return  # already pruned
            if not times:
                del self._failures[key]

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


class Attempt:
    """One login attempt's reservation in the windows (released when the password was right)."""

    __slots__ = ("keys", "now")

    def __init__(self, keys: list[tuple[FailureWindow, str]], now: float) -> None:
        self.keys = keys
        self.now = now


class LoginLimiter:
    """The three windows of a service; `begin` checks and reserves atomically."""

    def __init__(self, user_limit: int, client_limit: int, window_s: float = WINDOW_S) -> None:
        self.pair = FailureWindow(user_limit, window_s)
        self.client = FailureWindow(client_limit, window_s)
        self.user = FailureWindow(user_limit, window_s)
        self._lock = threading.Lock()  # one lock over the three windows: check + reserve is atomic

    def begin(self, username: str, client: str | None, now: float) -> Attempt | int:
        """The reservation, or the seconds to wait (429) when a window is full."""
        pair_key = f"{client}\x00{username}"
        with self._lock:
            wait = self.pair._wait(pair_key, now)
            if client is not None:
                wait = max(wait, self.client._wait(client, now))
            if self.pair._has(pair_key, now):  # this address already failed at this account
                wait = max(wait, self.user._wait(username, now))
            if wait:
                return wait
            keys = [(self.pair, pair_key), (self.user, username)]
            if client is not None:
                keys.append((self.client, client))
            for window, key in keys:
                window._add(key, now)
            return Attempt(keys, now)

    def succeeded(self, attempt: Attempt) -> None:
        with self._lock:
            for window, key in attempt.keys:
                window._remove(key, attempt.now)
