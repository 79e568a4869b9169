"""Authentication, CORS and security headers: the same protections in all three apps.

Each test drives every implementation in-process through the same requests: REST answers with
status codes and problem documents, GraphQL with `extensions.code`.
"""

from __future__ import annotations

import base64
import json
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
from flashcards.web import SECURITY_HEADERS
from tests.support import make_settings

IMPLS = ["rest", "flask", "graphql"]
ORIGIN = "https://study.example"


def _client(impl: str, settings: Settings) -> Any:
    from starlette.testclient import TestClient

    if impl == "rest":
        from impl_rest import create_app

        return TestClient(create_app(settings), raise_server_exceptions=False)
    if impl == "graphql":
        from impl_graphql import create_app as create_graphql

        return TestClient(create_graphql(settings), raise_server_exceptions=False)
    flask_app = pytest.importorskip("impl_flask_baseline")
    return httpx.Client(transport=httpx.WSGITransport(app=flask_app.create_app(settings)), base_url="http://testserver")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path: Path = tmp_path_factory.mktemp("security") / "security.sqlite3"
    settings = make_settings(f"sqlite:///{path}", cors_origins=[ORIGIN])
    db = Database(settings)
    db.create_schema()
    db.dispose()
    from provision.seed import SeedPlan, seed

    seed(settings, SeedPlan(users=1, decks_per_user=0, cards_per_deck=0))  # user 1 exists: a
    # forged token is refused for what it is, not because its user is missing
    return settings


@pytest.fixture(params=IMPLS)
def app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[str, Any]]:
    with _client(request.param, settings) as client:
        yield request.param, client


def _me(impl: str, client: Any, authorization: str | None) -> tuple[int, str | None]:
    """(HTTP status, error code or None) of the "who am I" operation."""
    headers = {"Authorization": authorization} if authorization else {}
    if impl == "graphql":
        r = client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
        errors = r.json().get("errors")
        return r.status_code, errors[0]["extensions"]["code"] if errors else None
    r = client.get("/api/me", headers=headers)
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"].startswith("application/problem+json")
    return r.status_code, r.json().get("code") if r.status_code >= 400 else None


def _forged_tokens(settings: Settings) -> dict[str, str]:
    now = datetime.now(UTC)
    good = {"sub": "1", "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp()), "iss": "stackbench"}
    header_none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(good).encode()).rstrip(b"=").decode()
    return {
        "expired": jwt.encode({**good, "exp": int((now - timedelta(seconds=5)).timestamp())}, settings.jwt_secret, "HS256"),
        "wrong secret": jwt.encode(good, "not-the-secret-at-all-but-long-enough", "HS256"),
        "alg none": f"{header_none}.{body}.",
        "wrong algorithm (HS512)": jwt.encode(good, settings.jwt_secret, "HS512"),
        "no exp": jwt.encode({k: v for k, v in good.items() if k != "exp"}, settings.jwt_secret, "HS256"),
        "wrong issuer": jwt.encode({**good, "iss": "elsewhere"}, settings.jwt_secret, "HS256"),
        "garbage": "not.a.jwt",
    }


def test_valid_token_is_accepted_and_forged_ones_are_not(app: tuple[str, Any], settings: Settings) -> None:
    impl, client = app
    assert _me(impl, client, f"Bearer {security.issue_token(settings, 1)}") == (200, None)
    assert _me(impl, client, None)[1] == "UNAUTHENTICATED"
    assert _me(impl, client, "Basic dXNlcjpwYXNz")[1] == "UNAUTHENTICATED"
    for name, token in _forged_tokens(settings).items():
        status, code = _me(impl, client, f"Bearer {token}")
        assert code == "UNAUTHENTICATED", f"{impl} accepted a token: {name}"
        assert status == (200 if impl == "graphql" else 401), name
    # a correctly signed token of a user that does not exist is still refused
    assert _me(impl, client, f"Bearer {security.issue_token(settings, 999_999)}")[1] == "UNAUTHENTICATED"


def test_security_headers_on_success_and_error(app: tuple[str, Any]) -> None:
    _, client = app
    for path in ("/api/health/live", "/no/such/route"):
        response = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)


def test_cors_allows_only_configured_origins(app: tuple[str, Any]) -> None:
    impl, client = app
    path = "/graphql" if impl == "graphql" else "/api/decks"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = client.options(path, headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    assert "authorization" in allowed.headers.get("access-control-allow-headers", "").lower()
    refused = client.options(path, headers={"Origin": "https://evil.example", **preflight})
    assert refused.headers.get("access-control-allow-origin") is None
    simple = client.get("/api/health/live", headers={"Origin": "https://evil.example"})
    assert simple.headers.get("access-control-allow-origin") is None


@pytest.mark.parametrize("impl", ["rest", "flask"])
def test_cors_for_the_stream_ticket_and_the_feed(impl: str, settings: Settings) -> None:
    """A browser page of a configured origin gets a stream ticket (its preflight: POST with
    Authorization) and reads the feed with it (EventSource: a simple GET, no preflight)."""
    token = security.issue_token(settings, 1)
    with _client(impl, settings) as client:
        preflight = client.options("/api/events/ticket", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization",
        })  # fmt: skip
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        issued = client.post("/api/events/ticket", headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}"})
        assert issued.status_code == 201 and issued.headers["access-control-allow-origin"] == ORIGIN
        refused = client.get("/api/events", params={"ticket": "spent"}, headers={"Origin": ORIGIN})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN
        with client.stream("GET", "/api/events", params={"ticket": issued.json()["ticket"]},
                           headers={"Origin": ORIGIN}) as feed:
            assert feed.status_code == 200 and feed.headers["access-control-allow-origin"] == ORIGIN
        other = client.options("/api/events/ticket", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        })  # fmt: skip
        assert other.headers.get("access-control-allow-origin") is None


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(pydantic.ValidationError, match="JWT_SECRET"):
        Settings(environment="production", jwt_secret=DEFAULT_SECRET)
    assert Settings(environment="production", jwt_secret="a-real-secret-from-the-vault-0123456789").environment == "production"
