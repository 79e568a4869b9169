"""The contract declares its bearer token (issue 19, finding 8: without `securitySchemes`
external contract tools could not probe auth): every operation that needs the token says so,
and each of them, asked without one, answers 401 in both REST apps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from flashcards._sync.database import Database
from tests.support import make_settings

CONTRACT = json.loads((Path(__file__).resolve().parents[2] / "contract" / "openapi.json").read_text())
PUBLIC = {("/api/health/live", "get"), ("/api/health/ready", "get"), ("/api/config", "get"),
          ("/api/auth/register", "post"), ("/api/auth/token", "post")}  # fmt: skip


def _operations() -> list[tuple[str, str]]:
    return [(path, method) for path, ops in CONTRACT["paths"].items() for method in ops]


def test_the_bearer_scheme_is_declared_on_exactly_the_operations_that_need_it() -> None:
    assert CONTRACT["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert CONTRACT["components"]["securitySchemes"]["streamTicket"] == {
        "type": "apiKey", "in": "query", "name": "ticket",
        "description": "A single-use stream ticket from POST /api/events/ticket (GET /api/events only).",
    }  # fmt: skip
    for path, method in _operations():
        security = CONTRACT["paths"][path][method].get("security")
        expected = None if (path, method) in PUBLIC else [{"bearerAuth": []}]
        if (path, method) == ("/api/events", "get"):  # or a stream ticket (EventSource sends no headers)
            expected = [{"bearerAuth": []}, {"streamTicket": []}]
        assert security == expected, (path, method)


@pytest.mark.parametrize("impl", ["flask", "rest"])
def test_every_secured_operation_refuses_a_missing_token(impl: str, tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    db = Database(settings)
    db.create_schema()
    db.dispose()
    if impl == "flask":
        from impl_flask_baseline import create_app as create_flask

        client = httpx.Client(transport=httpx.WSGITransport(app=create_flask(settings)), base_url="http://t")
    else:
        from starlette.testclient import TestClient

        from impl_rest import create_app as create_rest

        client = TestClient(create_rest(settings))
    with client:
        for path, method in _operations():
            if (path, method) in PUBLIC:
                continue
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            body = b"{}" if method in ("post", "patch") else None
            r = client.request(method.upper(), url, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 401, (impl, method, path, r.status_code)
