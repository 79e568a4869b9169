"""A private PostgreSQL server with no manual step (the `pgserver` package: PostgreSQL 16).

The server listens on a Unix socket inside its data directory only (no TCP port to collide
with). It outlives the process that started it, so `stackbench db start` in one shell serves
the tests and benchmarks of another; `stackbench db stop` ends it. A DSN given by the user
(`--dsn` / `STACKBENCH_DSN`) bypasses all of this.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver import PostgresServer

DEFAULT_DATA_DIR = Path(os.environ.get("STACKBENCH_PGDATA", ".stackbench/pgdata"))
DATABASE = "stackbench"
# Enough for every worker's pool (pool_size + overflow per process) plus tests, and a buffer
# cache that holds the benchmark data set.
SERVER_SETTINGS = {"max_connections": "400", "shared_buffers": "256MB"}


def _server(data_dir: Path) -> PostgresServer:
    import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    # pgserver caches one handle per directory: after a `stop()` in this process it would hand
    # back the stopped server, so start it again through the same handle.
    with server._lock:
        server.ensure_postgres_running()
    return server


def start(data_dir: Path = DEFAULT_DATA_DIR, database: str = DATABASE) -> str:
    """Start (or find running) the private server; return a DSN for `database` (created if new)."""
    server = _server(data_dir)
    if _apply_settings(server):
        _pg_ctl(["-w", "restart"], server.pgdata, server.system_user)
        server = _server(data_dir)
    if not database.isidentifier():
        raise ValueError(f"not a database name: {database!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return dsn_for(server.get_uri(database))


def _apply_settings(server: PostgresServer) -> bool:
    changed = False
    for name, value in SERVER_SETTINGS.items():
        current = server.psql(f"SHOW {name};").split("\n")[2].strip()
        if current != value:
            server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
            changed = True
    return changed


def dsn_for(uri: str) -> str:
    """pgserver gives `postgresql://postgres:@/db?host=DIR`; drop the empty password."""
    return uri.replace("postgres:@", "postgres@")


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the private server if it runs; returns whether one was running."""
    data_dir = data_dir.resolve()
    if not (data_dir / "postmaster.pid").exists():
        return False
    server = _server(data_dir)
    _pg_ctl(["-w", "-m", "fast", "stop"], data_dir, server.system_user)
    return True


def _pg_ctl(args: list[str], pgdata: Path, user: str | None) -> None:
    # pgserver defines one function per bundled binary at import time (setattr over its bin/
    # directory), so its type information has no `pg_ctl`.
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(args, pgdata=pgdata, user=user)


def version(dsn: str) -> str:
    import psycopg

    from flashcards.dsn import driver_url

    url = driver_url(dsn, {"postgresql": "postgresql"})
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"
