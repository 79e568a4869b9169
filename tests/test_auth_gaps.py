"""Auth gaps found attacking the running apps (issue 20): secrets, forged ids, tokens of users
that no longer exist. Every app is driven in-process through the same requests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pydantic
import pytest

from flashcards import security
from flashcards._sync.database import Database
from flashcards.settings import DEFAULT_SECRET, Settings
from tests.support import make_settings

IMPLS = ["rest", "flask", "graphql"]


@pytest.mark.parametrize(
    "secret",
    ["", "a", "secret", DEFAULT_SECRET, "short-but-random-9f8e7d", "a" * 64, "secret" * 8, "0101" * 16],
)
def test_production_refuses_weak_secrets(secret: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="32 random bytes"):
        Settings(environment="production", jwt_secret=secret)


def test_production_accepts_a_random_secret() -> None:
    for _ in range(20):
        assert Settings(environment="production", jwt_secret=secrets.token_urlsafe(32)).environment == "production"
    assert Settings(environment="production", jwt_secret=secrets.token_hex(32)).environment == "production"


def test_serve_gives_every_instance_its_own_random_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackbench.serve import app_environment

    monkeypatch.delenv("STACKBENCH_JWT_SECRET", raising=False)
    one = app_environment("sqlite:///x.sqlite3", "http://127.0.0.1:1/v1")
    two = app_environment("sqlite:///x.sqlite3", "http://127.0.0.1:1/v1")
    assert one["STACKBENCH_JWT_SECRET"] != two["STACKBENCH_JWT_SECRET"]
    assert one["STACKBENCH_ENVIRONMENT"] == "production"
    settings = Settings(environment="production", jwt_secret=one["STACKBENCH_JWT_SECRET"])
    assert settings.jwt_secret != DEFAULT_SECRET


def _client(impl: str, settings: Settings) -> Any:
    from starlette.testclient import TestClient

    if impl == "rest":
        from impl_rest import create_app

        return TestClient(create_app(settings), raise_server_exceptions=False)
    if impl == "graphql":
        from impl_graphql import create_app as create_graphql

        return TestClient(create_graphql(settings), raise_server_exceptions=False)
    from impl_flask_baseline import create_app as create_flask

    return httpx.Client(transport=httpx.WSGITransport(app=create_flask(settings)), base_url="http://testserver")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path: Path = tmp_path_factory.mktemp("authgaps") / "auth.sqlite3"
    settings = make_settings(f"sqlite:///{path}")
    db = Database(settings)
    db.create_schema()
    db.dispose()
    return settings


@pytest.fixture(params=IMPLS)
def app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[str, Any]]:
    with _client(request.param, settings) as client:
        yield request.param, client


def _decks(impl: str, client: Any, token: str) -> tuple[int, str | None]:
    headers = {"Authorization": f"Bearer {token}"}
    if impl == "graphql":
        r = client.post("/graphql", json={"query": "{ decks { items { id } } }"}, headers=headers)
        errors = r.json().get("errors")
        return r.status_code, errors[0]["extensions"]["code"] if errors else None
    r = client.get("/api/decks", headers=headers)
    return r.status_code, r.json().get("code") if r.status_code >= 400 else None


def _token(settings: Settings, sub: str) -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp()), "iss": "stackbench"}
    return jwt.encode(claims, settings.jwt_secret, "HS256")


@pytest.mark.parametrize("sub", [str(2**70), str(2**63), "0", "-1", "1e3", " 1"])
def test_a_forged_out_of_range_sub_is_401_not_500(app: tuple[str, Any], settings: Settings, sub: str) -> None:
    impl, client = app
    status, code = _decks(impl, client, _token(settings, sub))
    assert code == "UNAUTHENTICATED", (status, code)
    assert status == (200 if impl == "graphql" else 401)


def test_a_deleted_users_token_never_acts_as_the_next_user(app: tuple[str, Any], settings: Settings) -> None:
    """On SQLite the id of a deleted user (the highest) went to the next one registered, so the
    old token listed the new user's decks: ids are never reused now."""
    from sqlalchemy import text

    from flashcards._sync.service import Service

    impl, client = app
    service = Service(settings)
    try:
        gone = service.register({"username": f"gone_{impl}", "display_name": "G", "password": "password1"})
        token = security.issue_token(settings, gone.id)
        with service.db.begin() as conn:
            conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": gone.id})
        after = service.register({"username": f"next_{impl}", "display_name": "N", "password": "password1"})
        service.create_deck(after.id, {"title": "the next user's own deck"})
    finally:
        service.close()
    assert after.id != gone.id
    headers = {"Authorization": f"Bearer {token}"}
    if impl == "graphql":
        body = client.post("/graphql", json={"query": "{ decks { items { title } } }"}, headers=headers).text
    else:
        body = client.get("/api/decks", headers=headers).text
    assert "the next user's own deck" not in body


@pytest.mark.parametrize("impl", IMPLS)
def test_a_deleted_users_token_is_refused(impl: str, settings: Settings) -> None:
    """A token of a user deleted since it was issued opened /decks (200, empty): now a 401 like
    any invalid token, in every app, within `user_check_ttl_s` (0 here: at once)."""
    from sqlalchemy import text

    from flashcards._sync.service import Service

    strict = settings.model_copy(update={"user_check_ttl_s": 0.0})
    service = Service(strict)
    try:
        user = service.register({"username": f"deleted_{impl}", "display_name": "D", "password": "password1"})
        token = security.issue_token(strict, user.id)
        with _client(impl, strict) as client:
            assert _decks(impl, client, token) == (200, None)
            with service.db.begin() as conn:
                conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": user.id})
            assert _decks(impl, client, token) == (200 if impl == "graphql" else 401, "UNAUTHENTICATED")
            if impl != "graphql":
                me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 401 and me.json()["code"] == "UNAUTHENTICATED"
    finally:
        service.close()


def test_known_users_are_trusted_for_the_ttl_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from flashcards import knownusers

    clock = [100.0]
    monkeypatch.setattr(knownusers, "monotonic", lambda: clock[0])
    known = knownusers.KnownUsers(5.0)
    assert not known.fresh(7)
    known.saw(7)
    assert known.fresh(7)
    clock[0] += 5.1
    assert not known.fresh(7)
    never = knownusers.KnownUsers(0.0)
    never.saw(7)
    assert not never.fresh(7)
