"""Capacity cells: how many chat streams, SSE subscribers, WebSocket connections or journey users
a stack holds, found by geometric bisection (`loadtests.ratesearch.geometric_search`) instead of a fixed grid.

Every probe is one real measurement at one level on a freshly started server (the runner passes
``measure(level) → sample``); the same objective judges every stack of a scenario:

* chat: every stream completed without error and time to first token p99 ≤ 2 × the simulated
  upstream's own TTFT (the stack adds at most as much again as the upstream itself takes).
* sse-fanout / ws: every subscriber connected within the connect timeout, every published event
  reached every subscriber (none lost, no publish error), delivery p99 ≤ `FANOUT_P99_MS`.
* journey ("concurrent users"): locust users with their think time, ≤ `JOURNEY_ERROR_SHARE` of
  requests failed and response time p99 ≤ `LATENCY_OBJECTIVE_MS` (the sustainable-rate objective); a
  probe whose load generator saturated holds nothing about the server and fails as client-bound.

Levels are capped by the open-file limit (20,000 per process here; client and server are separate
processes): a held subscriber costs the server one descriptor, a chat stream two (the client's
socket and the upstream's), so the search never asks for a level the limit alone would fail.

The cell gets one sample: the measurement at the largest held level (or the last probe when none
held), with ``extra.capacity = {held_lo, failed_hi, resolution, max_tried, objective, probes}``
(RESULTS_SCHEMA v2) and ``extra.max_sustained = held_lo`` for readers of schema v1.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from loadtests import scenarios
from loadtests.ratesearch import geometric_search

FANOUT_P99_MS = 1000.0  # delivery p99 objective for one published event (subscribers held)
CHAT_TTFT_FACTOR = 2.0  # chat: TTFT p99 ≤ this × the upstream's TTFT
# Response time p99 a stack must keep: the sustainable-rate search's objective and the journey's.
LATENCY_OBJECTIVE_MS = 100.0
JOURNEY_ERROR_SHARE = 0.01  # journey: failed requests allowed (evidence._held's share)
FD_HEADROOM = 1000  # descriptors kept free for the process itself (logs, pools, pipes)


@dataclass(frozen=True)
class CapacitySearch:
    """How one profile searches: from ``start`` up to ``max_level``, to ``resolution``
    (hi/lo ≤ 1 + resolution), at most ``max_probes`` probes and ``budget_s`` seconds per search."""

    start: int
    max_level: int
    resolution: float = 0.15
    max_probes: int = 10
    budget_s: float = 150.0
    growth: float = 4.0


def confirming(plan: CapacitySearch, previous: Mapping[str, Any]) -> CapacitySearch:
    """The search of a later repetition: it starts at the level the previous search held and
    steps straight to the level where it failed, so two probes on fresh servers re-measure the
    bracket; where the limit moved it walks on (up, or down by the same step) and bisects as
    usual. A previous search that held nothing, or never held below where it failed, gives no
    bracket: the plan's own search runs again."""
    lo, hi = int(previous.get("held_lo") or 0), previous.get("failed_hi")
    if lo < 1 or (hi is not None and hi <= lo):
        return plan
    growth = (float(hi) - 1e-6) / lo if hi is not None else plan.growth  # ceil(lo × growth) = hi
    return replace(plan, start=lo, growth=growth)


def open_files_limit() -> int:
    """This process's soft limit raised to its hard limit (what a driver can get), capped at
    the 20,000 the machine allows per process."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(hard if hard != resource.RLIM_INFINITY else 20_000, 20_000)


def level_cap(scenario: str, wanted: int, limit: int | None = None) -> int:
    """The largest level the open-file limit allows for ``scenario`` (never above ``wanted``)."""
    fds = (limit if limit is not None else open_files_limit()) - FD_HEADROOM
    known = scenarios.SCENARIOS.get(scenario)
    return max(1, min(wanted, fds // (known.fds_per_level if known else 1)))


def _streams(scenario: str) -> bool:
    """A streams-family scenario (held upstream streams: chat); the others searched are fan-out."""
    return scenarios.family_of(scenario) == "streams"


def _session(scenario: str) -> bool:
    return scenarios.family_of(scenario) == "session"


def objective_text(scenario: str, upstream_ttft_ms: float | None = None) -> str:
    if _session(scenario):
        return (f"≤ {JOURNEY_ERROR_SHARE:.0%} of requests failed, response time p99 ≤ {LATENCY_OBJECTIVE_MS:g} ms "
                "(users with their think time), load generator not saturated")
    if _streams(scenario):
        bound = f"{CHAT_TTFT_FACTOR * upstream_ttft_ms:g} ms" if upstream_ttft_ms else \
            f"{CHAT_TTFT_FACTOR:g}× the upstream's TTFT"
        return f"every stream completes without error, TTFT p99 ≤ {bound}"
    return (f"every subscriber connected, every event delivered to every subscriber, "
            f"delivery p99 ≤ {FANOUT_P99_MS:g} ms")


def chat_held(sample: Mapping[str, Any], level: int, upstream_ttft_ms: float) -> list[str]:
    """Why a chat probe at ``level`` streams did not hold (empty: it held)."""
    extra = sample.get("extra") or {}
    reasons = []
    completed = int(extra.get("completed") or 0)
    if completed < level:
        reasons.append(f"{completed}/{level} streams completed")
    errors = {k: v for k, v in (extra.get("errors") or {}).items() if v}
    if errors:
        reasons.append(f"errors {errors}")
    p99 = (extra.get("ttft_ms") or {}).get("p99")
    bound = CHAT_TTFT_FACTOR * upstream_ttft_ms
    if p99 is None:
        reasons.append("no first token")
    elif p99 > bound:
        reasons.append(f"TTFT p99 {p99:.0f} ms > {bound:g} ms")
    return reasons


def journey_held(sample: Mapping[str, Any], level: int) -> list[str]:
    """Why a journey probe at ``level`` users did not hold (empty: it held)."""
    extra = sample.get("extra") or {}
    reasons = []
    if extra.get("client_bound"):
        reasons.append("client-bound: the load generator saturated, not the server")
    requests = int(sample.get("requests") or 0)
    failed = sum(int(v or 0) for v in (sample.get("errors") or {}).values())
    if requests == 0:
        reasons.append("no request completed")
    elif failed > JOURNEY_ERROR_SHARE * requests:
        reasons.append(f"{failed}/{requests} requests failed")
    p99 = (sample.get("latency_ms") or {}).get("p99")
    if p99 is not None and p99 > LATENCY_OBJECTIVE_MS:
        reasons.append(f"p99 {p99:.0f} ms > {LATENCY_OBJECTIVE_MS:g} ms")
    return reasons


def fanout_held(sample: Mapping[str, Any], level: int) -> list[str]:
    """Why a fan-out probe at ``level`` subscribers did not hold (empty: it held)."""
    extra = sample.get("extra") or {}
    errors = sample.get("errors") or {}
    reasons = []
    connected = int(extra.get("connected") or 0)
    if connected < level:
        reasons.append(f"{connected}/{level} subscribers connected")
    if int(extra.get("lost") or 0):
        reasons.append(f"{extra['lost']} deliveries lost")
    if int(errors.get("publish") or 0):
        reasons.append(f"{errors['publish']} publish errors")
    p99 = (sample.get("latency_ms") or {}).get("p99")
    if p99 is None:
        reasons.append("no event delivered")
    elif p99 > FANOUT_P99_MS:
        reasons.append(f"delivery p99 {p99:.0f} ms > {FANOUT_P99_MS:g} ms")
    return reasons


def search_capacity(
    scenario: str,
    measure: Callable[[int], dict[str, Any]],
    plan: CapacitySearch,
    *,
    upstream_ttft_ms: float | None = None,
    fd_limit: int | None = None,
    fatal: tuple[type[BaseException], ...] = (),
) -> dict[str, Any] | None:
    """Run the search; the cell's sample (see the module docstring), None when no probe ran.

    A probe whose measurement raises counts as not held, with the exception as its reason,
    except for the ``fatal`` exception types (a stack that answers wrongly): those end the search.
    """
    samples: dict[int, dict[str, Any]] = {}
    max_level = level_cap(scenario, plan.max_level, fd_limit)
    start = min(plan.start, max_level)

    def probe(level: int) -> tuple[bool, list[str]]:
        try:
            sample = measure(level)
        except fatal:
            raise
        except Exception as exc:  # a probe that breaks the server did not hold
            return False, [f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]]
        samples[level] = sample
        if _session(scenario):
            reasons = journey_held(sample, level)
        elif _streams(scenario):
            reasons = chat_held(sample, level, float(upstream_ttft_ms or 0.0))
        else:
            reasons = fanout_held(sample, level)
        return not reasons, reasons

    began = time.monotonic()
    found = geometric_search(probe, start=start, max_level=max_level, resolution=plan.resolution,
                             growth=plan.growth, max_probes=plan.max_probes, budget_s=plan.budget_s)
    if not samples:
        return None
    held_lo = found["held_lo"]
    chosen = samples.get(held_lo) or samples[found["probes"][-1]["level"]]
    capacity = {
        "held_lo": held_lo, "failed_hi": found["failed_hi"], "resolution": plan.resolution,
        "max_tried": found["max_tried"], "objective": objective_text(scenario, upstream_ttft_ms),
        "probes": found["probes"], "converged": found["converged"], "stopped": found["stopped"],
        "level_cap": max_level, "search_s": round(time.monotonic() - began, 1),
        "sample_level": held_lo if held_lo in samples else found["probes"][-1]["level"],
    }
    sample = dict(chosen)
    sample["extra"] = {**(chosen.get("extra") or {}), "capacity": capacity, "max_sustained": held_lo,
                       "max_tried": found["max_tried"]}
    return sample


def interval_text(capacity: Mapping[str, Any]) -> str:
    """"held ≥ 134, failed at 146" / "held < 1" / "held ≥ 10000 (nothing failed up to 10000)"."""
    lo, hi = capacity["held_lo"], capacity["failed_hi"]
    if hi is None:
        return f"held ≥ {lo} (nothing failed up to {capacity['max_tried']})"
    if lo == 0:
        return f"held < {hi}"
    return f"held ≥ {lo}, failed at {hi}"
