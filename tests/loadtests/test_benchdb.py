"""The bench's databases are its own (issue 20): named for the run, so two runs on one server
keep each other's data, the database named in the DSN (the user's) is never dropped, and a run
removes its databases at the end. Before, every run dropped and recreated the fixed names
`stackbench_bench` and `stackbench_bench_template`. And `bench --dsn` to a server of the user's
says what it will create and asks for `--create-databases`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from flashcards._sync.database import Database
from flashcards.settings import Settings
from loadtests.benchdb import BenchDatabase
from provision.seed import SeedPlan
from stackbench.cli import app
from tests.support import postgres_dsn, sqlite_dsn

TINY = SeedPlan(users=1, decks_per_user=1, cards_per_deck=3, seed=1)


def _scalar(dsn: str, sql: str) -> int:
    db = Database(Settings(dsn=dsn))
    try:
        with db.begin() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        db.dispose()


def _execute(dsn: str, sql: str) -> None:
    db = Database(Settings(dsn=dsn))
    try:
        with db.begin() as conn:
            conn.execute(text(sql))
    finally:
        db.dispose()


def _databases(dsn: str) -> set[str]:
    db = Database(Settings(dsn=dsn))
    try:
        with db.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT datname FROM pg_database"))}
    finally:
        db.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_two_runs_keep_each_others_data_and_the_users_database(backend: str, tmp_path: Path) -> None:
    user_dsn = postgres_dsn("stackbench_users_own") if backend == "postgresql" else sqlite_dsn(tmp_path, "own.sqlite3")
    db = Database(Settings(dsn=user_dsn))
    try:
        with db.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS precious (v integer)"))
            conn.execute(text("DELETE FROM precious"))
            conn.execute(text("INSERT INTO precious VALUES (42)"))
    finally:
        db.dispose()
    first, second = BenchDatabase(user_dsn, TINY), BenchDatabase(user_dsn, TINY)
    assert first.dsn != second.dsn and first.dsn != user_dsn
    try:
        first.prepare()
        _execute(first.dsn, "DELETE FROM reviews")  # a write cell of the first run…
        second.prepare()  # …and a second run starting on the same server
        assert first.count_reviews() == 0 and second.count_reviews() > 0
        first.drop()
        assert second.count_reviews() > 0  # the other run's data survives the first one's clean-up
        if backend == "postgresql":
            names = _databases(user_dsn)
            assert first.working_name not in names and first.template_name not in names
            assert second.working_name in names
        else:
            assert not Path(first.dsn.removeprefix("sqlite:///")).exists()
    finally:
        first.drop()
        second.drop()
    assert _scalar(user_dsn, "SELECT v FROM precious") == 42
    assert first.describe()["databases"] == [first.working_name, first.template_name]


def test_bench_on_a_users_server_asks_before_creating_databases() -> None:
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--dsn", "postgresql://me@db.example:5432/prod"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--create-databases" in lines[0] and "stackbench_bench_<run tag>" in lines[0]
