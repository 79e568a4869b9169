"""The event feed: where events are kept and how they reach subscribers. (Async source of truth; see tools/unasync.py.)

PostgreSQL: every worker process sees every event.
- `record` runs inside the transaction of the change an event describes: it takes the user's
  feed lock (`pg_advisory_xact_lock`, held to commit), reserves the next global id, INSERTs the
  row and NOTIFYs its JSON, which PostgreSQL delivers when (and only if) the transaction
  commits. So an event exists iff its change committed, and a user's ids grow in commit order,
  the order in which NOTIFY delivers.
- each worker process holds one LISTEN connection (`listen.Listener`); every notification is
  decoded once and handed to the worker's `EventBus`, which fans it out to local subscribers.
- `Last-Event-ID` resumes from the table on any worker (`backlog`). Retention: events are kept
  `event_retention_s` (default 24 h), pruned by id range about every `event_prune_interval_s`
  by whichever worker writes. A resume from before the oldest kept event (or from an id this
  database never handed out) gets a `feed.reset` event first: refetch state, then carry on.
- a lost LISTEN connection ends every local stream: the clients resume from the table.

SQLite: the in-process `EventBus` is the whole feed (one process: loadtests/launcher.py refuses
a multi-worker server on SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from sqlalchemy.engine import make_url

from flashcards import statements as q
from flashcards._async.database import Database
from flashcards._async.listen import Listener
from flashcards.events import (
    Event,
    EventBus,
    event_from_payload,
    make_event,
    notify_payload,
    reset_event,
)
from flashcards.settings import Settings

# Recorded on SQLite, published by the bus once the transaction has committed.
Pending = tuple[int, str, dict[str, Any], datetime]
BACKLOG_PAGE = 500
WRITTEN_USERS_KEPT = 100_000


class Feed:
    def __init__(self, settings: Settings, db: Database, bus: EventBus) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.shared = db.backend == "postgresql"
        self.listener: Listener | None = None
        if self.shared:
            dsn = make_url(settings.dsn).set(drivername="postgresql").render_as_string(hide_password=False)
            self.listener = Listener(dsn, q.FEED_CHANNEL, self._notified, bus.close_all)
        self._next_prune = 0.0
        # user → the newest event id this process committed: a stream opened after that commit
        # skips it when its NOTIFY arrives late (other workers' in-flight events may still come).
        self._written: dict[int, int] = {}
        self.retention = f"{settings.event_retention_s:g} s"

    async def start(self) -> None:
        """LISTEN in this worker (idempotent): before its first subscriber, so it misses nothing."""
        if self.listener is not None:
            await self.listener.start()

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.close()

    def _notified(self, payload: str) -> None:
        self.bus.deliver(event_from_payload(payload))

    async def record(self, conn: Any, user_id: int, type_: str, data: dict[str, Any], now: datetime) -> Pending | Event:
        """Inside the change's transaction, as its last statements (the feed lock is short)."""
        if not self.shared:
            return (user_id, type_, data, now)
        event_id = (await conn.execute(q.reserve_event_id(user_id))).scalar_one()
        event = make_event(event_id, user_id, type_, data, now)
        await conn.execute(q.insert_event(event, notify_payload(event)))
        return event

    async def committed(self, recorded: Pending | Event) -> None:
        """After the commit: SQLite publishes now; PostgreSQL notes the id, prunes when due."""
        if not isinstance(recorded, Event):
            self.bus.publish(*recorded)
            return
        if len(self._written) >= WRITTEN_USERS_KEPT:
            self._written.clear()  # only a refinement: forgetting costs at most a late duplicate
        self._written[recorded.user_id] = max(recorded.id, self._written.get(recorded.user_id, 0))
        if monotonic() >= self._next_prune:
            await self.prune()

    def written_through(self, user_id: int) -> int | None:
        return self._written.get(user_id)

    async def prune(self, now: datetime | None = None) -> int:
        self._next_prune = monotonic() + self.settings.event_prune_interval_s
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self.settings.event_retention_s)
        async with self.db.begin() as conn:
            return int((await conn.execute(q.prune_events(cutoff))).rowcount)

    async def backlog(self, user_id: int, after: int) -> list[Event]:
        """The user's kept events after `after`, a `feed.reset` first when some may be gone."""
        out: list[Event] = []
        async with self.db.connect() as conn:
            bounds = (await conn.execute(q.select_event_bounds())).one()
            if after + 1 < bounds.horizon or after > bounds.newest:
                unknown = after > bounds.newest
                reset_id = bounds.newest if unknown else bounds.horizon - 1
                out.append(reset_event(user_id, after, reset_id, self.retention, unknown=unknown))
                after = reset_id
            while True:
                rows = (await conn.execute(q.select_events_after(user_id, after, BACKLOG_PAGE))).all()
                out.extend(q.event_of(r) for r in rows)
                if len(rows) < BACKLOG_PAGE:
                    return out
                after = rows[-1].id
