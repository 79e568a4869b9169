"""No N+1: a nested query costs the same number of SQL statements for 2 or 6 decks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from flashcards._async.service import Service
from tests.graphql.conftest import register
from tests.graphql.support import InProcessDriver

NESTED = """
{ decks(limit: 10) { items { id title cards(limit: 10) { id front reviews(limit: 10) { grade schedule { interval_days } }
  deck { id } } } } }
"""


class StatementCounter:
    def __init__(self, service: Service) -> None:
        self.engine = service.db.engine.sync_engine
        self.statements: list[str] = []

    def _on(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)


@pytest.fixture
def counter(service: Service) -> Iterator[StatementCounter]:
    with StatementCounter(service) as c:
        yield c


async def _seed(driver: InProcessDriver, token: str, decks: int, cards: int, reviews: int) -> None:
    for d in range(decks):
        deck = await driver.execute(
            "mutation($t: String!) { create_deck(input: {title: $t}) { id } }",
            {"t": f"d{d}"},
            token,
        )
        for c in range(cards):
            card = await driver.execute(
                "mutation($d: ID!, $i: CardInput!) { create_card(deck_id: $d, input: $i) { id } }",
                {"d": deck["create_deck"]["id"], "i": {"front": f"f{c}", "back": "b"}},
                token,
            )
            for _ in range(reviews):
                await driver.execute(
                    "mutation($c: ID!) { review_card(card_id: $c, input: {grade: 4}) { id } }",
                    {"c": card["create_card"]["id"]},
                    token,
                )


async def _count(driver: InProcessDriver, counter: StatementCounter, token: str) -> tuple[int, Any]:
    counter.statements.clear()
    data = await driver.execute(NESTED, token=token)
    return len(counter.statements), data


async def test_nested_query_statement_count_is_constant(
    in_process: InProcessDriver, counter: StatementCounter
) -> None:
    token = await register(in_process, "nplus")
    await _seed(in_process, token, decks=2, cards=2, reviews=2)
    small, data = await _count(in_process, counter, token)
    assert len(data["decks"]["items"]) == 2

    await _seed(in_process, token, decks=4, cards=3, reviews=2)
    large, data = await _count(in_process, counter, token)
    items = data["decks"]["items"]
    assert len(items) == 6 and sum(len(d["cards"]) for d in items) == 2 * 2 + 4 * 3
    assert all(len(c["reviews"]) == 2 for d in items for c in d["cards"])
    assert all(c["deck"]["id"] == d["id"] for d in items for c in d["cards"])

    assert large == small, counter.statements
    # decks page, cards of all decks, reviews of all cards, decks by id (card → deck)
    selects = [s for s in counter.statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4, selects


async def test_loaders_cache_within_a_request(
    in_process: InProcessDriver, counter: StatementCounter
) -> None:
    token = await register(in_process, "cache")
    await _seed(in_process, token, decks=1, cards=1, reviews=0)
    deck_id = (await in_process.execute("{ decks { items { id } } }", token=token))["decks"][
        "items"
    ][0]["id"]
    counter.statements.clear()
    query = "query($d: ID!) { a: deck(deck_id: $d) { cards { deck { cards { id } } } } }"
    data = await in_process.execute(query, {"d": deck_id}, token)
    assert data["a"]["cards"][0]["deck"]["cards"]
    # deck, cards of the deck (cached the second time), deck by id
    assert len([s for s in counter.statements if "SELECT" in s.upper()]) == 3
