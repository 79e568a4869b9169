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
