"""Deterministic seed data, bulk-inserted (COPY on PostgreSQL, executemany on SQLite).

For a given seed and `now`, every backend receives byte-identical rows (ids included): users
share one password (`SEED_PASSWORD`, so load generators can log in) whose argon2 hash uses a
salt derived from the seed. Each card gets a review history simulated with the real SM-2
function, so the due/not-due mix and the review table look like a service in use.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from flashcards import sm2
from flashcards._sync.database import Database
from flashcards.security import hash_password_deterministic
from flashcards.settings import Settings
from flashcards.tables import cards, decks, reviews, users

SEED_PASSWORD = "stackbench-password"
WORDS = (
    "hola adios gracias perro gato casa libro agua fuego tierra cielo mar sol luna rojo azul verde "
    "comer beber dormir correr hablar leer escribir grande pequeño rápido lento nuevo viejo"
).split()
# Grades as learners give them: mostly passes, some lapses.
GRADE_WEIGHTS = (0.04, 0.06, 0.10, 0.25, 0.35, 0.20)


@dataclass(frozen=True)
class SeedPlan:
    users: int
    decks_per_user: int
    cards_per_deck: int
    seed: int = 1
    max_reviews_per_card: int = 6

    @property
    def total_cards(self) -> int:
        return self.users * self.decks_per_user * self.cards_per_deck


@dataclass(frozen=True)
class SeedResult:
    users: int
    decks: int
    cards: int
    reviews: int
    due_now: int
    seconds: float


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(plan: SeedPlan, now: datetime, password_hash: str) -> dict[str, list[tuple[Any, ...]]]:
    """All rows, as tuples in table column order, ids assigned from 1."""
    rng = random.Random(plan.seed)
    rows: dict[str, list[tuple[Any, ...]]] = {"users": [], "decks": [], "cards": [], "reviews": []}
    deck_id = card_id = review_id = 0
    for u in range(1, plan.users + 1):
        created = now - timedelta(days=90)
        rows["users"].append((u, f"user{u:05d}", f"User {u}", password_hash, created))
        for _ in range(plan.decks_per_user):
            deck_id += 1
            rows["decks"].append(
                (deck_id, u, f"Deck {deck_id}: {_words(rng, 2)}", _words(rng, 6), created, created)
            )
            for _ in range(plan.cards_per_deck):
                card_id += 1
                born = now - timedelta(days=rng.randint(1, 60), seconds=rng.randint(0, 86_399))
                state = sm2.Schedule(due_at=born)
                at = born
                for _ in range(rng.randint(0, plan.max_reviews_per_card)):
                    if state.due_at is None or state.due_at >= now:
                        break
                    at = max(at, state.due_at) + timedelta(minutes=rng.randint(0, 600))
                    if at >= now:
                        break
                    grade = rng.choices(range(6), GRADE_WEIGHTS)[0]
                    after = sm2.review(state, grade, at)
                    review_id += 1
                    rows["reviews"].append(
                        (
                            review_id, card_id, u, grade, at,
                            state.ef_hundredths, state.interval_days, state.repetitions, state.lapses, state.due_at,
                            after.ef_hundredths, after.interval_days, after.repetitions, after.lapses, after.due_at,
                        )
                    )
                    state = after
                rows["cards"].append(
                    (
                        card_id, deck_id, u, _words(rng, 3), _words(rng, 4),
                        state.ef_hundredths, state.interval_days, state.repetitions, state.lapses,
                        state.due_at, born, at,
                    )
                )
    return rows


def seed(settings: Settings, plan: SeedPlan, *, now: datetime | None = None, reset: bool = True,
         progress: Callable[[str], None] | None = None) -> SeedResult:
    started = time.perf_counter()
    now = now or datetime.now(UTC).replace(microsecond=0)
    note = progress or (lambda _msg: None)
    db = Database(settings)
    try:
        db.create_schema()
        if reset:
            db.reset()
        note("generating rows")
        password_hash = hash_password_deterministic(settings, SEED_PASSWORD, f"seed-{plan.seed}")
        rows = generate(plan, now, password_hash)
        for table in (users, decks, cards, reviews):
            note(f"inserting {len(rows[table.name])} {table.name}")
            with db.begin() as conn:
                if db.backend == "postgresql":
                    _copy(conn, table.name, [c.name for c in table.columns], rows[table.name])
                else:
                    names = [c.name for c in table.columns]
                    for batch in _batches(rows[table.name], 5000):
                        conn.execute(insert(table), [dict(zip(names, r, strict=True)) for r in batch])
        if db.backend == "postgresql":
            with db.begin() as conn:
                for table in (users, decks, cards, reviews):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"
                    ))
                conn.execute(text("ANALYZE"))
        due = sum(1 for c in rows["cards"] if c[9] <= now)
        return SeedResult(
            users=len(rows["users"]), decks=len(rows["decks"]), cards=len(rows["cards"]),
            reviews=len(rows["reviews"]), due_now=due, seconds=time.perf_counter() - started,
        )
    finally:
        db.dispose()


def _batches(rows: Sequence[tuple[Any, ...]], size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _naive_utc(value: Any) -> Any:
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value


def _copy(conn: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    raw = conn.connection.driver_connection  # psycopg 3 connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(_naive_utc(v) for v in row))
