from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres_dsn, sqlite_dsn

BACKENDS = ["postgresql", "sqlite"]


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stackbench")


@pytest.fixture(scope="session", params=BACKENDS)
def backend_dsn(request: pytest.FixtureRequest, session_tmp: Path) -> Iterator[str]:
    """Each integration test runs on real PostgreSQL and on SQLite."""
    if request.param == "postgresql":
        yield postgres_dsn("stackbench_test_service")
    else:
        yield sqlite_dsn(session_tmp, "service.sqlite3")
