"""The event feed's one LISTEN connection per worker process: asyncpg, on the event loop.

Hand-written on both sides (`flashcards/_sync/listen.py` is psycopg in a thread): the two drivers
receive notifications in ways with no textual twin. `start()` returns once LISTEN is active;
a lost connection calls `on_lost` (the feed ends every local stream, whose clients resume from
the table) and the next `start()` connects again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg


class Listener:
    def __init__(self, dsn: str, channel: str, on_payload: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_payload = on_payload
        self.on_lost = on_lost
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed() and self._loop is asyncio.get_running_loop()

    async def start(self) -> None:
        if self.listening:
            return
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop, self._conn = asyncio.Lock(), loop, None  # a connection is bound to its loop
        async with self._lock:
            if self.listening:
                return
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                raise ConnectionError(f"the event feed cannot LISTEN: {exc}") from exc
            await conn.add_listener(self.channel, self._notified)
            conn.add_termination_listener(self._terminated)
            self._conn = conn

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_payload(payload)

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._conn = None
            self.on_lost()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed() and self._loop is asyncio.get_running_loop():
            await conn.close()
