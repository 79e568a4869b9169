"""Database URLs and driver options for the async service and its sync twin."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, make_url

ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite+pysqlite"}


def backend_of(dsn: str) -> str:
    return make_url(dsn).get_backend_name()


def driver_url(dsn: str, drivers: dict[str, str]) -> URL:
    url = make_url(dsn)
    return url.set(drivername=drivers[url.get_backend_name()])


def connect_args(dsn: str, drivers: dict[str, str], statement_timeout_ms: int) -> dict[str, Any]:
    driver = drivers[backend_of(dsn)]
    if driver == "postgresql+asyncpg":
        return {
            "server_settings": {"statement_timeout": str(statement_timeout_ms)},
            "timeout": 5,
        }
    if driver == "postgresql+psycopg":
        return {"options": f"-c statement_timeout={statement_timeout_ms}", "connect_timeout": 5}
    return {"timeout": 30}


def redact(dsn: str) -> str:
    return make_url(dsn).render_as_string(hide_password=True)
