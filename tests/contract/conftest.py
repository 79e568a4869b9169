"""Fixtures of the contract tests: each REST app on a fresh database (PostgreSQL and SQLite), the
committed OpenAPI document bound to it, and the end-of-run summary of generated cases and time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flashcards.settings import Settings
from tests.contract import support
from tests.support import postgres_dsn, sqlite_dsn

REST_IMPLS = ["fastapi", "flask"]
BACKENDS = ["postgresql", "sqlite"]


@dataclass
class RestTarget:
    """One REST app under test: which, on what, its settings, seed data and the app object."""

    impl: str
    backend: str
    settings: Settings
    seed: support.Seed
    app: Any

    @property
    def label(self) -> str:
        return f"{self.impl}/{self.backend}"


def contract_dsn(backend: str, name: str, tmp: Path) -> str:
    if backend == "postgresql":
        return postgres_dsn(f"stackbench_test_contract_{name}")
    return sqlite_dsn(tmp, f"{name}.sqlite3")


def build_app(impl: str, settings: Settings) -> Any:
    if impl == "fastapi":
        from impl_rest import create_app

        return create_app(settings)
    if impl == "flask":
        return support.flask_factory()(settings)
    raise ValueError(impl)


@pytest.fixture(params=[(i, b) for i in REST_IMPLS for b in BACKENDS], ids=lambda p: f"{p[0]}-{p[1]}")
def rest_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RestTarget]:
    """A REST app on its own freshly created database, with a seeded user, deck and card."""
    impl, backend = request.param
    if impl == "flask":
        support.flask_factory()  # skips while the Flask app does not exist yet
    settings = support.contract_settings(contract_dsn(backend, impl, tmp_path))
    support.fresh_database(settings)
    seeded = support.seed(settings)
    app = build_app(impl, settings)
    yield RestTarget(impl, backend, settings, seeded, app)
    if impl == "fastapi":
        # schemathesis runs an ASGI app's lifespan once and keeps it for the process: end it here
        # so the app's Service (and its connection pool) closes with the test.
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not support.TALLIES:
        return
    terminalreporter.section("contract: generated cases and time per part")
    for line in support.summary_lines():
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _tally(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of this package is one line of the summary (its setup and teardown included:
    fixtures are set up inside this one, which every test requests first)."""
    if not hasattr(request.node, "_nodeid"):
        # schemathesis 4.32's `from_fixture` tests read and rename `item._nodeid`, which pytest 9.2
        # no longer has (`nodeid` is derived now): give it the attribute it expects.
        request.node._nodeid = request.node.nodeid
    callspec = getattr(request.node, "callspec", None)
    part = request.node.originalname + (f"[{callspec.id}]" if callspec else "")
    with support.timed(part):
        yield
