"""The database's ceiling on a sweep cell (`loadtests/report/ceiling.py`): connections in service ÷
(round trips × delay), the per-user lock for review, and the flag where a cell reached it."""

from __future__ import annotations

from typing import Any

from loadtests.cell import Cell
from loadtests.report import ceiling, crossover, sweep
from tests.loadtests.test_report_sweep import FAST, FLASK, cell, doc, jitter


def _at(stack: str, delay: float, rps: list[float], *, trips: float = 10.0, pool: int = 50, threads: int | None = 50,
        scenario: str = "card", users: int | None = None) -> dict[str, Any]:
    raw = cell(stack, delay, rps, scenario=scenario)
    raw["concurrency"] = 128
    for s in raw["samples"]:
        s["extra"]["proxy"]["round_trips_per_request"] = trips
        s["extra"]["db_delay_ms"] = delay
        if users is not None:
            s["extra"]["load_users"] = users
    raw["setup"]["threads_per_worker"] = threads
    raw["setup"]["sizing"] = {"pool_size": pool, "pool_max_overflow": 0}
    return raw


def _reached(raw: dict[str, Any]) -> ceiling.Ceiling | None:
    return ceiling.reached(raw, Cell.model_validate(raw))


def test_the_pool_ceiling_is_connections_in_service_over_round_trips_times_delay() -> None:
    raw = _at(FAST, 20.0, [230.0] * 3, threads=None)  # 50 ÷ (10 × 20 ms) = 250 req/s; 230 ≥ 85 %
    found = _reached(raw)
    assert found is not None and found.kind == "pool" and found.rps == 250.0
    assert found.flag == "pool-capped (≤ 250 req/s: 50 connections ÷ (10.0 round trips × 20 ms))"
    assert _reached(_at(FAST, 20.0, [200.0] * 3, threads=None)) is None  # 80 %: not at it
    # fewer threads than pool connections: the threads are what is in service
    threads = ceiling.ceilings(_at(FLASK, 20.0, [100.0] * 3, threads=20), Cell.model_validate(_at(FLASK, 20.0, [100.0] * 3, threads=20)))
    assert threads[0].rps == 100.0 and "20 threads" in threads[0].how
    assert _reached(_at(FLASK, 0.0, [5000.0] * 3)) is None  # no injected delay: no ceiling


def test_review_also_meets_its_users_feed_lock() -> None:
    raw = _at(FLASK, 20.0, [160.0] * 3, scenario="review", users=10)  # 10 ÷ (3 × 20 ms) ≈ 167
    found = _reached(raw)
    assert found is not None and found.kind == "lock" and round(found.rps) == 167
    assert "10 users ÷ (3 round trips × 20 ms)" in found.flag
    # card does not take the lock: only the pool bounds it
    assert [c.kind for c in ceiling.ceilings(_at(FLASK, 20.0, [160.0] * 3, users=10),
                                             Cell.model_validate(_at(FLASK, 20.0, [160.0] * 3, users=10)))] == ["pool"]


def test_two_capped_cells_read_as_the_sizing_not_the_framework() -> None:
    cells = [_at(FLASK, d, jitter(v, 5)) for d, v in ((5.0, 600.0), (20.0, 240.0))]
    cells += [_at(FAST, d, jitter(v, 5), threads=None) for d, v in ((5.0, 900.0), (20.0, 245.0))]
    section = doc(cells)["sweep"]
    grid, raws = crossover.grid(section, "card", "closed")
    rows, _ = crossover.ratio_rows(grid, "rps", lambda c: ceiling.reached(raws[c.id], c) is not None)
    readings = {r[1]: r[3] for r in rows}
    assert crossover.BOTH_CAPPED in readings["20"]  # 240 and 245 of 250: both at it
    assert crossover.BOTH_CAPPED not in readings["5"]  # 900 of 1,000 is at it, 600 is not
    table = sweep.detail_table(grid, raws, sweep.THROUGHPUT_COLS)
    flags = [row[-1] for row in table.rows if row[1] == "20"]
    assert len(flags) == 2 and all(f.startswith("pool-capped (≤ 250 req/s") for f in flags)
    # every delayed cell shows how close it ran, flagged or not; 0 ms has no ceiling
    served = {(row[0], row[1]): row[-2] for row in table.rows}
    assert served[(FLASK, "5")].endswith("pool (60%)") and served[(FLASK, "20")].endswith("pool (96%)")
