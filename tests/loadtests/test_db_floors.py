"""The database floors are comparable with the app: each, under the server its stack runs on,
reads a seeded card with the token the bench gives it and answers the same JSON as the REST app
for that card, and passes the card scenario's own verification (404 as a problem document, 401
without a token) — what the runner checks before it measures a stack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from impl_rest import create_app
from loadtests import scenarios
from loadtests.floors import FLOORS, bench_user
from loadtests.launcher import serving
from loadtests.servers import ServerSpec
from loadtests.stacks import STACKS
from provision.seed import SeedPlan, seed
from tests.support import make_settings, postgres_dsn

PLAN = SeedPlan(users=2, decks_per_user=1, cards_per_deck=3, seed=1)
SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def seeded() -> str:
    dsn = postgres_dsn("stackbench_test_db_floors")
    seed(make_settings(dsn), PLAN)
    return dsn


@pytest.fixture(scope="module")
def app_answers(seeded: str) -> Iterator[dict[int, dict[str, object]]]:
    """The REST app's body for every card of user 1 (the bench user), in process."""
    user = bench_user(PLAN, {"STACKBENCH_JWT_SECRET": SECRET})
    with TestClient(create_app(make_settings(seeded, jwt_secret=SECRET))) as client:
        answers = {}
        for card in user.card_ids:
            response = client.get(f"/api/cards/{card}", headers={"Authorization": f"Bearer {user.token}"})
            assert response.status_code == 200, response.text
            answers[card] = response.json()
    yield answers


@pytest.mark.server
@pytest.mark.parametrize("stack_id", ["db-fastapi", "db-flask"])
def test_a_database_floor_answers_the_card_as_the_app_does(
        stack_id: str, seeded: str, app_answers: dict[int, dict[str, object]]) -> None:
    stack = STACKS[stack_id]
    assert stack.supports("card") and not stack.supports("config") and stack.api == "rest"
    env = {"STACKBENCH_DSN": seeded, "STACKBENCH_JWT_SECRET": SECRET}
    user = bench_user(PLAN, env)
    spec = ServerSpec(stack.server, FLOORS[stack_id].app, port=0, workers=1, env=env)
    with serving(spec) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        headers = {"Authorization": f"Bearer {user.token}"}
        for card, expected in app_answers.items():
            response = client.get(f"/api/cards/{card}", headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/json")
            assert response.json() == expected
        # another user's card is not found, as in the app
        others = bench_user(PLAN, env, user_number=2).card_ids
        assert client.get(f"/api/cards/{others[0]}", headers=headers).status_code == 404
        wrong = bench_user(PLAN, {"STACKBENCH_JWT_SECRET": secrets.token_urlsafe(32)})
        assert client.get(f"/api/cards/{user.card_ids[0]}",
                          headers={"Authorization": f"Bearer {wrong.token}"}).status_code == 401
        scenarios.verify("card", stack.api, client, user)  # the runner's check before measuring


@pytest.mark.server
def test_the_strawberry_database_floor_answers_the_graphql_card_as_the_app_does(seeded: str) -> None:
    """db-strawberry is sent the GraphQL app's card request and answers the GraphQL app's body."""
    from impl_graphql import create_app as create_graphql_app
    from loadtests.floors import db_strawberry, hello_strawberry
    from tests.loadtests.test_strawberry_floor import _built, _strawberry_class

    stack = STACKS["db-strawberry"]
    assert stack.api == "graphql" and stack.supports("card") and not stack.supports("config")
    assert scenarios.get("card").floor_of["graphql"] == "db-strawberry"
    assert [_strawberry_class(e) for e in _built(db_strawberry.schema.extensions)] == [
        _strawberry_class(e) for e in _built(hello_strawberry.schema.extensions)]  # the app's (test_strawberry_floor)
    env = {"STACKBENCH_DSN": seeded, "STACKBENCH_JWT_SECRET": SECRET}
    user = bench_user(PLAN, env)
    spec_of = scenarios.get("card").graphql
    assert spec_of is not None
    request = spec_of(user)
    bodies = [request.render(__import__("random").Random(n))[1] or "" for n in range(6)]
    with TestClient(create_graphql_app(make_settings(seeded, jwt_secret=SECRET))) as app_client:
        expected = [app_client.post("/graphql", content=b, headers=request.headers).json() for b in bodies]
    spec = ServerSpec(stack.server, FLOORS["db-strawberry"].app, port=0, workers=1, env=env)
    with serving(spec) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        for body, answer in zip(bodies, expected, strict=True):
            response = client.post("/graphql", content=body, headers=request.headers)
            assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
            assert response.json() == answer and answer["data"]["card"] is not None
        scenarios.verify("card", stack.api, client, user)  # null for an unknown card, UNAUTHENTICATED without a token
