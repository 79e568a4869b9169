"""The benchmark database: seeded once per run, restored cheaply before each write cell.

PostgreSQL: the seed goes into a template database and every write cell gets a fresh copy
(`CREATE DATABASE … TEMPLATE …`, a file copy: about a second for 100k cards). SQLite: a file
copy. Read cells share one copy: they change nothing.

Both databases are named for the run (`stackbench_bench_<tag>` and `…_template_<tag>`, the tag
unique per run), so two runs on one server never drop each other's data, a database of the
user's is never touched (the one named in the DSN only serves to reach the server), and `drop()`
removes both at the end of the run.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from flashcards._sync.database import Database
from flashcards.settings import Settings
from flashcards.tables import reviews
from provision.seed import SeedPlan, SeedResult, seed

PREFIX = "stackbench_bench"


def run_tag() -> str:
    """Short, unique per run, and a valid unquoted identifier part."""
    return secrets.token_hex(4)


@dataclass
class BenchDatabase:
    base_dsn: str  # a DSN on the server (PostgreSQL) or a path (SQLite) to derive names from
    plan: SeedPlan
    seeded: SeedResult | None = None
    seeded_at: datetime | None = None
    tag: str = field(default_factory=run_tag)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,30}", self.tag):
            raise ValueError(f"database tag {self.tag!r}: lower-case letters, digits and _ only")

    @property
    def template_name(self) -> str:
        return f"{PREFIX}_template_{self.tag}"

    @property
    def working_name(self) -> str:
        return f"{PREFIX}_{self.tag}"

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
        return self._dsn(self.working_name)

    def prepare(self) -> SeedResult:
        """Seed the template (once per run) and make the working copy."""
        self.seeded_at = datetime.now(UTC).replace(microsecond=0)
        if self.backend == "postgresql":
            self._admin(f"DROP DATABASE IF EXISTS {self.template_name} WITH (FORCE)",
                        f"CREATE DATABASE {self.template_name}")
        else:
            Path(make_url(self._dsn(self.template_name)).database or "").unlink(missing_ok=True)
        self.seeded = seed(Settings(dsn=self._dsn(self.template_name)), self.plan, now=self.seeded_at)
        self.restore()
        return self.seeded

    def restore(self) -> None:
        """A fresh working copy of the seeded template (no server may be connected)."""
        if self.backend == "postgresql":
            self._admin(
                f"DROP DATABASE IF EXISTS {self.working_name} WITH (FORCE)",
                f"CREATE DATABASE {self.working_name} TEMPLATE {self.template_name}",
            )
        else:
            src = Path(make_url(self._dsn(self.template_name)).database or "")
            dst = Path(make_url(self.dsn).database or "")
            for suffix in ("-wal", "-shm"):
                Path(str(dst) + suffix).unlink(missing_ok=True)
            shutil.copyfile(src, dst)

    def drop(self) -> None:
        """Remove this run's two databases (or files); nothing else on the server."""
        if self.backend == "postgresql":
            self._admin(*(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in (self.working_name, self.template_name)))
            return
        for name in (self.working_name, self.template_name):
            path = Path(make_url(self._dsn(name)).database or "")
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)

    def count_reviews(self) -> int:
        db = Database(Settings(dsn=self.dsn))
        try:
            with db.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(reviews)).scalar_one())
        finally:
            db.dispose()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "databases": [self.working_name, self.template_name],
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
