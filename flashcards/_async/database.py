"""The database handle: engine, pool, schema. (Async source of truth; see tools/unasync.py.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from flashcards.dsn import ASYNC_DRIVERS, backend_of, connect_args, driver_url, redact
from flashcards.settings import Settings
from flashcards.tables import ALL_TABLES, events, metadata


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not open transactions itself: we BEGIN IMMEDIATE ourselves (below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that later writes can fail with
    # SQLITE_BUSY instead of waiting, and reviews must serialize, not fail.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# PostgreSQL's default, named: the engine's own default is autocommit (reads, `connect`).
TRANSACTION_ISOLATION = "READ COMMITTED"


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = backend_of(settings.dsn)
        options: dict[str, Any] = {
            "connect_args": connect_args(settings.dsn, ASYNC_DRIVERS, settings.db_statement_timeout_ms),
        }
        if self.backend == "postgresql":
            options.update(
                pool_size=settings.pool_size,
                max_overflow=settings.pool_max_overflow,
                pool_timeout=settings.pool_timeout_s,
                pool_pre_ping=settings.pool_pre_ping,
                # Reads need no transaction (each of them is one statement, or a few that read
                # committed data each, as they would in a READ COMMITTED transaction): outside
                # one, a read is one round trip instead of three (BEGIN, the query, ROLLBACK), and
                # the checkout ping is one too (the driver wraps it in BEGIN/ROLLBACK otherwise).
                # Writes take a transaction at PostgreSQL's default level (`begin`).
                isolation_level="AUTOCOMMIT",
            )
        self.engine: AsyncEngine = create_async_engine(driver_url(settings.dsn, ASYNC_DRIVERS), **options)
        # `begin()`'s engine: the same pool, each connection in a transaction while it is held.
        self._transactional: AsyncEngine = (
            self.engine.execution_options(isolation_level=TRANSACTION_ISOLATION)
            if self.backend == "postgresql" else self.engine
        )
        if self.backend == "sqlite":
            target = getattr(self.engine, "sync_engine", self.engine)
            event.listen(target, "connect", _sqlite_pragmas)
            event.listen(target, "begin", _sqlite_begin)

    def begin(self) -> Any:
        """A connection in a transaction, committed on success (`async with db.begin() as conn`)."""
        return self._transactional.begin()

    def connect(self) -> Any:
        """A connection for reads: PostgreSQL runs each statement on its own (autocommit, no
        BEGIN/ROLLBACK round trips); write with `begin`."""
        return self.engine.connect()

    async def create_schema(self) -> None:
        async with self.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def drop_schema(self) -> None:
        async with self.begin() as conn:
            await conn.run_sync(metadata.drop_all)

    async def reset(self) -> None:
        """Empty every table (schema kept), fast on both backends."""
        async with self.begin() as conn:
            await _truncate(conn, self.backend)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    def describe(self) -> dict[str, Any]:
        """What the harness prints beside results."""
        return {
            "backend": self.backend,
            "dsn": redact(self.settings.dsn),
            "driver": self.engine.url.drivername,
            "pool_size": self.settings.pool_size if self.backend == "postgresql" else None,
            "pool_max_overflow": self.settings.pool_max_overflow if self.backend == "postgresql" else None,
        }


async def _truncate(conn: AsyncConnection, backend: str) -> None:
    names = [t.name for t in ALL_TABLES]
    if backend == "postgresql":
        # Event ids keep counting: a Last-Event-ID from before the reset must not match a new
        # event (it is older than every kept one, so its stream starts with `feed.reset`).
        rows = [n for n in names if n != events.name]
        await conn.execute(text(f"TRUNCATE {', '.join(rows)} RESTART IDENTITY CASCADE"))
        await conn.execute(text(f"TRUNCATE {events.name}"))
    else:
        for name in reversed(names):
            # no AUTOINCREMENT keyword: an emptied table hands out ids from 1 again
            await conn.execute(text(f"DELETE FROM {name}"))
