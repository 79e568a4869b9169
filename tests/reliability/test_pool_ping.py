"""The checkout ping's bypass (flashcards/_async/database.py, `_ping_unless_recent`): a pooled
connection the server closed a moment ago (inside the bypass window) is still found dead at
checkout and replaced, so the read after it succeeds; a live, recently used one is not pinged."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import event, text

from flashcards._async.database import Database as AsyncDatabase
from flashcards._sync.database import Database as SyncDatabase
from tests.support import make_settings, postgres_dsn

KILL_OTHERS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn("stackbench_test_pool_ping")


GONE = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
WAIT_FOR_EXIT_S = 5.0


def _pings(engine: Any) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_sync_pool_replaces_a_connection_the_server_just_closed(dsn: str) -> None:
    db = SyncDatabase(make_settings(dsn, pool_size=1, pool_max_overflow=0))
    killer = SyncDatabase(make_settings(dsn, pool_size=1, pool_max_overflow=0))
    try:
        with db.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with killer.connect() as conn:  # the server closes the pooled connection (a restart's effect)
            conn.execute(KILL_OTHERS)
            # pg_terminate_backend only signals: wait until the backend has exited (its socket
            # closed), else the checkout can find it alive and the query meet the shutdown
            deadline = time.monotonic() + WAIT_FOR_EXIT_S
            while conn.execute(GONE, {"pid": pid}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.01)
        with db.connect() as conn:  # well inside the bypass window
            assert conn.execute(text("SELECT 2")).scalar_one() == 2
        statements = _pings(db.engine)
        with db.connect() as conn:  # alive and just used: no ping, only the query
            conn.execute(text("SELECT 3"))
        assert statements == ["SELECT 3"]
    finally:
        db.dispose()
        killer.dispose()


def test_async_pool_replaces_a_connection_the_server_just_closed(dsn: str) -> None:
    async def main() -> None:
        db = AsyncDatabase(make_settings(dsn, pool_size=1, pool_max_overflow=0))
        killer = AsyncDatabase(make_settings(dsn, pool_size=1, pool_max_overflow=0))
        try:
            async with db.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with killer.connect() as conn:
                await conn.execute(KILL_OTHERS)
                # as in the sync test: wait until the backend has exited
                for _ in range(int(WAIT_FOR_EXIT_S / 0.01)):
                    if not (await conn.execute(GONE, {"pid": pid})).scalar_one():
                        break
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the loop reads the server's goodbye (as it would while idle)
            async with db.connect() as conn:
                assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
            statements = _pings(db.engine.sync_engine)
            async with db.connect() as conn:
                await conn.execute(text("SELECT 3"))
            assert statements == ["SELECT 3"]
        finally:
            await db.dispose()
            await killer.dispose()

    asyncio.run(main())
