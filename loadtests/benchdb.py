"""The benchmark database: seeded once per run, restored cheaply before each write cell.

PostgreSQL: the seed goes into a template database and every write cell gets a fresh copy
(`CREATE DATABASE … TEMPLATE …`, a file copy: about a second for 100k cards). SQLite: a file
copy. Read cells share one copy: they change nothing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from flashcards._sync.database import Database
from flashcards.settings import Settings
from flashcards.tables import reviews
from stackbench.seed import SeedPlan, SeedResult, seed

TEMPLATE, WORKING = "stackbench_bench_template", "stackbench_bench"


@dataclass
class BenchDatabase:
    base_dsn: str  # a DSN on the server (PostgreSQL) or a path (SQLite) to derive names from
    plan: SeedPlan
    seeded: SeedResult | None = None
    seeded_at: datetime | None = None

    @property
    def backend(self) -> str:
        return make_url(self.base_dsn).get_backend_name()

    def _dsn(self, name: str) -> str:
        url = make_url(self.base_dsn)
        if self.backend == "sqlite":
            folder = Path(url.database or ".stackbench/bench.sqlite3").parent
            return f"sqlite:///{folder / (name + '.sqlite3')}"
        return url.set(database=name).render_as_string(hide_password=False)

    @property
    def dsn(self) -> str:
        """What the servers under test connect to."""
        return self._dsn(WORKING)

    def prepare(self) -> SeedResult:
        """Seed the template (once per run) and make the working copy."""
        self.seeded_at = datetime.now(UTC).replace(microsecond=0)
        if self.backend == "postgresql":
            self._admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}")
        else:
            Path(make_url(self._dsn(TEMPLATE)).database or "").unlink(missing_ok=True)
        self.seeded = seed(Settings(dsn=self._dsn(TEMPLATE)), self.plan, now=self.seeded_at)
        self.restore()
        return self.seeded

    def restore(self) -> None:
        """A fresh working copy of the seeded template (no server may be connected)."""
        if self.backend == "postgresql":
            self._admin(
                f"DROP DATABASE IF EXISTS {WORKING} WITH (FORCE)",
                f"CREATE DATABASE {WORKING} TEMPLATE {TEMPLATE}",
            )
        else:
            src = Path(make_url(self._dsn(TEMPLATE)).database or "")
            dst = Path(make_url(self.dsn).database or "")
            for suffix in ("-wal", "-shm"):
                Path(str(dst) + suffix).unlink(missing_ok=True)
            shutil.copyfile(src, dst)

    def count_reviews(self) -> int:
        db = Database(Settings(dsn=self.dsn))
        try:
            with db.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(reviews)).scalar_one())
        finally:
            db.dispose()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "plan": {"users": self.plan.users, "decks_per_user": self.plan.decks_per_user,
                     "cards_per_deck": self.plan.cards_per_deck, "seed": self.plan.seed},
            "seeded": vars(self.seeded) if self.seeded else None,
        }

    def _admin(self, *statements: str) -> None:
        import psycopg

        url = make_url(self.base_dsn).set(drivername="postgresql", database="postgres")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]
