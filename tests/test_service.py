"""The service layer on both backends, through both twins (async source and generated sync)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flashcards import sm2
from flashcards._async.service import Service as AsyncService
from flashcards._sync.service import Service as SyncService
from flashcards.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from flashcards.events import KEEPALIVE
from flashcards.tables import cards, decks, reviews
from tests.support import make_settings, sqlite_dsn

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Twin:
    """The same awaitable API over either twin: sync calls run in a worker thread."""

    def __init__(self, service: AsyncService | SyncService) -> None:
        self.service = service
        self.is_async = isinstance(service, AsyncService)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.service, name)
        if self.is_async or name in {"authenticate", "subscribe"}:
            return fn  # type: ignore[no-any-return]
        return lambda *a, **k: asyncio.to_thread(fn, *a, **k)

    async def take(self, sub: Any, n: int, within_s: float = 10.0) -> list[Any]:
        """The next `n` events of a subscriber, through `Service.events` (on PostgreSQL they
        arrive through LISTEN, and a resume reads the table there); then the stream is closed."""
        def wanted(e: Any, out: list[Any]) -> bool:
            if e is not None:
                out.append(e)
            return len(out) == n

        if self.is_async:
            stream = self.service.events(sub)

            async def run() -> list[Any]:
                out: list[Any] = []
                async for e in stream:
                    if wanted(e, out):
                        break
                return out

            try:
                return await asyncio.wait_for(run(), within_s)
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        def run_sync() -> list[Any]:
            out: list[Any] = []
            stream = self.service.events(sub)
            for e in stream:
                if wanted(e, out):
                    break
            stream.close()  # type: ignore[attr-defined]
            return out

        return await asyncio.wait_for(asyncio.to_thread(run_sync), within_s)

    async def count(self, table: Any, *where: Any) -> int:
        stmt = select(func.count()).select_from(table).where(*where)
        if self.is_async:
            async with self.service.db.connect() as conn:  # type: ignore[attr-defined]
                return int((await conn.execute(stmt)).scalar_one())

        def run() -> int:
            with self.service.db.connect() as conn:
                return int(conn.execute(stmt).scalar_one())

        return await asyncio.to_thread(run)


@pytest.fixture(scope="session")
async def services(backend_dsn: str) -> AsyncIterator[dict[str, Any]]:
    settings = make_settings(backend_dsn)
    a = AsyncService(settings)
    await a.db.drop_schema()
    await a.db.create_schema()
    s = SyncService(settings)
    yield {"async": a, "sync": s}
    await a.close()
    s.close()


@pytest.fixture(params=["async", "sync"])
async def svc(request: pytest.FixtureRequest, services: dict[str, Any]) -> Twin:
    await services["async"].db.reset()
    return Twin(services[request.param])


async def new_user(svc: Twin, name: str = "alice") -> int:
    await svc.register({"username": name, "display_name": name.title(), "password": "correct horse"})
    token = await svc.login({"username": name, "password": "correct horse"})
    return int(svc.authenticate(f"Bearer {token.access_token}"))


async def test_register_login_me(svc: Twin) -> None:
    user_id = await new_user(svc)
    me = await svc.me(user_id)
    assert (me.username, me.display_name) == ("alice", "Alice")
    with pytest.raises(Conflict):
        await svc.register({"username": "alice", "display_name": "Other", "password": "another pw"})
    with pytest.raises(Unauthenticated):
        await svc.login({"username": "alice", "password": "wrong password"})
    with pytest.raises(Unauthenticated):
        await svc.login({"username": "nobody", "password": "correct horse"})
    with pytest.raises(Unauthenticated):
        svc.authenticate("Bearer not.a.jwt")


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "Al", "display_name": "x", "password": "long enough"},  # too short, uppercase
        {"username": "bob!", "display_name": "x", "password": "long enough"},
        {"username": "bob", "display_name": "x", "password": "short"},
        {"username": "bob", "display_name": "", "password": "long enough"},
        {"username": "bob", "password": "long enough"},
        {"username": "bob", "display_name": "x", "password": "long enough", "admin": True},
    ],
)
async def test_register_rejects_bad_input(svc: Twin, payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        await svc.register(payload)
    assert caught.value.errors and all("field" in e for e in caught.value.errors)


async def test_deck_crud_and_pagination(svc: Twin) -> None:
    user_id = await new_user(svc)
    created = [await svc.create_deck(user_id, {"title": f"Deck {i}"}) for i in range(7)]
    seen, cursor = [], None
    while True:
        page = await svc.list_decks(user_id, {"limit": 3, "cursor": cursor})
        seen += [d.id for d in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [d.id for d in created]
    updated = await svc.update_deck(user_id, created[0].id, {"description": "verbs"})
    assert (updated.title, updated.description) == ("Deck 0", "verbs")
    await svc.delete_deck(user_id, created[0].id)
    with pytest.raises(NotFound):
        await svc.get_deck(user_id, created[0].id)
    with pytest.raises(InvalidInput):
        await svc.list_decks(user_id, {"cursor": "garbage!"})
    with pytest.raises(InvalidInput):
        await svc.list_decks(user_id, {"cursor": "bm90LWFuLWludA"})  # base64 of "not-an-int"


async def test_bad_values_raise_domain_errors_and_write_nothing(svc: Twin) -> None:
    alice, bob = await new_user(svc, "alice"), await new_user(svc, "bob")
    deck = await svc.create_deck(alice, {"title": "Mine"})
    card = await svc.create_card(alice, deck.id, {"front": "f", "back": "b"})

    with pytest.raises(InvalidInput):
        await svc.create_deck(alice, {"title": "x" * 201})
    with pytest.raises(InvalidInput):
        await svc.create_deck(alice, {"title": "nul \x00 byte"})
    for grade in (7, -1, True, "5", 2.5, None):
        with pytest.raises(InvalidInput):
            await svc.review_card(alice, card.id, {"grade": grade})
    with pytest.raises(NotFound):
        await svc.review_card(alice, 10**12, {"grade": 4})
    # Another user's objects do not exist for bob, and stay untouched.
    with pytest.raises(NotFound):
        await svc.get_deck(bob, deck.id)
    with pytest.raises(NotFound):
        await svc.update_deck(bob, deck.id, {"title": "stolen"})
    with pytest.raises(NotFound):
        await svc.create_card(bob, deck.id, {"front": "f", "back": "b"})
    with pytest.raises(NotFound):
        await svc.review_card(bob, card.id, {"grade": 5})
    with pytest.raises(NotFound):
        await svc.delete_card(bob, card.id)
    with pytest.raises(NotFound):
        await svc.list_reviews(bob, card.id)

    assert await svc.count(decks) == 1
    assert await svc.count(cards) == 1
    assert await svc.count(reviews) == 0
    assert (await svc.get_deck(alice, deck.id)).title == "Mine"
    unchanged = await svc.get_card(alice, card.id)
    assert (unchanged.repetitions, unchanged.ease, unchanged.interval_days) == (0, 2.5, 0)


async def test_reviews_follow_sm2_and_are_stored(svc: Twin) -> None:
    user_id = await new_user(svc)
    deck = await svc.create_deck(user_id, {"title": "SM-2"})
    card = await svc.create_card(user_id, deck.id, {"front": "q", "back": "a"}, now=T0)
    grades = [5, 5, 5, 5, 4, 1, 3]
    expected, now = sm2.Schedule(due_at=T0), T0
    for i, grade in enumerate(grades):
        now = T0 + timedelta(days=i * 30)
        review = await svc.review_card(user_id, card.id, {"grade": grade}, now=now)
        expected = sm2.review(expected, grade, now)
        assert review.schedule.interval_days == expected.interval_days
        assert review.schedule.ease == expected.ease
        assert review.schedule.due_at == expected.due_at
    stored = await svc.get_card(user_id, card.id)
    assert [stored.interval_days, stored.repetitions, stored.lapses, stored.ease] == [1, 1, 1, 2.22]  # EF 2.9 −0.54 (q=1) −0.14 (q=3)
    history = await svc.list_reviews(user_id, card.id, {"limit": 100})
    assert [r.grade for r in history.items] == list(reversed(grades))
    assert [r.schedule.interval_days for r in reversed(history.items)] == [1, 6, 17, 48, 140, 1, 1]


async def test_due_queue_order_and_cursor(svc: Twin) -> None:
    user_id = await new_user(svc)
    deck = await svc.create_deck(user_id, {"title": "Due"})
    ids = []
    for i in range(5):
        card = await svc.create_card(user_id, deck.id, {"front": f"{i}", "back": "x"}, now=T0 + timedelta(hours=5 - i))
        ids.append(card.id)
    # Reviewing pushes a card out of the queue (due tomorrow).
    await svc.review_card(user_id, ids[0], {"grade": 5}, now=T0 + timedelta(hours=6))
    now = T0 + timedelta(hours=6)
    first = await svc.due_cards(user_id, deck.id, {"limit": 2}, now=now)
    rest = await svc.due_cards(user_id, deck.id, {"limit": 10, "cursor": first.next_cursor}, now=now)
    queue = [c.id for c in first.items + rest.items]
    assert queue == [ids[4], ids[3], ids[2], ids[1]]  # earliest due first
    assert rest.next_cursor is None
    early = await svc.due_cards(user_id, deck.id, {}, now=T0 + timedelta(hours=1, minutes=30))
    assert [c.id for c in early.items] == [ids[4]]


async def test_events_are_published_and_resumable(svc: Twin) -> None:
    user_id = await new_user(svc)
    await svc.start_feed()
    sub = svc.subscribe(user_id)
    deck = await svc.create_deck(user_id, {"title": "Live"})
    card = await svc.create_card(user_id, deck.id, {"front": "f", "back": "b"})
    await svc.review_card(user_id, card.id, {"grade": 4})
    got = await svc.take(sub, 3)
    assert [e.type for e in got] == ["deck.created", "card.created", "review.created"]
    assert got[2].data["card_id"] == card.id and b"review.created" in got[2].sse
    assert got[0].id < got[1].id < got[2].id
    resumed = svc.subscribe(user_id, last_event_id=got[0].id)
    assert [e.sse for e in await svc.take(resumed, 2)] == [got[1].sse, got[2].sse]  # same bytes, live or resumed
    assert svc.service.bus.subscriber_count == 0


async def test_a_resume_older_than_retention_starts_with_a_reset(svc: Twin) -> None:
    """PostgreSQL: events past `event_retention_s` are pruned; a Last-Event-ID from before the
    oldest kept one gets `feed.reset` (its id: where to continue), then what is kept. An id the
    database never issued gets a reset too. SQLite: the same signal past the bus' history."""
    user_id = await new_user(svc)
    await svc.start_feed()
    live = svc.subscribe(user_id)
    deck = await svc.create_deck(user_id, {"title": "Old"})
    (first,) = await svc.take(live, 1)
    assert first.data["deck_id"] == deck.id
    if not svc.service.feed.shared:
        return  # the bus' history: test_the_bus_resets_a_resume_older_than_its_history
    prune = svc.service.feed.prune
    later = datetime.now(UTC) + timedelta(days=2)  # as if 2 days passed: beyond the 24 h kept
    pruned = await prune(later) if svc.is_async else await asyncio.to_thread(prune, later)
    assert pruned >= 1
    kept = await svc.create_deck(user_id, {"title": "Kept"})
    reset, after = await svc.take(svc.subscribe(user_id, last_event_id=first.id - 1), 2)
    assert (reset.type, reset.data["reason"], reset.data["last_event_id"]) == ("feed.reset", "last_event_id_expired", first.id - 1)
    assert reset.id < after.id and after.data["deck_id"] == kept.id
    assert b"event: feed.reset" in reset.sse and b"id: %d" % reset.id in reset.sse
    # resuming from the reset's id: no second reset
    assert [e.data["deck_id"] for e in await svc.take(svc.subscribe(user_id, last_event_id=reset.id), 1)] == [kept.id]
    (unknown,) = await svc.take(svc.subscribe(user_id, last_event_id=after.id + 10**9), 1)
    assert unknown.type == "feed.reset" and unknown.data["reason"] == "last_event_id_unknown"
    assert unknown.id == after.id  # the newest id issued: continue from there


def test_the_bus_resets_a_resume_older_than_its_history() -> None:
    from flashcards.events import EventBus

    bus = EventBus(lambda n: asyncio.Queue(n), history_size=2)
    events = [bus.publish(1, "deck.created", {"i": i}) for i in range(3)]
    backlog = bus.subscribe(1, last_event_id=events[0].id - 1).backlog
    assert [e.type for e in backlog] == ["feed.reset", "deck.created", "deck.created"]
    assert backlog[0].id == events[0].id and [e.id for e in backlog[1:]] == [events[1].id, events[2].id]
    assert [e.type for e in bus.subscribe(1, last_event_id=events[0].id).backlog] == ["deck.created"] * 2


async def test_event_stream_ends_after_overflow_and_unsubscribes(tmp_path: Path) -> None:
    from flashcards.events import EventBus

    bus = EventBus(lambda n: asyncio.Queue(n), queue_size=2)
    service = AsyncService(make_settings(sqlite_dsn(tmp_path)), bus=bus)  # the in-process feed
    sub = bus.subscribe(1)
    for i in range(5):
        bus.publish(1, "card.created", {"i": i})
    bus.keepalive()
    received = [e async for e in service.events(sub)]
    assert [e.data["i"] for e in received if e is not None] == [0, 1]
    assert sub.overflowed and bus.subscriber_count == 0 and KEEPALIVE is not None
