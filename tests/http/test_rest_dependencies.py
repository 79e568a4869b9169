"""The FastAPI app's per-request dependencies run on the event loop: no thread-pool hop.

FastAPI runs a plain `def` dependency with `anyio.to_thread.run_sync`; every request to a
signed-in route used to pay two such hops (`get_service`, `current_user`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import Depends, Request
from fastapi.testclient import TestClient

from flashcards._sync.database import Database
from impl_rest import create_app
from impl_rest.dependencies import current_user, get_service
from tests.support import make_settings, sqlite_dsn


def test_dependencies_are_coroutine_functions() -> None:
    assert asyncio.iscoroutinefunction(get_service)
    assert asyncio.iscoroutinefunction(current_user)


def plain(request: Request) -> int:
    return 1


async def probe(value: Annotated[int, Depends(plain)]) -> dict[str, int]:
    return {"value": value}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(sqlite_dsn(tmp_path))
    db = Database(settings)
    db.create_schema()
    db.dispose()
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_a_signed_in_read_never_touches_the_thread_pool(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    account = {"username": "dep_user", "display_name": "Dep", "password": "correct horse battery"}
    assert client.post("/api/auth/register", json=account).status_code == 201
    login = {"username": account["username"], "password": account["password"]}
    token = client.post("/api/auth/token", json=login).json()["access_token"]
    auth = {"authorization": f"Bearer {token}"}
    deck = client.post("/api/decks", json={"title": "d"}, headers=auth).json()
    card = client.post(f"/api/decks/{deck['id']}/cards", json={"front": "f", "back": "b"}, headers=auth).json()

    calls: list[Any] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    for path in (f"/api/cards/{card['id']}", "/api/me", "/api/config", f"/api/decks/{deck['id']}"):
        response = client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.text)
    assert client.get("/api/me").status_code == 401  # the failing dependency too
    assert calls == []

    # The counter sees a hop when there is one: a route with a plain `def` dependency.
    client.app.get("/probe")(probe)  # type: ignore[attr-defined]
    assert client.get("/probe").json() == {"value": 1}
    assert len(calls) == 1
