"""The Strawberry floor compares like with like (issue 18): it is sent the GraphQL app's own config
request, answers the same body, and runs the same Strawberry extensions (caches included) as the
app's schema, so graphql ÷ hello-strawberry measures what our app adds, not a cache it has and
the floor lacks (the committed run's 3.09× "met" came from a floor validating every request)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry.extensions
from fastapi.testclient import TestClient
from strawberry.extensions import SchemaExtension

from flashcards.settings import Settings
from impl_graphql import create_app
from impl_graphql.schema import CACHE_SIZE, MAX_TOKENS, build_schema
from loadtests import scenarios
from loadtests.floors import FLOORS, hello_strawberry
from loadtests.stacks import STACKS
from loadtests.verification import GQL_CONFIG, verify_config
from tests.support import make_settings

STRAWBERRY_EXTENSIONS = {getattr(strawberry.extensions, name) for name in strawberry.extensions.__all__}


def _strawberry_class(extension: SchemaExtension) -> type:
    """The Strawberry extension a (possibly subclassed) extension is: its per-request hooks."""
    return next(k for k in type(extension).__mro__ if k in STRAWBERRY_EXTENSIONS)


def _built(factories: Iterable[Any]) -> list[SchemaExtension]:
    return [f() if not isinstance(f, SchemaExtension) else f for f in factories]


def test_the_floor_runs_the_apps_extensions_in_the_apps_order() -> None:
    app_ext = _built(build_schema(Settings()).extensions)
    floor_ext = _built(hello_strawberry.schema.extensions)
    assert [_strawberry_class(e) for e in app_ext] == [_strawberry_class(e) for e in floor_ext]
    # the caches and limits are the app's (defaults)
    for extension in app_ext + floor_ext:  # the caches' sizes: the app's
        for cached in ("cached_parse_document", "cached_validate_document"):
            if hasattr(extension, cached):
                assert getattr(extension, cached).cache_info().maxsize == CACHE_SIZE, (extension, cached)
    assert hello_strawberry.CACHE_SIZE == CACHE_SIZE and hello_strawberry.MAX_TOKENS == MAX_TOKENS
    defaults = Settings()
    assert (hello_strawberry.MAX_DEPTH, hello_strawberry.MAX_ALIASES) == (
        defaults.graphql_max_depth, defaults.graphql_max_aliases)
    assert "event_feed" in str(hello_strawberry.schema)  # auto_camel_case=False, as the app


def test_the_floor_and_the_app_use_the_same_json_library() -> None:
    from impl_graphql.app import GraphQLView

    for method in ("decode_json", "encode_json", "create_response"):
        assert method in vars(hello_strawberry.OrjsonGraphQL), method
        assert getattr(GraphQLView, method) is not getattr(hello_strawberry.GraphQL, method), method


def test_the_stack_is_sent_the_graphql_apps_config_request() -> None:
    stack = STACKS["hello-strawberry"]
    assert stack.api == "graphql" and stack.supports("config") and not stack.supports("card")
    assert FLOORS["hello-strawberry"].app.target == "loadtests.floors.hello_strawberry:app"
    spec = scenarios.request_spec("config", stack.api, None)
    assert (spec.method, spec.path) == ("POST", "/graphql") and GQL_CONFIG in (spec.body or "")


def test_the_floor_answers_the_config_document_as_the_app_does(tmp_path: Path) -> None:
    spec = scenarios.request_spec("config", "graphql", None)
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    with TestClient(create_app(settings)) as app_client:
        expected = app_client.post(spec.path, content=spec.body, headers=spec.headers)
    floor_client = TestClient(hello_strawberry.app)  # not entered: Strawberry's view has no lifespan
    answered = floor_client.post(spec.path, content=spec.body, headers=spec.headers)
    verify_config(floor_client, "graphql", spec, None)  # what the runner checks before it measures
    ready = floor_client.get(FLOORS["hello-strawberry"].path)
    assert expected.status_code == answered.status_code == 200
    assert answered.json() == expected.json() and "errors" not in answered.json()
    assert answered.headers["content-type"] == "application/json"
    assert ready.status_code == 200 and ready.json() == {"data": {"message": "hello"}}


@pytest.mark.parametrize("app", [hello_strawberry.app, hello_strawberry.app_bare])
def test_both_strawberry_apps_answer_the_readiness_probe(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)

    async def probe() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
            return await client.get(hello_strawberry.QUERY_PATH)

    import asyncio

    assert asyncio.run(probe()).json() == {"data": {"message": "hello"}}
