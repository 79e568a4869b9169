"""The event feed's cost per write: reviews through the async service on PostgreSQL with the old
in-process bus (publish after commit) vs the shared feed (advisory lock + id, INSERT + NOTIFY in
the transaction), rounds interleaved, one drained subscriber. Indicative only on a shared machine.

    STACKBENCH_PGDATA=/tmp/pg-x python -m benchmarks.feed_write_cost [reviews per round]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from flashcards._async.service import Service
from provision import postgres
from tests.support import make_settings

ROUNDS = 6
WARMUP = 20


async def main(n: int) -> None:
    service = Service(make_settings(postgres.start(database="stackbench_feed_cost")))
    await service.db.drop_schema()
    await service.db.create_schema()
    user = await service.register({"username": "bench", "display_name": "B", "password": "password123456"})
    deck = await service.create_deck(user.id, {"title": "t"})
    card = await service.create_card(user.id, deck.id, {"front": "f", "back": "b"})
    await service.start_feed()
    sub = service.subscribe(user.id)

    async def drain() -> None:
        while True:
            await sub.queue.get()

    drainer = asyncio.create_task(drain())
    ms: dict[bool, list[float]] = {False: [], True: []}
    for r in range(ROUNDS):
        for shared in (False, True) if r % 2 == 0 else (True, False):
            service.feed.shared = shared  # False: exactly the old path (bus.publish after commit)
            for _ in range(WARMUP):
                await service.review_card(user.id, card.id, {"grade": 4})
            started = time.perf_counter()
            for _ in range(n):
                await service.review_card(user.id, card.id, {"grade": 4})
            ms[shared].append((time.perf_counter() - started) / n * 1e3)
    drainer.cancel()
    await service.close()
    old, new = statistics.median(ms[False]), statistics.median(ms[True])
    print(f"in-process bus : {old:.3f} ms/review, rounds {[round(x, 3) for x in ms[False]]}")
    print(f"PostgreSQL feed: {new:.3f} ms/review, rounds {[round(x, 3) for x in ms[True]]}")
    print(f"ratio {new / old:.2f}x (+{new - old:.3f} ms per write), median of {ROUNDS} rounds of {n}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
