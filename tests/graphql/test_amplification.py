"""List amplification (issue 19, finding 1): nested list fields are paged, a query's cost
(page sizes × nesting) is refused before execution above `graphql_max_cost`, and a response
larger than `graphql_max_response_bytes` is replaced by an error."""

from __future__ import annotations

import time

import httpx
import pytest

from flashcards.models import PAGE_MAX
from flashcards.settings import Settings
from impl_graphql import create_app
from impl_graphql.cost import estimate_cost
from tests.graphql.conftest import register
from tests.graphql.support import InProcessDriver
from tests.graphql.test_dataloaders import StatementCounter, _seed

EXPLOIT = "{decks(limit:1){items{cards{deck{cards{deck{cards{id}}}}}}}}"


async def test_the_exploit_query_is_refused_before_execution(
    in_process: InProcessDriver, settings: Settings
) -> None:
    token = await register(in_process, "amp")
    await _seed(in_process, token, decks=1, cards=3, reviews=0)
    with StatementCounter(in_process.app.service) as counter:
        started = time.perf_counter()
        body = await in_process.post(EXPLOIT, token=token)
        elapsed = time.perf_counter() - started
    assert body.get("data") is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY", body
    assert error["extensions"]["max_cost"] == settings.graphql_max_cost
    assert error["extensions"]["cost"] > settings.graphql_max_cost
    assert "page sizes" in error["message"]
    assert counter.statements == []  # refused in validation: not one SQL statement ran
    assert elapsed < 2.0


async def test_nested_lists_are_paged(in_process: InProcessDriver) -> None:
    token = await register(in_process, "paged")
    await _seed(in_process, token, decks=1, cards=3, reviews=3)
    data = await in_process.execute(
        "{ decks { items { cards(limit: 2) { id front reviews(limit: 1) { grade } } } } }", token=token
    )
    cards = data["decks"]["items"][0]["cards"]
    assert [c["front"] for c in cards] == ["f0", "f1"]  # oldest first, as REST lists them
    assert all(len(c["reviews"]) == 1 for c in cards)
    body = await in_process.post(
        f"{{ decks {{ items {{ cards(limit: {PAGE_MAX + 1}) {{ id }} }} }} }}", token=token
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ config { api_version } }", 0),
        ("{ decks { items { id } } }", 20),
        ("{ decks(limit: 5) { items { cards(limit: 3) { id } } } }", 5 + 15),
        (EXPLOIT, 1 + 20 + 400 + 8000),
        ("query($n: Int = 7) { decks(limit: $n) { items { id } } }", 7),
        ("query($n: Int) { decks(limit: $n) { items { id } } }", PAGE_MAX),  # unknown: the max
        (
            "{ decks(limit: 2) { items { ...F } } } fragment F on Deck { cards(limit: 4) { id } a: cards { id } }",
            2 + 8 + 40,
        ),
    ],
)
def test_cost_estimate(query: str, cost: int, settings: Settings) -> None:
    from graphql import parse

    schema = create_app(settings).schema._schema
    assert estimate_cost(schema, parse(query)) == cost


async def test_response_size_is_bounded(settings: Settings, service: object) -> None:
    small = settings.model_copy(update={"graphql_max_response_bytes": 1024})
    app = create_app(small, service=service)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        driver = InProcessDriver(app, c)
        token = await register(driver, "big")
        await _seed(driver, token, decks=1, cards=40, reviews=0)
        body = await driver.post("{ decks { items { cards(limit: 40) { id front back } } } }", token=token)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "RESPONSE_TOO_LARGE", "max_bytes": 1024}
