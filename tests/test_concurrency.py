"""Concurrent reviews of one card serialize: none lost (real concurrency, both twins)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from flashcards import sm2
from flashcards._async.service import Service as AsyncService
from flashcards._sync.service import Service as SyncService
from tests.support import make_settings

CLIENTS = 24


@pytest.fixture(scope="module")
async def service(backend_dsn: str) -> AsyncIterator[AsyncService]:
    svc = AsyncService(make_settings(backend_dsn, pool_size=CLIENTS))
    await svc.db.drop_schema()
    await svc.db.create_schema()
    yield svc
    await svc.close()


async def _card(svc: AsyncService) -> tuple[int, int]:
    await svc.db.reset()
    await svc.register({"username": "racer", "display_name": "R", "password": "password1"})
    token = await svc.login({"username": "racer", "password": "password1"})
    user_id = svc.authenticate(f"Bearer {token.access_token}")
    deck = await svc.create_deck(user_id, {"title": "race"})
    card = await svc.create_card(user_id, deck.id, {"front": "f", "back": "b"})
    return user_id, card.id


async def _assert_serial(svc: AsyncService, user_id: int, card_id: int, acknowledged: int) -> None:
    history = await svc.list_reviews(user_id, card_id, {"limit": 100})
    assert len(history.items) == acknowledged
    chronological = list(reversed(history.items))
    replayed = sm2.replay([(r.grade, r.reviewed_at) for r in chronological])
    card = await svc.get_card(user_id, card_id)
    assert (card.repetitions, card.lapses, card.interval_days, card.ease) == (
        replayed.repetitions,
        replayed.lapses,
        replayed.interval_days,
        replayed.ease,
    )
    # Each review saw the state the previous one left: the chain has no gaps.
    for earlier, later in itertools.pairwise(chronological):
        assert later.previous == earlier.schedule


async def test_concurrent_async_reviews_none_lost(service: AsyncService) -> None:
    user_id, card_id = await _card(service)
    grades = [(i * 7) % 6 for i in range(CLIENTS)]
    results = await asyncio.gather(
        *(service.review_card(user_id, card_id, {"grade": g}) for g in grades)
    )
    await _assert_serial(service, user_id, card_id, len(results))


async def test_concurrent_sync_reviews_none_lost(service: AsyncService, backend_dsn: str) -> None:
    user_id, card_id = await _card(service)
    sync = SyncService(make_settings(backend_dsn, pool_size=CLIENTS))
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(sync.review_card, user_id, card_id, {"grade": (i * 5) % 6})
                for i in range(CLIENTS)
            ]
            acknowledged = sum(1 for f in futures if f.result() is not None)
    finally:
        sync.close()
    await _assert_serial(service, user_id, card_id, acknowledged)
