"""The delay proxy against the real PostgreSQL: the delay it adds per round trip, and bytes that
pass through unchanged (COPY both ways, prepared statements), with asyncpg and psycopg."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections.abc import Callable, Iterator

import asyncpg
import psycopg
import pytest

from flashcards.dsn import driver_url
from loadtests.delayproxy import (
    DelayProxy,
    Delays,
    proxied_dsn,
    round_trips_ms,
    unix_socket_of,
    upstream_of,
)
from tests.support import postgres_dsn

ROUND_TRIPS = 60
# The machine is shared and loaded: the loop may wake late, never early. A round trip through
# the proxy must take at least the setting; its median may exceed it by this much.
LATE_MS = 4.0


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn("stackbench_test_delayproxy")


def _plain(dsn: str) -> str:
    return driver_url(dsn, {"postgresql": "postgresql"}).render_as_string(hide_password=False)


@pytest.fixture
def proxy_at(dsn: str) -> Iterator[Callable[[Delays], DelayProxy]]:
    started: list[DelayProxy] = []

    def start(delays: Delays) -> DelayProxy:
        proxy = DelayProxy(upstream_of(dsn), delays).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


async def _asyncpg_round_trips(dsn: str, count: int) -> list[float]:
    conn = await asyncpg.connect(_plain(dsn))
    try:
        for _ in range(10):
            await conn.fetchval("SELECT 1")
        times = []
        for _ in range(count):
            started = time.perf_counter()
            assert await conn.fetchval("SELECT 1") == 1
            times.append((time.perf_counter() - started) * 1e3)
        return times
    finally:
        await conn.close()


def _timed(driver: str, dsn: str, count: int) -> list[float]:
    if driver == "asyncpg":
        return asyncio.run(_asyncpg_round_trips(dsn, count))
    return round_trips_ms(dsn, count)


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
@pytest.mark.parametrize(("rtt_ms", "split"), [(0.0, "even"), (20.0, "even"), (20.0, "reply"), (5.0, "even")])
def test_adds_the_configured_delay_per_round_trip(dsn: str, proxy_at, driver: str, rtt_ms: float, split: str) -> None:
    direct = statistics.median(_timed(driver, dsn, ROUND_TRIPS))
    proxy = proxy_at(Delays.of(rtt_ms, split=split))
    through = _timed(driver, proxy.dsn(dsn), ROUND_TRIPS)
    added = statistics.median(through) - direct
    assert min(through) >= rtt_ms, f"a round trip took {min(through):.3f} ms < the {rtt_ms} ms setting"
    assert rtt_ms - 0.05 <= added <= rtt_ms + LATE_MS, f"median added {added:.3f} ms for a {rtt_ms} ms setting"


def test_one_way_delay_counts_twice_per_round_trip(dsn: str, proxy_at) -> None:
    proxy = proxy_at(Delays.of(one_way_ms=5.0))
    through = round_trips_ms(proxy.dsn(dsn), 30)
    assert min(through) >= 10.0
    assert statistics.median(through) <= 10.0 + LATE_MS


def test_jitter_only_adds_and_keeps_order(dsn: str, proxy_at) -> None:
    proxy = proxy_at(Delays.of(4.0, jitter_ms=6.0))
    # Many statements in flight on one connection (asyncpg pipelines executemany): any reordered
    # chunk would corrupt the protocol stream and fail the call.
    async def work() -> list[float]:
        conn = await asyncpg.connect(_plain(proxy.dsn(dsn)))
        try:
            await conn.execute("CREATE TEMP TABLE j (n int)")
            await conn.executemany("INSERT INTO j VALUES ($1)", [(i,) for i in range(500)])
            assert await conn.fetchval("SELECT sum(n) FROM j") == sum(range(500))
        finally:
            await conn.close()
        return await _asyncpg_round_trips(proxy.dsn(dsn), 40)

    times = asyncio.run(work())
    assert min(times) >= 4.0
    assert max(times) - min(times) > 1.0, "jitter of 6 ms should spread round trips"


def _rows(n: int) -> bytes:
    return b"".join(b"%d\t%s\n" % (i, hashlib.sha256(str(i).encode()).hexdigest().encode() * 4) for i in range(n))


def test_copy_in_and_out_pass_bytes_unchanged(dsn: str, proxy_at) -> None:
    payload = _rows(40_000)  # ~10 MB: larger than the proxy's delay queue, so reads pause
    proxy = proxy_at(Delays.of(2.0))
    with psycopg.connect(_plain(proxy.dsn(dsn)), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_check")
        conn.execute("CREATE TABLE copy_check (n int PRIMARY KEY, body text)")
        with conn.cursor() as cur, cur.copy("COPY copy_check FROM STDIN") as copy:
            step = 1 << 16
            for start in range(0, len(payload), step):
                copy.write(payload[start:start + step])
        out = bytearray()
        with conn.cursor() as cur, cur.copy("COPY (SELECT * FROM copy_check ORDER BY n) TO STDOUT") as copy:
            for chunk in copy:
                out += chunk
    with psycopg.connect(_plain(dsn), autocommit=True) as direct:
        direct_out = bytearray()
        with direct.cursor() as cur, cur.copy("COPY (SELECT * FROM copy_check ORDER BY n) TO STDOUT") as copy:
            for chunk in copy:
                direct_out += chunk
        direct.execute("DROP TABLE copy_check")
    assert hashlib.sha256(out).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert bytes(direct_out) == payload


def test_prepared_statements_through_the_proxy(dsn: str, proxy_at) -> None:
    proxy = proxy_at(Delays.of(1.0))

    async def run(target: str) -> list[tuple[int, str, bytes]]:
        conn = await asyncpg.connect(_plain(target))
        try:
            stmt = await conn.prepare("SELECT g, md5(g::text), decode(repeat(md5(g::text), $2), 'hex') "
                                      "FROM generate_series(1, $1::int) AS g")
            rows = []
            for size in (1, 10, 2000):
                rows += [tuple(r) for r in await stmt.fetch(size, 20)]
            return rows
        finally:
            await conn.close()

    through = asyncio.run(run(proxy.dsn(dsn)))
    assert through == asyncio.run(run(dsn))
    assert len(through) == 2011

    with psycopg.connect(_plain(proxy.dsn(dsn)), prepare_threshold=0) as conn:
        for i in range(5):  # prepared server-side from the first execution
            got = conn.execute("SELECT %s::int * 2, repeat('x', %s::int)", (i, 100_000)).fetchone()
            assert got == (i * 2, "x" * 100_000)


def test_many_connections_at_once(dsn: str, proxy_at) -> None:
    proxy = proxy_at(Delays.of(5.0))

    async def run() -> float:
        pool = await asyncpg.create_pool(_plain(proxy.dsn(dsn)), min_size=40, max_size=40)
        assert pool is not None
        started = time.perf_counter()
        async with pool:
            values = await asyncio.gather(*(pool.fetchval("SELECT $1::int", i) for i in range(400)))
        assert values == list(range(400))
        return time.perf_counter() - started

    # 400 queries over 40 connections at ≥ 5 ms each: ≥ 10 sequential rounds ≈ 50 ms, far
    # below 400 × 5 ms (connections overlap their waits).
    assert asyncio.run(run()) < 1.0


def test_dsn_rewriting() -> None:
    unix = "postgresql://postgres@/stackbench?host=/tmp/pg"
    assert unix_socket_of(unix) == "/tmp/pg/.s.PGSQL.5432"
    assert proxied_dsn(unix, "127.0.0.1", 6000) == "postgresql://postgres@127.0.0.1:6000/stackbench"
    tcp = "postgresql://u:p@db.example:5433/x?sslmode=disable"
    assert unix_socket_of(tcp) is None
    assert upstream_of(tcp).port == 5433
    assert proxied_dsn(tcp, "127.0.0.1", 1) == "postgresql://u:p@127.0.0.1:1/x?sslmode=disable"
    with pytest.raises(ValueError):
        Delays.of(-1.0)
    assert Delays.of(20.0).to_server == Delays.of(20.0).to_client == 0.01
    assert Delays.of(20.0, split="reply").to_server == 0.0
