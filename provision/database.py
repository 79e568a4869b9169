"""Which database a command uses: `--dsn`, else STACKBENCH_DSN, else the private PostgreSQL."""

from __future__ import annotations

import os

from provision import postgres


def resolve_dsn(dsn: str | None = None, database: str = postgres.DATABASE) -> str:
    if dsn:
        return dsn
    if os.environ.get("STACKBENCH_DSN"):
        return os.environ["STACKBENCH_DSN"]
    return postgres.start(database=database)
