"""The in-process event bus: publish/subscribe of a user's domain events.

Bounded queue per subscriber, event ids for resume (`Last-Event-ID`), each event encoded to SSE
bytes once at publish time whatever the number of subscribers. The queue type is injected
(`asyncio.Queue` for the async service, `queue.Queue` for the sync twin), so this core is
shared and has no I/O.

Scope: this bus is the fan-out inside one process. On PostgreSQL the service writes every event
to the `events` table in the transaction of its change and each worker's one LISTEN connection
feeds the events of all workers into its bus (`flashcards/_async/feed.py`), through `deliver`.
On SQLite the bus is the whole feed (`publish`), so SQLite serves one process only.

A resume from an id older than what is kept gets a `feed.reset` event first (`reset_event`):
the client must refetch its state, events were lost to retention.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson


class _Queue(Protocol):
    def put_nowait(self, item: Any, /) -> None: ...


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    user_id: int
    type: str
    data: dict[str, Any]
    published_at: datetime
    json: bytes  # {"id", "type", "data", "published_at"}, encoded once
    sse: bytes  # the complete SSE frame, encoded once

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "data": self.data, "published_at": self.published_at}


# The event that tells a resuming client that events after its Last-Event-ID are gone (older
# than the feed keeps): refetch state, then continue from this event's id.
RESET_TYPE = "feed.reset"


def make_event(event_id: int, user_id: int, type_: str, data: dict[str, Any], published_at: datetime) -> Event:
    """The one place an event's JSON and SSE frame are encoded."""
    body = {"id": event_id, "type": type_, "data": data, "published_at": published_at}
    return _framed(event_id, user_id, type_, data, published_at, orjson.dumps(body))


def _framed(event_id: int, user_id: int, type_: str, data: dict[str, Any], at: datetime, encoded: bytes) -> Event:
    sse = b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, type_.encode(), encoded)
    return Event(event_id, user_id, type_, data, at, encoded, sse)


def notify_payload(event: Event) -> str:
    """What NOTIFY carries: `<user_id> <event JSON>` (well under PostgreSQL's 8,000-byte cap:
    the largest event data is a 200-character deck title)."""
    return f"{event.user_id} {event.json.decode()}"


def event_from_payload(payload: str) -> Event:
    """A NOTIFY payload back into an event: parsed once per worker process, its JSON reused."""
    user, _, encoded = payload.partition(" ")
    body = orjson.loads(encoded)
    at = datetime.fromisoformat(body["published_at"])
    return _framed(body["id"], int(user), body["type"], body["data"], at, encoded.encode())


def reset_event(user_id: int, last_event_id: int, horizon: int, retention: str, *, unknown: bool = False) -> Event:
    """Events in (last_event_id, horizon] may be gone (`unknown`: the id was never handed out,
    e.g. from before a database reset): its id is `horizon`, so a client that resumes from it
    is not reset again."""
    reason = "last_event_id_unknown" if unknown else "last_event_id_expired"
    data = {"reason": reason, "last_event_id": last_event_id, "retention": retention}
    return make_event(horizon, user_id, RESET_TYPE, data, datetime.now(UTC))


# Put into every queue by `EventBus.keepalive()`: one timer for all subscribers instead of one
# timeout per subscriber.
KEEPALIVE = object()
# Put into a subscriber's queue when it is closed by the server (shutdown).
CLOSED = object()
# What a subscriber's wait returns once its deadline (`Subscriber.until`) has passed.
EXPIRED = object()


@dataclass(eq=False, slots=True)
class Subscriber:
    user_id: int
    queue: Any
    overflowed: bool = False
    closed: bool = False
    backlog: list[Event] = field(default_factory=list)
    # The Last-Event-ID to resume after, when the backlog is read from the events table (the
    # read is I/O, so it happens in `Service.events`, not in `subscribe`).
    resume_after: int | None = None
    # Events up to this id were committed before the subscription (by this process): not live.
    seen_through: int | None = None
    # Set by `Service.load_backlog`: live events up to this id were sent already (in the backlog).
    skip_through: int | None = None
    # The Unix time the stream ends at (its token's `exp`, flashcards/streamauth.py); `expired`
    # is set when it ended for that reason (the adapter then sends its final frame or close code).
    until: float | None = None
    expired: bool = False


class EventBus:
    def __init__(
        self, queue_factory: Callable[[int], Any], *, queue_size: int = 256, history_size: int = 1024
    ) -> None:
        self._queue_factory = queue_factory
        self._queue_size = queue_size
        self._history: deque[Event] = deque(maxlen=history_size)
        self._subscribers: dict[int, set[Subscriber]] = {}
        self._lock = threading.Lock()  # the sync twin publishes from many threads
        self._last_id = 0
        self._evicted_id = 0  # the newest event pushed out of history: resumes before it reset
        self.published = 0
        self.dropped_subscribers = 0

    def _next_id(self) -> int:
        # Microseconds since the epoch, strictly increasing: ids stay ordered across restarts,
        # so a Last-Event-ID from before a restart never matches a newer event.
        self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
        return self._last_id

    def publish(self, user_id: int, type_: str, data: dict[str, Any], now: datetime | None = None) -> Event:
        """The single-process feed (SQLite): id, encoding, history and fan-out here."""
        now = now or datetime.now(UTC)
        with self._lock:
            event = make_event(self._next_id(), user_id, type_, data, now)
            if len(self._history) == self._history.maxlen:
                self._evicted_id = self._history[0].id
            self._history.append(event)
        self.deliver(event)
        return event

    def deliver(self, event: Event) -> None:
        """Fan an already-encoded event out to this process' subscribers of its user (the
        PostgreSQL feed's listener calls this for every event of every worker)."""
        with self._lock:
            targets = tuple(self._subscribers.get(event.user_id, ()))
            self.published += 1
        for sub in targets:
            self._offer(sub, event)

    def _offer(self, sub: Subscriber, item: object) -> None:
        if sub.overflowed or sub.closed:
            return
        try:
            sub.queue.put_nowait(item)
        except Exception:  # asyncio.QueueFull / queue.Full: a client too slow to keep up
            # The stream ends after what is queued; the client resumes with Last-Event-ID.
            sub.overflowed = True
            self.dropped_subscribers += 1

    def subscribe(self, user_id: int, last_event_id: int | None = None) -> Subscriber:
        """Resume from the in-process history; a feed with its own store passes None and sets
        `resume_after` instead."""
        sub = Subscriber(user_id, self._queue_factory(self._queue_size))
        with self._lock:
            if last_event_id is not None:
                sub.backlog = [e for e in self._history if e.user_id == user_id and e.id > last_event_id]
                if last_event_id < self._evicted_id:
                    reset = reset_event(user_id, last_event_id, self._evicted_id, f"the last {self._history.maxlen} events")
                    sub.backlog.insert(0, reset)
            self._subscribers.setdefault(user_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.user_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.user_id]

    def keepalive(self) -> None:
        for sub in self._all():
            self._offer(sub, KEEPALIVE)

    def close(self, sub: Subscriber) -> None:
        """End one subscriber's stream (its client left): its reader wakes up and unsubscribes."""
        self._offer(sub, CLOSED)
        sub.closed = True

    def close_all(self) -> None:
        for sub in self._all():
            self.close(sub)

    def _all(self) -> list[Subscriber]:
        with self._lock:
            return [s for subs in self._subscribers.values() for s in subs]

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())


def parse_last_event_id(value: str | None) -> int | None:
    """A `Last-Event-ID` header or `?last_event_id=`; garbage means "no resume", never an error."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 19:
        return None
    return int(value)
