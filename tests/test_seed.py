"""Seed data: deterministic, identical on both backends, and a realistic due/not-due mix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from flashcards._sync.database import Database
from flashcards.tables import ALL_TABLES
from provision.seed import SeedPlan, generate, seed
from tests.support import make_settings, postgres_dsn, sqlite_dsn

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLAN = SeedPlan(users=3, decks_per_user=2, cards_per_deck=25, seed=7)


def dump(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    db = Database(make_settings(dsn))
    try:
        with db.connect() as conn:
            return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))] for t in ALL_TABLES}
    finally:
        db.dispose()


def test_same_seed_same_rows_on_every_backend(tmp_path: Path) -> None:
    pg, lite = postgres_dsn("stackbench_test_seed"), sqlite_dsn(tmp_path)
    results = [seed(make_settings(dsn), PLAN, now=NOW) for dsn in (pg, lite)]
    assert results[0].cards == results[1].cards == PLAN.total_cards
    assert results[0].reviews == results[1].reviews > 0
    pg_rows, lite_rows = dump(pg), dump(lite)
    assert pg_rows == lite_rows
    assert len(pg_rows["cards"]) == 150


def test_seed_is_deterministic_and_mixed() -> None:
    a = generate(PLAN, NOW, "hash")
    b = generate(PLAN, NOW, "hash")
    assert a == b
    other = generate(SeedPlan(3, 2, 25, seed=8), NOW, "hash")
    assert other["cards"] != a["cards"]
    due = [c for c in a["cards"] if c[9] <= NOW]
    assert 0.2 * len(a["cards"]) < len(due) < 0.95 * len(a["cards"])  # some due, some not
    assert {r[3] for r in a["reviews"]} == set(range(6))  # every grade appears


def test_seeded_users_can_log_in(tmp_path: Path) -> None:
    from flashcards._sync.service import Service
    from provision.seed import SEED_PASSWORD

    settings = make_settings(sqlite_dsn(tmp_path, "login.sqlite3"))
    seed(settings, SeedPlan(1, 1, 1), now=NOW)
    service = Service(settings)
    try:
        token = service.login({"username": "user00001", "password": SEED_PASSWORD})
        assert service.authenticate(f"Bearer {token.access_token}") == 1
    finally:
        service.close()
