"""The database handle: engine, pool, schema. (Async source of truth; see tools/unasync.py.)"""

from __future__ import annotations

import select
from time import monotonic
from typing import Any

from sqlalchemy import event, exc, text
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


_CHECKED_IN_AT = "stackbench_checked_in_at"


def _ping_unless_recent(engine: Any, bypass_s: float) -> None:
    """SQLAlchemy's pre-ping (one round trip per checkout: without it, the first request after a
    database restart fails on a dead pooled connection), skipped for a connection checked in
    less than `bypass_s` ago whose socket shows no sign of the server going away (`_quiet`:
    no round trip). A ping that finds the connection gone invalidates the whole pool,
    as SQLAlchemy's does, and the checkout is retried on a new connection."""
    dialect = engine.dialect

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_CHECKED_IN_AT] = monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None:  # a new connection (`info` starts empty with each one)
            return
        if monotonic() - checked_in_at < bypass_s and _quiet(record.driver_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error
            raise

    event.listen(engine.pool, "checkin", checkin)
    event.listen(engine.pool, "checkout", checkout)


def _quiet(driver_connection: Any) -> bool:
    """The connection is open and the server has said nothing since it was checked in. A server
    that stops (a restart, a fast shutdown) closes its connections, and says so first: asyncpg's
    protocol sees that as it comes (the event loop reads every socket); psycopg's socket is
    then readable (the termination notice, or end of file)."""
    is_closed = getattr(driver_connection, "is_closed", None)
    if callable(is_closed):  # asyncpg
        return not is_closed()
    if driver_connection.closed or driver_connection.broken:  # psycopg
        return False
    readable, _, _ = select.select([driver_connection.fileno()], [], [], 0)
    return not readable


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
                # the ping is ours (`_ping_unless_recent`): SQLAlchemy's pings every checkout
                pool_pre_ping=settings.pool_pre_ping and settings.pool_ping_bypass_s <= 0,
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
        if self.backend == "postgresql" and settings.pool_pre_ping and settings.pool_ping_bypass_s > 0:
            _ping_unless_recent(getattr(self.engine, "sync_engine", self.engine), settings.pool_ping_bypass_s)
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
