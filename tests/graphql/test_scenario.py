"""The REST issue's end-to-end scenario, through GraphQL: in-process and over a real server.

register → login → deck → cards → reviews with known grades (SM-2 vectors) → due queue →
chat stream (a subscription) → history → events (a subscription fed by mutations made on
another connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.graphql.conftest import register
from tests.graphql.support import Driver, GraphQLFailed, eventually

GRADES = [5, 5, 5, 5, 4]
INTERVALS = [1, 6, 17, 48, 140]
EASES = [2.6, 2.7, 2.8, 2.9, 2.9]

EVENTS = "subscription($after: ID) { events(last_event_id: $after) { id type data published_at } }"
CHAT = (
    "subscription($i: ChatInput!) { chat(input: $i) { type answer_id index content code detail "
    "message { id role content status created_at } } }"
)
REVIEW = (
    "mutation($c: ID!, $g: Int!) { review_card(card_id: $c, input: {grade: $g}) "
    "{ id card_id grade reviewed_at previous { ease interval_days repetitions lapses due_at } "
    "schedule { ease interval_days repetitions lapses due_at } } }"
)


async def run_scenario(driver: Driver) -> None:
    token = await register(driver, "alice")
    me = (await driver.execute("{ me { id username display_name created_at } }", token=token))["me"]
    assert me["username"] == "alice" and me["display_name"] == "Alice"

    # The event feed, on its own connection, before anything happens.
    received: list[dict[str, Any]] = []
    base = await driver.subscriber_count()
    async with driver.subscribe(EVENTS, {}, token) as events:

        async def collect() -> None:
            async for frame in events:
                received.append(frame["events"])

        collector = asyncio.create_task(collect())
        await eventually(lambda: _grew(driver, base))

        deck = (
            await driver.execute(
                'mutation { create_deck(input: {title: "Spanish", description: "A1"}) '
                "{ id title description card_count created_at updated_at } }",
                token=token,
            )
        )["create_deck"]
        assert deck["title"] == "Spanish" and deck["card_count"] == 0
        cards = []
        for front, back in [("hola", "hello"), ("adiós", "bye"), ("gracias", "thanks")]:
            card = (
                await driver.execute(
                    "mutation($d: ID!, $i: CardInput!) { create_card(deck_id: $d, input: $i) "
                    "{ id deck_id front back ease interval_days repetitions lapses due_at } }",
                    {"d": deck["id"], "i": {"front": front, "back": back}},
                    token,
                )
            )["create_card"]
            assert card["deck_id"] == deck["id"] and card["ease"] == 2.5
            assert card["interval_days"] == 0 and card["repetitions"] == 0
            cards.append(card)

        # SM-2: grades 5,5,5,5,4 → intervals 1,6,17,48,140 and EF 2.6 … 2.9.
        target = cards[0]["id"]
        for i, grade in enumerate(GRADES):
            review = (await driver.execute(REVIEW, {"c": target, "g": grade}, token))["review_card"]
            assert review["grade"] == grade and review["card_id"] == target
            assert review["schedule"]["interval_days"] == INTERVALS[i]
            assert review["schedule"]["ease"] == EASES[i]
            assert review["schedule"]["repetitions"] == i + 1
            if i:
                assert review["previous"]["interval_days"] == INTERVALS[i - 1]

        history = (
            await driver.execute(
                "query($c: ID!) { reviews(card_id: $c, limit: 2) { items { grade schedule "
                "{ interval_days } } next_cursor } }",
                {"c": target},
                token,
            )
        )["reviews"]
        assert [r["grade"] for r in history["items"]] == [4, 5]  # newest first
        assert history["next_cursor"]
        rest = (
            await driver.execute(
                "query($c: ID!, $k: String) { reviews(card_id: $c, cursor: $k) { items "
                "{ schedule { interval_days } } next_cursor } }",
                {"c": target, "k": history["next_cursor"]},
                token,
            )
        )["reviews"]
        assert [r["schedule"]["interval_days"] for r in rest["items"]] == [17, 6, 1]
        assert rest["next_cursor"] is None

        # The due queue: the two cards never reviewed, not the one scheduled in 140 days.
        due = (
            await driver.execute(
                "query($d: ID!) { due_cards(deck_id: $d) { items { id front } next_cursor } }",
                {"d": deck["id"]},
                token,
            )
        )["due_cards"]
        assert [c["id"] for c in due["items"]] == [cards[1]["id"], cards[2]["id"]]

        # Nested: deck → cards → reviews in one query.
        nested = (
            await driver.execute(
                "query($d: ID!) { deck(deck_id: $d) { card_count cards { id reviews { grade } "
                "deck { id } } } }",
                {"d": deck["id"]},
                token,
            )
        )["deck"]
        assert nested["card_count"] == 3
        assert [len(c["reviews"]) for c in nested["cards"]] == [5, 0, 0]
        assert {c["deck"]["id"] for c in nested["cards"]} == {deck["id"]}

        # The tutor chat, streamed as a subscription.
        frames: list[dict[str, Any]] = []
        async with driver.subscribe(CHAT, {"i": {"message": "Why does SM-2 work?"}}, token) as chat:
            async for frame in chat:
                frames.append(frame["chat"])
        kinds = [f["type"] for f in frames]
        assert kinds[0] == "message" and kinds[-1] == "done", kinds
        tokens = [f for f in frames if f["type"] == "token"]
        assert tokens and [t["index"] for t in tokens] == list(range(len(tokens)))
        answer = frames[-1]["message"]
        assert answer["content"] == "".join(t["content"] for t in tokens)
        assert answer["status"] == "complete" and answer["role"] == "assistant"
        assert answer["id"] == frames[0]["answer_id"]
        assert frames[0]["message"]["role"] == "user"

        chat_history = (
            await driver.execute(
                "{ chat_history { items { id role content status } next_cursor } }", token=token
            )
        )["chat_history"]
        assert [(m["role"], m["status"]) for m in chat_history["items"]] == [
            ("assistant", "complete"),
            ("user", "complete"),
        ]
        assert chat_history["items"][0]["content"] == answer["content"]

        # Updates and deletes publish too.
        await driver.execute(
            'mutation($c: ID!) { update_card(card_id: $c, input: {back: "bye!"}) { back } }',
            {"c": cards[1]["id"]},
            token,
        )
        assert (
            await driver.execute(
                "mutation($c: ID!) { delete_card(card_id: $c) }", {"c": cards[2]["id"]}, token
            )
        )["delete_card"] == cards[2]["id"]

        expected = (
            ["deck.created"]
            + ["card.created"] * 3
            + ["review.created"] * 5
            + ["chat.completed", "card.updated", "card.deleted"]
        )
        await eventually(lambda: len(received) >= len(expected))
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
    assert [e["type"] for e in received] == expected
    ids = [int(e["id"]) for e in received]
    assert ids == sorted(ids)
    assert received[0]["data"] == {"deck_id": int(deck["id"]), "title": "Spanish"}
    assert received[4]["data"]["grade"] == 5 and received[8]["data"]["grade"] == 4
    await eventually(lambda: _back_to(driver, base))

    # Resume: after the first event, the server's history replays the rest.
    async with driver.subscribe(EVENTS, {"after": received[0]["id"]}, token) as replay:
        first = await asyncio.wait_for(replay.__anext__(), 10)
        assert first["events"]["id"] == received[1]["id"]
    await eventually(lambda: _back_to(driver, base))

    # Another user sees nothing of alice's.
    bob = await register(driver, "bob")
    with pytest.raises(GraphQLFailed) as err:
        await driver.execute("query($d: ID!) { deck(deck_id: $d) { id } }", {"d": deck["id"]}, bob)
    assert err.value.codes == ["NOT_FOUND"]


async def _grew(driver: Driver, base: int) -> bool:
    return await driver.subscriber_count() > base


async def _back_to(driver: Driver, base: int) -> bool:
    return await driver.subscriber_count() == base


async def test_scenario_in_process(in_process: Driver) -> None:
    await run_scenario(in_process)


@pytest.mark.server
async def test_scenario_over_server(over_server: Driver) -> None:
    await run_scenario(over_server)
