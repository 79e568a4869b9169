"""Per-user caps on held streams: event feeds and tutor chats (issue 19, finding 3).

On a thread-per-stream server (gunicorn gthread, waitress) every held stream holds a thread, so
one user opening many streams starved everyone else; on an event loop one user held 2,000. The
service refuses a stream beyond `max_streams_per_user` event feeds or `max_chats_per_user`
concurrent chats of one user with 429 (`TOO_MANY_STREAMS`, a problem document, `Retry-After`).

Event feeds are counted from the bus' own subscriber table (a stream ends → it is unsubscribed →
it no longer counts, whichever way it ended); chats by a counter this module holds, taken when
the chat starts and given back when its generator finishes or is closed. Per process: with W
worker processes a user may hold W × the cap.
"""

from __future__ import annotations

import threading

from flashcards.errors import RateLimited

RETRY_AFTER_S = 5


class TooManyStreams(RateLimited):
    code = "TOO_MANY_STREAMS"
    title = "Too many streams"

    def __init__(self, kind: str, cap: int) -> None:
        super().__init__(
            f"You already hold {cap} {kind}, the most one user may hold at once; close one first.",
            retry_after=RETRY_AFTER_S,
        )


class ChatSlots:
    """Concurrent chats per user (thread-safe: the sync twin runs chats in many threads)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: dict[int, int] = {}
        self._lock = threading.Lock()

    def acquire(self, user_id: int) -> None:
        with self._lock:
            held = self._held.get(user_id, 0)
            if held >= self.cap:
                raise TooManyStreams("chats", self.cap)
            self._held[user_id] = held + 1

    def release(self, user_id: int) -> None:
        with self._lock:
            held = self._held.get(user_id, 0) - 1
            if held > 0:
                self._held[user_id] = held
            else:
                self._held.pop(user_id, None)

    def held(self, user_id: int) -> int:
        with self._lock:
            return self._held.get(user_id, 0)


def check_event_streams(held: int, cap: int) -> None:
    if held >= cap:
        raise TooManyStreams("event streams", cap)
