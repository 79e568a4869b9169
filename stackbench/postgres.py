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

DEFAULT_DATA_DIR = Path(os.environ.get("STACKBENCH_PGDATA", ".stackbench/pgdata"))
DATABASE = "stackbench"
# Enough for every worker's pool (pool_size + overflow per process) plus tests, and a buffer
# cache that holds the benchmark data set.
SERVER_SETTINGS = {"max_connections": "400", "shared_buffers": "256MB"}


def _server(data_dir: Path):  # type: ignore[no-untyped-def]
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
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user)
        server = _server(data_dir)
    if not database.isidentifier():
        raise ValueError(f"not a database name: {database!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return dsn_for(server.get_uri(database))


def _apply_settings(server) -> bool:  # type: ignore[no-untyped-def]
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
    from pgserver._commands import pg_ctl

    server = _server(data_dir)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=server.system_user)
    return True


def version(dsn: str) -> str:
    import psycopg

    from flashcards.dsn import driver_url

    url = driver_url(dsn, {"postgresql": "postgresql"})
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"
