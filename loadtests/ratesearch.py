"""Searching for the largest level a server sustains: bisection between a level that met an
objective and one that failed, each probe a real measurement.

* `find_sustainable_rate`: the highest open-loop offered rate (req/s) whose probe meets a p99
  objective with few errors and the rate actually achieved (TechEmpower #1227's figure instead
  of a peak). Linear bisection over fractions of a known peak.
* `geometric_search`: the same idea over integer levels that span orders of magnitude (held
  chat streams, subscribers, connections): grow geometrically from a start level until a probe
  fails, then bisect geometrically (midpoint √(lo·hi)) until hi/lo ≤ 1 + resolution, within a
  probe count and a time budget. `loadtests/capacity.py` uses it for the capacity cells.

Both take the measurement as a callable, so the search is tested on synthetic functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

ACHIEVED_MIN = 0.95  # achieved / target below this: the sample did not run at its rate
MAX_ERROR_RATE = 0.01  # errors / requests sent must stay below this


def judge(sample: Mapping[str, Any], rate: float, objective_p99_ms: float, *,
          max_error_rate: float = MAX_ERROR_RATE, min_achieved: float = ACHIEVED_MIN) -> list[str]:
    """Why a probe at ``rate`` fails the objective (an empty list: it meets it)."""
    reasons: list[str] = []
    extra = sample.get("extra") or {}
    errors = sum(int(v) for v in (sample.get("errors") or {}).values())
    attempted = max(int(extra.get("planned") or 0), int(sample.get("requests") or 0) + errors, 1)
    p99 = (sample.get("latency_ms") or {}).get("p99")
    if p99 is None:
        reasons.append("no responses")
    elif p99 > objective_p99_ms:
        reasons.append(f"p99 {p99:.1f} ms > {objective_p99_ms:g} ms")
    if errors / attempted >= max_error_rate:
        reasons.append(f"errors {errors}/{attempted}")
    achieved = extra.get("achieved_fraction")
    if achieved is None:
        achieved = float(sample.get("rps") or 0.0) / rate
    if achieved < min_achieved:
        reasons.append(f"achieved {achieved:.1%} of {rate:g}/s")
    if extra.get("client_lagging"):
        reasons.append("client lagging its schedule")
    return reasons


def find_sustainable_rate(
    measure: Callable[[float], dict[str, Any]],
    peak_rps: float,
    objective_p99_ms: float,
    *,
    probes: int = 6,
    low_fraction: float = 0.0,
    high_fraction: float = 1.0,
    max_error_rate: float = MAX_ERROR_RATE,
    min_achieved: float = ACHIEVED_MIN,
) -> dict[str, Any]:
    """Bisect over fractions of ``peak_rps`` for the highest offered rate whose sample meets
    ``objective_p99_ms`` with errors below ``max_error_rate`` and ≥ ``min_achieved`` of the rate.

    ``measure(rate)`` runs one open-loop sample (typically `run_open_loop` against a fresh
    server) and returns it. The first probe is at the middle of [low, high]; each probe halves
    the interval (6 probes: 1/64 of the range). Returns ``{"rate", "fraction", "peak_rps",
    "objective_p99_ms", "probes": [{"rate", "fraction", "ok", "reasons", "sample"}...],
    "client_limited"}``; ``rate`` is None when no probe met the objective. ``client_limited``:
    some probe failed because the client lagged its schedule (the search then measured the
    client, not the server).
    """
    if peak_rps <= 0 or probes < 1 or not 0 <= low_fraction < high_fraction:
        raise ValueError("need peak_rps > 0, probes >= 1, 0 <= low_fraction < high_fraction")
    lo, hi = low_fraction, high_fraction
    best: float | None = None
    history: list[dict[str, Any]] = []
    for _ in range(probes):
        fraction = (lo + hi) / 2
        rate = peak_rps * fraction
        sample = measure(rate)
        reasons = judge(sample, rate, objective_p99_ms, max_error_rate=max_error_rate,
                        min_achieved=min_achieved)
        ok = not reasons
        history.append({"rate": rate, "fraction": fraction, "ok": ok, "reasons": reasons,
                        "p99_ms": (sample.get("latency_ms") or {}).get("p99"),
                        "rps": sample.get("rps"), "sample": sample})
        if ok:
            best = fraction if best is None else max(best, fraction)
            lo = fraction
        else:
            hi = fraction
    return {
        "rate": None if best is None else peak_rps * best,
        "fraction": best,
        "peak_rps": peak_rps,
        "objective_p99_ms": objective_p99_ms,
        "probes": history,
        "client_limited": any("client lagging its schedule" in p["reasons"] for p in history),
    }


def geometric_search(
    probe: Callable[[int], tuple[bool, list[str]]],
    *,
    start: int,
    max_level: int,
    resolution: float = 0.15,
    growth: float = 4.0,
    min_level: int = 1,
    max_probes: int = 12,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The largest integer level in [min_level, max_level] for which ``probe(level)`` holds.

    ``probe`` returns (held, reasons). Up: from ``start`` multiply by ``growth`` (capped at
    ``max_level``) while probes hold; down: divide by ``growth`` (floored at ``min_level``) while
    they fail. Then bisect geometrically between the largest held and the smallest failed level
    until ``failed_hi / held_lo <= 1 + resolution`` (or they are adjacent integers). Assumes
    "held" is monotone in the level (more load never helps); a non-monotone answer still ends
    with held_lo < failed_hi, both measured. Stops early after ``max_probes`` probes or once
    ``budget_s`` has passed (checked before each probe): then ``stopped`` says why and the
    interval is wider than the resolution.

    Returns ``{"held_lo", "failed_hi", "resolution", "max_tried", "probes": [{"level", "held",
    "reasons"}...], "converged", "stopped"}``; ``held_lo`` 0: even ``min_level`` failed;
    ``failed_hi`` None: nothing failed up to ``max_tried``.
    """
    if not 1 <= min_level <= start <= max_level or resolution <= 0 or growth <= 1:
        raise ValueError("need 1 <= min_level <= start <= max_level, resolution > 0, growth > 1")
    began = clock()
    held_lo = 0
    failed_hi: int | None = None
    probes: list[dict[str, Any]] = []
    stopped: str | None = None

    def run(level: int) -> bool:
        nonlocal held_lo, failed_hi
        held, reasons = probe(level)
        probes.append({"level": level, "held": bool(held), "reasons": list(reasons)})
        if held:
            held_lo = max(held_lo, level)
        else:
            failed_hi = level if failed_hi is None else min(failed_hi, level)
        return bool(held)

    def narrow_enough() -> bool:
        if failed_hi is None:
            return held_lo >= max_level
        if held_lo == 0:
            return failed_hi <= min_level
        return failed_hi - held_lo <= 1 or failed_hi / held_lo <= 1 + resolution

    def may_probe() -> bool:
        nonlocal stopped
        if len(probes) >= max_probes:
            stopped = f"probe limit ({max_probes})"
        elif budget_s is not None and clock() - began >= budget_s:
            stopped = f"time budget ({budget_s:g} s)"
        return stopped is None

    level = start
    if may_probe() and run(level):
        while level < max_level and may_probe():
            level = min(max_level, max(level + 1, math.ceil(level * growth)))
            if not run(level):
                break
    else:
        while failed_hi is not None and level > min_level and held_lo == 0 and may_probe():
            level = max(min_level, min(level - 1, math.floor(level / growth)))
            run(level)
    while not narrow_enough() and failed_hi is not None and may_probe():
        lo = max(held_lo, min_level - 1)
        if lo == 0:
            mid = max(min_level, failed_hi // 2) if min_level < failed_hi else min_level
        else:
            mid = round(math.sqrt(lo * failed_hi))
        mid = min(max(mid, lo + 1), failed_hi - 1)
        run(mid)
    return {
        "held_lo": held_lo,
        "failed_hi": failed_hi,
        "resolution": resolution,
        "max_tried": max(p["level"] for p in probes) if probes else 0,
        "probes": probes,
        "converged": narrow_enough(),
        "stopped": stopped,
    }
