"""The whole study scenario, identical for every REST app: sign up, decks and pages of them,
cards, SM-2 reviews with known vectors, the due queue, the tutor chat and the live event feed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tests.http.conftest import UPSTREAM_TOKENS
from tests.http.support import PASSWORD, Api, SseReader, User, json_of, parse_time
from upstream_sim.chunks import answer_text, token_text

# (grade, then: EF in hundredths, interval days, repetitions, lapses), from a new card
# (README "SM-2 as implemented"): 5,5,5,5,4 → 1, 6, 17, 48, 140 days; then a failure resets
# repetitions and the interval (EF still drops by 0.32, lapses + 1); then learning starts again.
SM2_VECTORS = [
    (5, 260, 1, 1, 0),
    (5, 270, 6, 2, 0),
    (5, 280, 17, 3, 0),
    (5, 290, 48, 4, 0),
    (4, 290, 140, 5, 0),
    (2, 258, 1, 0, 1),
    (5, 268, 1, 1, 1),
]
NEW_CARD = {"ease": 2.5, "interval_days": 0, "repetitions": 0, "lapses": 0}


def test_study_scenario(http_client: Api) -> None:
    api = http_client
    user = _account(api)
    deck_ids = _decks_and_pages(api, user)
    deck = deck_ids[0]
    cards = _cards(api, user, deck)
    _reviews_follow_sm2(api, user, cards[0]["id"])
    _due_queue(api, user, deck, cards)
    _chat(api, user)
    _event_feed(api, user)


def _account(api: Api) -> User:
    username = f"scenario_{api.impl}_{uuid.uuid4().hex[:8]}"
    r = api.post("/api/auth/register", json={"username": username, "display_name": "Scenario", "password": PASSWORD})
    assert r.status_code == 201, r.text
    registered = json_of(r)
    assert set(registered) == {"id", "username", "display_name", "created_at"}  # never the hash
    assert registered["display_name"] == "Scenario"
    parse_time(registered["created_at"])

    r = api.post("/api/auth/token", json={"username": registered["username"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = json_of(r)
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == api.settings.jwt_ttl_s
    user = User(registered["id"], registered["username"], token["access_token"])

    r = api.get("/api/me", user)
    assert r.status_code == 200
    assert json_of(r) == registered
    return user


def _decks_and_pages(api: Api, user: User) -> list[int]:
    created = []
    for i in range(5):
        r = api.post("/api/decks", user, json={"title": f"Deck {i}", "description": f"about {i}"})
        assert r.status_code == 201, r.text
        deck = json_of(r)
        assert r.headers["location"] == f"/api/decks/{deck['id']}"
        assert (deck["title"], deck["description"], deck["card_count"]) == (f"Deck {i}", f"about {i}", 0)
        assert deck["created_at"] == deck["updated_at"]
        created.append(deck)
    # the description defaults to ""
    r = api.post("/api/decks", user, json={"title": "No description"})
    assert r.status_code == 201 and json_of(r)["description"] == ""
    created.append(json_of(r))

    # pages of 2, following next_cursor: every deck once, in creation (id) order
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = api.get("/api/decks", user, params=params)
        assert r.status_code == 200, r.text
        page = json_of(r)
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == created
    # the default page holds them all, and says there is no more
    page = json_of(api.get("/api/decks", user))
    assert page == {"items": created, "next_cursor": None}

    r = api.get(f"/api/decks/{created[0]['id']}", user)
    assert r.status_code == 200 and json_of(r) == created[0]
    r = api.patch(f"/api/decks/{created[1]['id']}", user, json={"title": "Renamed"})
    assert r.status_code == 200
    renamed = json_of(r)
    assert (renamed["title"], renamed["description"]) == ("Renamed", "about 1")
    assert parse_time(renamed["updated_at"]) >= parse_time(created[1]["updated_at"])
    r = api.delete(f"/api/decks/{created[-1]['id']}", user)
    assert r.status_code == 204 and r.content == b""
    assert api.get(f"/api/decks/{created[-1]['id']}", user).status_code == 404
    return [d["id"] for d in created[:-1]]


def _cards(api: Api, user: User, deck_id: int) -> list[dict[str, Any]]:
    cards = []
    for i in range(3):
        r = api.post(f"/api/decks/{deck_id}/cards", user, json={"front": f"Q{i}", "back": f"A{i}"})
        assert r.status_code == 201, r.text
        card = json_of(r)
        assert r.headers["location"] == f"/api/cards/{card['id']}"
        assert card["deck_id"] == deck_id
        assert {k: card[k] for k in NEW_CARD} == NEW_CARD
        assert card["due_at"] == card["created_at"]  # a new card is due at once
        cards.append(card)
    assert json_of(api.get(f"/api/decks/{deck_id}", user))["card_count"] == 3
    listed = json_of(api.get(f"/api/decks/{deck_id}/cards", user, params={"limit": 2}))
    assert listed["items"] == cards[:2] and listed["next_cursor"]
    rest = json_of(api.get(f"/api/decks/{deck_id}/cards", user, params={"limit": 2, "cursor": listed["next_cursor"]}))
    assert rest == {"items": cards[2:], "next_cursor": None}

    card = cards[1]
    assert json_of(api.get(f"/api/cards/{card['id']}", user)) == card
    r = api.patch(f"/api/cards/{card['id']}", user, json={"back": "A1, revised"})
    assert r.status_code == 200, r.text
    updated = json_of(r)
    assert (updated["front"], updated["back"]) == ("Q1", "A1, revised")
    assert {k: updated[k] for k in NEW_CARD} == NEW_CARD  # editing text keeps the schedule
    assert json_of(api.get(f"/api/cards/{card['id']}", user)) == updated
    cards[1] = updated
    return cards


def _reviews_follow_sm2(api: Api, user: User, card_id: int) -> None:
    previous: dict[str, Any] = dict(NEW_CARD)
    reviews = []
    for grade, ef, interval, repetitions, lapses in SM2_VECTORS:
        r = api.post(f"/api/cards/{card_id}/reviews", user, json={"grade": grade})
        assert r.status_code == 201, r.text
        review = json_of(r)
        assert (review["card_id"], review["grade"]) == (card_id, grade)
        schedule = review["schedule"]
        got = (round(schedule["ease"] * 100), schedule["interval_days"], schedule["repetitions"], schedule["lapses"])
        assert got == (ef, interval, repetitions, lapses), (grade, review)
        assert schedule["ease"] == ef / 100  # exact: EF is integer hundredths
        reviewed = parse_time(review["reviewed_at"])
        assert parse_time(schedule["due_at"]) - reviewed == timedelta(days=interval)
        assert {k: review["previous"][k] for k in NEW_CARD} == {k: previous[k] for k in NEW_CARD}
        previous = schedule
        reviews.append(review)

    card = json_of(api.get(f"/api/cards/{card_id}", user))
    assert {k: card[k] for k in (*NEW_CARD, "due_at")} == {k: previous[k] for k in (*NEW_CARD, "due_at")}

    # history, newest first, in pages
    first = json_of(api.get(f"/api/cards/{card_id}/reviews", user, params={"limit": 4}))
    assert first["items"] == reviews[::-1][:4] and first["next_cursor"]
    second = json_of(api.get(f"/api/cards/{card_id}/reviews", user, params={"limit": 4, "cursor": first["next_cursor"]}))
    assert second == {"items": reviews[::-1][4:], "next_cursor": None}


def _due_queue(api: Api, user: User, deck_id: int, cards: list[dict[str, Any]]) -> None:
    def due() -> list[int]:
        page = json_of(api.get(f"/api/decks/{deck_id}/due", user))
        assert page["next_cursor"] is None
        times = [parse_time(c["due_at"]) for c in page["items"]]
        assert times == sorted(times)  # earliest first
        return [c["id"] for c in page["items"]]

    # the reviewed card is due tomorrow; the two new ones are due since their creation
    assert due() == [cards[1]["id"], cards[2]["id"]]
    one = json_of(api.get(f"/api/decks/{deck_id}/due", user, params={"limit": 1}))
    assert [c["id"] for c in one["items"]] == [cards[1]["id"]] and one["next_cursor"]
    two = json_of(api.get(f"/api/decks/{deck_id}/due", user, params={"limit": 1, "cursor": one["next_cursor"]}))
    assert [c["id"] for c in two["items"]] == [cards[2]["id"]]
    # a card just reviewed (even failed: due in a day) leaves the queue
    assert api.post(f"/api/cards/{cards[2]['id']}/reviews", user, json={"grade": 1}).status_code == 201
    assert due() == [cards[1]["id"]]
    assert api.post(f"/api/cards/{cards[1]['id']}/reviews", user, json={"grade": 3}).status_code == 201
    assert due() == []


def _chat(api: Api, user: User) -> None:
    question = "Why does spacing reviews help?"
    with api.stream("POST", "/api/chat", user=user, json={"message": question}) as r:
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"  # once (FastAPI used to send it twice)
        frames = SseReader(r).rest()
    assert [f.event for f in frames] == ["message"] + ["token"] * UPSTREAM_TOKENS + ["done"]
    message = frames[0].json()
    asked = message["message"]
    assert (asked["role"], asked["content"], asked["status"]) == ("user", question, "complete")
    tokens = [f.json() for f in frames[1:-1]]
    assert [t["index"] for t in tokens] == list(range(UPSTREAM_TOKENS))
    assert [t["content"] for t in tokens] == [token_text(i) for i in range(UPSTREAM_TOKENS)]
    answer = "".join(t["content"] for t in tokens)
    assert answer == answer_text(UPSTREAM_TOKENS)
    done = frames[-1].json()["message"]
    assert (done["id"], done["role"], done["content"], done["status"]) == (message["answer_id"], "assistant", answer, "complete")

    history = json_of(api.get("/api/chat/history", user))
    assert history == {"items": [done, asked], "next_cursor": None}  # newest first


def _event_feed(api: Api, user: User) -> None:
    with api.stream("GET", "/api/events", user=user) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        one = api.create_deck(user, "Feed one")
        two = api.create_deck(user, "Feed two")
        first, second = reader.event(), reader.event()
    for frame, deck in ((first, one), (second, two)):
        assert frame.event == "deck.created"
        body = frame.json()
        assert body["id"] == int(frame.id or 0)
        assert (body["type"], body["data"]) == ("deck.created", {"deck_id": deck["id"], "title": deck["title"]})
        parse_time(body["published_at"])
    assert int(second.id or 0) > int(first.id or 0)

    three = api.create_deck(user, "Published while away")
    with api.stream("GET", "/api/events", user=user, headers={"Last-Event-ID": first.id or ""}) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        replayed = [reader.event(), reader.event()]
        assert replayed[0].id == second.id  # only what came after Last-Event-ID
        assert replayed[1].json()["data"]["deck_id"] == three["id"]
        four = api.create_deck(user, "Live again")
        live = reader.event()
        assert live.json()["data"]["deck_id"] == four["id"]
        assert int(live.id or 0) > int(replayed[1].id or 0)
