"""The live event feed (`GET /api/events`, server-sent events): what it carries, keep-alives,
resume with `Last-Event-ID` (header or query), one user's events only, and a client that goes
away frees its subscription."""

from __future__ import annotations

import contextlib
import time

import pytest

from tests.http.support import Api, SseReader, eventually


def test_every_change_is_an_event_in_order(http_client: Api) -> None:
    api = http_client
    user = api.signup("feed")
    with api.stream("GET", "/api/events", user=user) as r:
        assert r.headers["cache-control"] == "no-store"
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        deck = api.create_deck(user, "Events")
        card = api.create_card(user, deck["id"])
        assert api.post(f"/api/cards/{card['id']}/reviews", user, json={"grade": 4}).status_code == 201
        assert api.patch(f"/api/decks/{deck['id']}", user, json={"description": "changed"}).status_code == 200
        assert api.patch(f"/api/cards/{card['id']}", user, json={"front": "changed"}).status_code == 200
        assert api.delete(f"/api/cards/{card['id']}", user).status_code == 204
        assert api.delete(f"/api/decks/{deck['id']}", user).status_code == 204
        frames = [reader.event() for _ in range(7)]
    assert [f.event for f in frames] == [
        "deck.created", "card.created", "review.created", "deck.updated", "card.updated", "card.deleted", "deck.deleted",
    ]  # fmt: skip
    ids = [int(f.id or 0) for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == 7
    bodies = [f.json() for f in frames]
    assert [b["type"] for b in bodies] == [f.event for f in frames]
    assert [b["id"] for b in bodies] == ids
    assert bodies[1]["data"] == {"deck_id": deck["id"], "card_id": card["id"]}
    assert bodies[2]["data"]["grade"] == 4 and bodies[2]["data"]["card_id"] == card["id"]
    assert bodies[3]["data"] == {"deck_id": deck["id"], "fields": ["description"]}


def test_keepalive_comments_on_an_idle_stream(http_client: Api) -> None:
    api = http_client
    user = api.signup("idle")
    with api.stream("GET", "/api/events", user=user) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        started = time.monotonic()
        ticks = [reader.frame(), reader.frame()]
        waited = time.monotonic() - started
    assert [(f.comment, f.event, f.data) for f in ticks] == [("keepalive", None, "")] * 2
    # two ticks of `sse_keepalive_s`, give or take one (the ticker runs on its own clock)
    assert api.settings.sse_keepalive_s * 0.5 <= waited <= api.settings.sse_keepalive_s * 4 + 1


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_after_last_event_id(http_client: Api, how: str) -> None:
    api = http_client
    user = api.signup("resume")
    for i in range(4):
        api.create_deck(user, f"Missed {i}")
    with api.stream("GET", "/api/events", user=user) as r:  # no resume: nothing from the past
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        now = api.create_deck(user, "Now")
        first = reader.event()
        assert first.json()["data"]["deck_id"] == now["id"]
    later = api.create_deck(user, "Later")
    kw = {"headers": {"Last-Event-ID": first.id}} if how == "header" else {"params": {"last_event_id": first.id}}
    with api.stream("GET", "/api/events", user=user, **kw) as r:  # type: ignore[arg-type]
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        assert reader.event().json()["data"]["deck_id"] == later["id"]
        # nothing else was missed: the next event is a new one
        newest = api.create_deck(user, "Newest")
        assert reader.event().json()["data"]["deck_id"] == newest["id"]


def test_garbage_last_event_id_means_no_resume(http_client: Api) -> None:
    api = http_client
    user = api.signup("garbage")
    api.create_deck(user, "Old")
    with api.stream("GET", "/api/events", user=user, headers={"Last-Event-ID": "not-a-number"}) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        fresh = api.create_deck(user, "Fresh")
        assert reader.event().json()["data"]["deck_id"] == fresh["id"]


def test_a_user_sees_only_their_own_events(http_client: Api) -> None:
    api = http_client
    alice, bob = api.signup("alice"), api.signup("bob")
    with api.stream("GET", "/api/events", user=alice) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        api.create_deck(bob, "Bob's")
        own = api.create_deck(alice, "Alice's")
        event = reader.event()
    assert event.json()["data"] == {"deck_id": own["id"], "title": "Alice's"}
    # resuming from before Bob's deck does not reveal it either
    with api.stream("GET", "/api/events", user=alice, headers={"Last-Event-ID": "0"}) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        replayed = reader.event()
    assert replayed.json()["data"]["deck_id"] == own["id"]


def test_a_client_that_leaves_is_unsubscribed(http_client: Api) -> None:
    api = http_client
    user = api.signup("leaver")
    bus = api.bus
    # streams of earlier tests are gone too (a live server notices at its next keep-alive)
    eventually(lambda: bus.subscriber_count == 0, within=5, what="earlier streams released")
    baseline = 0
    with contextlib.ExitStack() as streams:
        readers = []  # kept: a dropped line iterator closes its connection (httpcore)
        for _ in range(3):
            reader = SseReader(streams.enter_context(api.stream("GET", "/api/events", user=user)))
            assert reader.frame().comment == "connected"
            readers.append(reader)
        assert bus.subscriber_count == baseline + 3
    # live servers notice at the next write at the latest: a keep-alive tick
    eventually(lambda: bus.subscriber_count == baseline, within=5, what="subscriptions released")
    assert api.get("/api/me", user).status_code == 200
