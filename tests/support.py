"""Helpers shared by the test packages (databases, fast settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flashcards.settings import Settings

# argon2 at its cheapest: the tests exercise hashing, not its cost.
FAST_HASH = {"password_time_cost": 1, "password_memory_kib": 64, "password_parallelism": 1}


def postgres_dsn(database: str) -> str:
    """STACKBENCH_TEST_DSN if given (a server the user runs), else the private pgserver."""
    given = os.environ.get("STACKBENCH_TEST_DSN")
    if given:
        return given
    from provision import postgres

    return postgres.start(database=database)


def sqlite_dsn(directory: Path, name: str = "test.sqlite3") -> str:
    return f"sqlite:///{directory / name}"


def make_settings(dsn: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"dsn": dsn, "environment": "test", **FAST_HASH}
    values.update(overrides)
    return Settings(**values)


def fresh_schema(settings: Settings) -> Settings:
    """Drop and recreate the schema of `settings.dsn` (sync driver), for a module's own database."""
    from flashcards._sync.database import Database

    db = Database(settings)
    try:
        db.drop_schema()
        db.create_schema()
    finally:
        db.dispose()
    return settings
