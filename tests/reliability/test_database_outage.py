"""Database down or restarted: readiness fails fast, requests get 503 problem documents within a
bounded time (never a 500 or a hang), and each app recovers by itself when the database returns.

Runs a PostgreSQL server of its own (stopped and started by the test), so the shared test
server is never disturbed. Every implementation is driven in-process by the same steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flashcards import security
from flashcards.settings import Settings
from provision import postgres
from tests.support import fresh_schema, make_settings

# Each request must be answered within this, database or not (connect timeout 5 s, plus slack).
BOUND_S = 8.0
CARD_QUERY = '{"query": "{ card(card_id: \\"1\\") { id front } }"}'


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    data = tmp_path_factory.mktemp("outage") / "pgdata"
    dsn = postgres.start(data, database="outage")
    try:
        yield data, dsn
    finally:
        postgres.stop(data)


def _seed(settings: Settings) -> str:
    fresh_schema(settings)
    from flashcards._sync.service import Service

    service = Service(settings)
    user = service.register({"username": "outage", "display_name": "O", "password": "password1"})
    deck = service.create_deck(user.id, {"title": "d"})
    service.create_card(user.id, deck.id, {"front": "f", "back": "b"})
    service.close()
    return security.issue_token(settings, user.id)


Probe = Callable[[], httpx.Response]


def _client(impl: str, settings: Settings) -> Any:
    if impl == "rest":
        from starlette.testclient import TestClient

        from impl_rest import create_app

        return TestClient(create_app(settings), raise_server_exceptions=False)
    if impl == "graphql":
        from starlette.testclient import TestClient

        from impl_graphql import create_app as create_graphql

        return TestClient(create_graphql(settings), raise_server_exceptions=False)
    flask_app = pytest.importorskip("impl_flask_baseline")
    return httpx.Client(transport=httpx.WSGITransport(app=flask_app.create_app(settings)), base_url="http://testserver")


def _unavailable(impl: str, response: httpx.Response) -> bool:
    if impl == "graphql":
        errors = response.json().get("errors") or []
        return response.status_code == 200 and [e["extensions"]["code"] for e in errors] == ["UNAVAILABLE"]
    return (
        response.status_code == 503
        and response.headers["content-type"].startswith("application/problem+json")
        and response.json()["code"] == "UNAVAILABLE"
    )


def _ok(impl: str, response: httpx.Response) -> bool:
    if impl == "graphql":
        return response.status_code == 200 and response.json().get("data", {}).get("card", {}).get("front") == "f"
    return response.status_code == 200 and response.json()["front"] == "f"


@pytest.mark.parametrize("impl", ["rest", "flask", "graphql"])
def test_outage_gives_503_fast_and_recovers(impl: str, own_postgres: tuple[Path, str]) -> None:
    data, dsn = own_postgres
    settings = make_settings(dsn, pool_timeout_s=3.0)
    token = _seed(settings)
    headers = {"Authorization": f"Bearer {token}"}
    with _client(impl, settings) as client:

        def read_card() -> httpx.Response:
            if impl == "graphql":
                return client.post("/graphql", content=CARD_QUERY, headers={**headers, "content-type": "application/json"})
            return client.get("/api/cards/1", headers=headers)

        def timed(fn: Probe) -> httpx.Response:
            started = time.monotonic()
            response = fn()
            assert time.monotonic() - started < BOUND_S, "a request hung while the database was down"
            return response

        assert _ok(impl, timed(read_card))
        assert client.get("/api/health/ready").status_code == 200

        postgres.stop(data)
        try:
            ready = timed(lambda: client.get("/api/health/ready"))
            assert ready.status_code == 503
            for _ in range(3):
                response = timed(read_card)
                assert _unavailable(impl, response), response.text
        finally:
            postgres.start(data, database="outage")

        deadline = time.monotonic() + 15
        answers = []
        while time.monotonic() < deadline:
            response = timed(read_card)
            answers.append(response.status_code)
            if _ok(impl, response):
                break
            assert _unavailable(impl, response), response.text
            time.sleep(0.2)
        else:
            pytest.fail(f"{impl} did not recover within 15 s: {answers}")
        assert _ok(impl, timed(read_card)), "recovered once, then failed again"


def test_first_request_after_a_restart_succeeds_in_every_app(own_postgres: tuple[Path, str]) -> None:
    """The database restarts while the apps hold pooled connections and no request comes in: the
    next request must not fail on a dead connection (it did, once per process, before the pool
    pinged its connections at checkout: `Settings.pool_pre_ping`)."""
    data, dsn = own_postgres
    settings = make_settings(dsn, pool_timeout_s=3.0)
    token = _seed(settings)
    headers = {"Authorization": f"Bearer {token}"}
    impls = ["rest", "flask", "graphql"]
    clients = {impl: _client(impl, settings) for impl in impls}

    def read_card(impl: str) -> httpx.Response:
        client = clients[impl]
        if impl == "graphql":
            return client.post("/graphql", content=CARD_QUERY, headers={**headers, "content-type": "application/json"})
        return client.get("/api/cards/1", headers=headers)

    try:
        for client in clients.values():
            client.__enter__()
        assert all(_ok(impl, read_card(impl)) for impl in impls)  # every pool now holds a connection
        postgres.stop(data)
        postgres.start(data, database="outage")
        first = {impl: read_card(impl) for impl in impls}
        assert {impl: _ok(impl, r) for impl, r in first.items()} == dict.fromkeys(impls, True), \
            {impl: r.text[:200] for impl, r in first.items()}
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)


@pytest.mark.parametrize("error", ["AdminShutdownError", "CannotConnectNowError", "TooManyConnectionsError",
                                   "ConnectionDoesNotExistError"])
def test_database_going_away_is_unavailable_not_a_bug(error: str) -> None:
    """asyncpg's errors while PostgreSQL shuts down or refuses new connections are not
    OperationalErrors (they were 500s); their SQLSTATE says unavailable. A real bug stays one."""
    import asyncpg.exceptions
    import psycopg.errors
    from sqlalchemy.exc import DBAPIError

    from flashcards.web import database_unavailable

    orig = getattr(asyncpg.exceptions, error)("the database system is shutting down")
    assert database_unavailable(DBAPIError("SELECT 1", None, orig)) is not None
    pg = {"AdminShutdownError": psycopg.errors.AdminShutdown, "CannotConnectNowError": psycopg.errors.CannotConnectNow,
          "TooManyConnectionsError": psycopg.errors.TooManyConnections,
          "ConnectionDoesNotExistError": psycopg.errors.ConnectionDoesNotExist}[error]
    assert database_unavailable(DBAPIError("SELECT 1", None, pg("gone"))) is not None
    syntax = DBAPIError("SELEC 1", None, asyncpg.exceptions.PostgresSyntaxError("syntax error"))
    assert database_unavailable(syntax) is None
