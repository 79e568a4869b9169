"""Errors come back as GraphQL errors with `extensions.code`; never a 500; limits hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from sqlalchemy.exc import OperationalError

from flashcards import security
from flashcards._async.service import Service
from flashcards.errors import Forbidden
from flashcards.settings import Settings
from impl_graphql import create_app
from impl_graphql.schema import MAX_TOKENS, annotate_error
from tests.graphql.conftest import register
from tests.graphql.support import GraphQLFailed, InProcessDriver
from tests.support import make_settings


async def codes(
    driver: InProcessDriver, query: str, variables: Any = None, token: Any = None
) -> list[str]:
    body = await driver.post(query, variables, token)
    assert body.get("errors"), body
    return [e["extensions"]["code"] for e in body["errors"]]


async def test_authentication(in_process: InProcessDriver, settings: Settings) -> None:
    assert await codes(in_process, "{ me { id } }") == ["UNAUTHENTICATED"]
    assert await codes(in_process, "{ me { id } }", token="garbage") == ["UNAUTHENTICATED"]
    expired = security.issue_token(settings, 1, datetime.now(UTC) - timedelta(days=1))
    body = await in_process.post("{ decks { next_cursor } }", token=expired)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "The token has expired."
    body = await in_process.post(
        'mutation { login(input: {username: "nobody", password: "whatever1"}) { access_token } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # config needs no token
    assert (await in_process.execute("{ config { api_version } }")) == {
        "config": {"api_version": "1"}
    }


async def test_bad_user_input_mirrors_rest_field_errors(in_process: InProcessDriver) -> None:
    token = await register(in_process, "kate")
    deck = await in_process.execute(
        'mutation { create_deck(input: {title: "t"}) { id } }', token=token
    )
    card = await in_process.execute(
        'mutation($d: ID!) { create_card(deck_id: $d, input: {front: "f", back: "b"}) { id } }',
        {"d": deck["create_deck"]["id"]},
        token,
    )
    card_id = card["create_card"]["id"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ('{ deck(deck_id: "abc") { id } }', {}, "deck_id"),
        ('{ deck(deck_id: "0") { id } }', {}, "deck_id"),
        ('{ card(card_id: "99999999999999999999") { id } }', {}, "card_id"),
        (
            "mutation($c: ID!) { review_card(card_id: $c, input: {grade: 6}) { id } }",
            {"c": card_id},
            "grade",
        ),
        (
            "mutation($c: ID!) { review_card(card_id: $c, input: {grade: -1}) { id } }",
            {"c": card_id},
            "grade",
        ),
        ('mutation { create_deck(input: {title: ""}) { id } }', {}, "title"),
        ('mutation { create_deck(input: {title: "a\\u0000b"}) { id } }', {}, "title"),
        ("{ decks(limit: 0) { next_cursor } }", {}, "limit"),
        ('{ decks(cursor: "!!") { next_cursor } }', {}, "cursor"),
        ('{ decks(cursor: "Zm9v") { next_cursor } }', {}, "cursor"),
        (
            'mutation { register(input: {username: "A", display_name: "x", password: "longenough"}) { id } }',
            {},
            "username",
        ),
    ]
    for query, variables, field in cases:
        body = await in_process.post(query, variables, token)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (query, body)
        assert [e["field"] for e in error["extensions"]["errors"]] == [field], (query, body)
        assert {"field", "message", "type"} <= set(error["extensions"]["errors"][0])


async def test_graphql_level_codes(in_process: InProcessDriver) -> None:
    token = await register(in_process, "leo")
    assert await codes(in_process, "{ me { id ", token=token) == ["GRAPHQL_PARSE_FAILED"]
    assert await codes(in_process, "{ nope }", token=token) == ["GRAPHQL_VALIDATION_FAILED"]
    assert await codes(in_process, "{ me }", token=token) == ["GRAPHQL_VALIDATION_FAILED"]
    # a wrongly typed variable (the GraphQL type system rejects "5" for Int and true for Int)
    query = "mutation($c: ID!, $g: Int!) { review_card(card_id: $c, input: {grade: $g}) { id } }"
    assert await codes(in_process, query, {"c": "1", "g": "5"}, token) == ["BAD_USER_INPUT"]
    assert await codes(in_process, query, {"c": "1", "g": True}, token) == ["BAD_USER_INPUT"]
    assert await codes(in_process, query, {"c": "1"}, token) == ["BAD_USER_INPUT"]
    assert await codes(
        in_process,
        'mutation { register(input: {username: "kate", display_name: "k", password: "x"}) { id } }',
    ) == ["BAD_USER_INPUT"]


async def test_conflict_and_not_found(in_process: InProcessDriver) -> None:
    token = await register(in_process, "mia")
    body = await in_process.post(
        'mutation { register(input: {username: "mia", display_name: "M", password: "longenough"}) { id } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert body["errors"][0]["extensions"]["errors"][0]["field"] == "username"
    for query in (
        '{ deck(deck_id: "12345") { id } }',
        '{ card(card_id: "12345") { id } }',
        '{ reviews(card_id: "12345") { next_cursor } }',
        '{ due_cards(deck_id: "12345") { next_cursor } }',
        'mutation { delete_deck(deck_id: "12345") }',
        'mutation { update_card(card_id: "12345", input: {front: "x"}) { id } }',
    ):
        assert await codes(in_process, query, token=token) == ["NOT_FOUND"], query
    # nullable single objects: data.deck is null beside the error
    body = await in_process.post('{ deck(deck_id: "12345") { id } }', token=token)
    assert body["data"] == {"deck": None}


async def test_unexpected_errors_are_masked_never_500(
    in_process: InProcessDriver, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await register(in_process, "nina")

    async def boom(*args: object) -> None:
        raise RuntimeError("secret internals")

    async def db_down(*args: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(service, "list_decks", boom)
    body = await in_process.post("{ decks { next_cursor } }", token=token)
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in body["errors"][0]["message"]
    monkeypatch.setattr(service, "list_decks", db_down)
    body = await in_process.post("{ decks { next_cursor } }", token=token)
    assert body["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}


def test_forbidden_maps_to_its_code() -> None:
    error = GraphQLError("x", original_error=Forbidden("Not yours."))
    annotate_error(error)
    assert error.extensions == {"code": "FORBIDDEN"}


async def test_depth_alias_and_token_limits(
    in_process: InProcessDriver, settings: Settings
) -> None:
    token = await register(in_process, "olga")
    deep = "{ decks { items { cards { deck { cards { deck { cards { deck { cards { id } } } } } } } } } }"
    body = await in_process.post(deep, token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "exceeds maximum operation depth of 8" in body["errors"][0]["message"]
    aliases = (
        "{ "
        + " ".join(
            f"a{i}: config {{ api_version }}" for i in range(settings.graphql_max_aliases + 1)
        )
        + " }"
    )
    body = await in_process.post(aliases, token=token)
    assert (
        body["errors"][0]["message"]
        == f"{settings.graphql_max_aliases + 1} aliases found. Allowed: {settings.graphql_max_aliases}"
    )
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    ok = (
        "{ "
        + " ".join(f"a{i}: config {{ api_version }}" for i in range(settings.graphql_max_aliases))
        + " }"
    )
    assert len(await in_process.execute(ok)) == settings.graphql_max_aliases
    tokens = "{ config { " + "service " * MAX_TOKENS + "} }"
    body = await in_process.post(tokens)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "tokens" in body["errors"][0]["message"]


async def test_introspection_on_by_default_despite_depth_limit(in_process: InProcessDriver) -> None:
    from graphql import get_introspection_query

    data = await in_process.execute(get_introspection_query())
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Deck", "Card", "Review", "Event", "ChatEvent"} <= names


@pytest.fixture
async def closed_client(graphql_dsn: str, service: Service) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(graphql_dsn, graphql_introspection=False)
    app = create_app(settings, service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_introspection_can_be_switched_off(closed_client: httpx.AsyncClient) -> None:
    body = (
        await closed_client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in body["errors"][0]["message"].lower()
    ok = (await closed_client.post("/graphql", json={"query": "{ config { service } }"})).json()
    assert ok == {"data": {"config": {"service": "stackbench-flashcards"}}}
    page = await closed_client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404  # no GraphiQL without introspection


async def test_http_transport_edges(client: httpx.AsyncClient) -> None:
    get = await client.get("/graphql", params={"query": "{ config { api_version } }"})
    assert get.status_code == 200 and get.json() == {"data": {"config": {"api_version": "1"}}}
    mutation = await client.get(
        "/graphql", params={"query": 'mutation { delete_deck(deck_id: "1") }'}
    )
    assert 400 <= mutation.status_code < 500
    ide = await client.get("/graphql", headers={"accept": "text/html"})
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()
    for raw in (b"{bad", b"5", b'"query"', b"null"):
        r = await client.post("/graphql", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, (raw, r.status_code, r.text)
    r = await client.post("/graphql", json={"nope": 1})
    assert r.status_code == 400
    r = await client.post("/graphql", json={"query": 5})
    assert r.status_code == 400
    r = await client.put("/graphql", json={"query": "{ config { service } }"})
    assert r.status_code == 405
    big = await client.post(
        "/graphql", content=b" " * 70_000 + b"{}", headers={"content-type": "application/json"}
    )
    assert (
        big.status_code == 413
        and big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1000

    chunked = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    missing = await client.get("/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert (await client.get("/api/health/live")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/api/health/ready")
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_batching_is_off(client: httpx.AsyncClient) -> None:
    r = await client.post("/graphql", json=[{"query": "{ config { service } }"}] * 2)
    assert r.status_code == 400


def test_graphql_failed_helper() -> None:
    assert GraphQLFailed([{"extensions": {"code": "X"}}]).codes == ["X"]
