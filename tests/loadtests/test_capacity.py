"""Capacity searches: the first brackets the limit; a confirming search re-measures the bracket
in two probes where the limit stayed, and walks on where it moved."""

from __future__ import annotations

from typing import Any

from loadtests import capacity
from loadtests.capacity import CapacitySearch

PLAN = CapacitySearch(start=500, max_level=10_000, resolution=0.15, max_probes=8, budget_s=600)


def _fanout_at_limit(limit: int, tried: list[int]) -> Any:
    """A probe whose stack holds every level up to `limit` subscribers (a fan-out sample)."""
    def measure(level: int) -> dict[str, Any]:
        tried.append(level)
        held = level <= limit
        return {"extra": {"connected": level if held else limit, "lost": 0},
                "errors": {"publish": 0}, "latency_ms": {"p99": 200.0 if held else 4000.0}}
    return measure


def _search(limit: int, plan: CapacitySearch) -> tuple[dict[str, Any], list[int]]:
    tried: list[int] = []
    sample = capacity.search_capacity("sse-fanout", _fanout_at_limit(limit, tried), plan, fd_limit=20_000)
    assert sample is not None
    return sample["extra"]["capacity"], tried


def test_a_confirming_search_re_measures_the_bracket_in_two_probes() -> None:
    first, tried_first = _search(3000, PLAN)
    assert first["held_lo"] <= 3000 < first["failed_hi"] and first["converged"]
    assert len(tried_first) > 2
    again = capacity.confirming(PLAN, first)
    second, tried = _search(3000, again)
    assert tried == [first["held_lo"], first["failed_hi"]]  # both ends, each on a fresh probe
    assert (second["held_lo"], second["failed_hi"]) == (first["held_lo"], first["failed_hi"])
    assert second["converged"]


def test_a_confirming_search_follows_a_limit_that_moved() -> None:
    first, _ = _search(3000, PLAN)
    lower, tried = _search(2000, capacity.confirming(PLAN, first))
    assert lower["held_lo"] <= 2000 < lower["failed_hi"] and tried[0] == first["held_lo"]
    higher, _ = _search(5000, capacity.confirming(PLAN, first))
    assert higher["held_lo"] <= 5000 < higher["failed_hi"]


def test_no_bracket_means_the_plan_searches_again() -> None:
    assert capacity.confirming(PLAN, {"held_lo": 0, "failed_hi": 500}) == PLAN
    assert capacity.confirming(PLAN, {"held_lo": 900, "failed_hi": 800}) == PLAN  # not monotone
    held_all = capacity.confirming(PLAN, {"held_lo": 10_000, "failed_hi": None})
    assert held_all.start == 10_000 and held_all.growth == PLAN.growth
    _, tried = _search(20_000, held_all)
    assert tried == [10_000]  # the top level held again: nothing above it to try


def _journey_sample(p99: float, failed: int = 0, requests: int = 1000, client_bound: bool = False) -> dict[str, Any]:
    return {"requests": requests, "errors": {"connect": 0, "read": 0, "status": failed},
            "latency_ms": {"p99": p99}, "extra": {"client_bound": client_bound}}


def test_journey_users_are_held_by_error_share_p99_and_an_unsaturated_client() -> None:
    bound = capacity.LATENCY_OBJECTIVE_MS
    assert capacity.journey_held(_journey_sample(bound), 100) == []
    assert capacity.journey_held(_journey_sample(40.0, failed=10), 100) == []  # 1% is allowed
    assert capacity.journey_held(_journey_sample(40.0, failed=11), 100) == ["11/1000 requests failed"]
    assert capacity.journey_held(_journey_sample(bound + 1), 100) == [f"p99 {bound + 1:.0f} ms > {bound:g} ms"]
    assert capacity.journey_held(_journey_sample(40.0, requests=0), 100) == ["no request completed"]
    reasons = capacity.journey_held(_journey_sample(40.0, client_bound=True), 100)
    assert len(reasons) == 1 and reasons[0].startswith("client-bound")


def test_a_journey_search_doubles_the_users_and_bisects_to_where_p99_broke() -> None:
    tried: list[int] = []

    def measure(users: int) -> dict[str, Any]:  # response time breaks above 300 users
        tried.append(users)
        return _journey_sample(30.0 if users <= 300 else 450.0)

    plan = CapacitySearch(start=100, max_level=1600, resolution=0.15, max_probes=6, budget_s=600, growth=2.0)
    sample = capacity.search_capacity("journey", measure, plan, fd_limit=20_000)
    assert sample is not None
    found = sample["extra"]["capacity"]
    assert tried[:3] == [100, 200, 400]
    assert found["held_lo"] <= 300 < found["failed_hi"] <= 400 and found["held_lo"] >= 200
    assert "p99" in found["objective"] and sample["extra"]["max_sustained"] == found["held_lo"]
    failed = [p for p in found["probes"] if not p["held"]]
    assert failed and all(p["reasons"] == ["p99 450 ms > 100 ms"] for p in failed)
