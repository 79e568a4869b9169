"""The card the database floors read: the app's query (placeholders in each driver's style), the
rest app's `CardOut` body built from its row, and the async floors' asyncpg pool, written once so
the floors answer alike and hold the app's connection budget."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from flashcards.settings import Settings

COLUMNS = ("id, deck_id, front, back, ef_hundredths, interval_days, repetitions, lapses, due_at, "
           "created_at, updated_at")


def card_sql(id_param: str, owner_param: str) -> str:
    """The app's read (`cards.id` and `cards.owner_id`), with the driver's placeholders."""
    return f"SELECT {COLUMNS} FROM cards WHERE id = {id_param} AND owner_id = {owner_param}"


def card_body(row: Mapping[str, Any], stamp: Callable[[datetime], Any]) -> dict[str, Any]:
    """`CardOut`'s fields from a row; `stamp` turns the stored naive-UTC timestamps into what
    the framework serializes as the app does (an aware datetime, or ISO 8601 with `Z`)."""
    return {
        "id": row["id"], "deck_id": row["deck_id"], "front": row["front"], "back": row["back"],
        "ease": row["ef_hundredths"] / 100, "interval_days": row["interval_days"],
        "repetitions": row["repetitions"], "lapses": row["lapses"],
        "due_at": stamp(row["due_at"]), "created_at": stamp(row["created_at"]),
        "updated_at": stamp(row["updated_at"]),
    }


# The DSN the runner gives every stack; asyncpg wants a plain libpq URL (no `+driver`).
ASYNCPG_DSN = re.sub(r"^postgresql\+\w+://", "postgresql://", os.environ.get("STACKBENCH_DSN", ""))


async def asyncpg_pool() -> asyncpg.Pool:
    """The async floors' pool: the app's budget per worker process (its `Settings`, from the same
    STACKBENCH_POOL_SIZE / STACKBENCH_POOL_MAX_OVERFLOW), `pool_size` opened and kept."""
    if not ASYNCPG_DSN.startswith("postgresql://"):
        raise RuntimeError(f"the database floor needs PostgreSQL in STACKBENCH_DSN, got {ASYNCPG_DSN[:40]!r}")
    budget = Settings()
    return await asyncpg.create_pool(ASYNCPG_DSN, min_size=budget.pool_size,
                                     max_size=budget.pool_size + budget.pool_max_overflow)
