"""Sanity checks on a measured cell, before a verdict may use it (pure functions of a cell).

Each check returns a `Check(name, ok, reason)`; `check_cell` runs every check that applies to
the cell. A cell failing any check is shown in the verdict row and excluded from the verdict,
with the reason. The checks (the numbers are the module's constants):

* **Little's law** (closed loops without think time: wrk, locust with think_s = 0): in a
  closed loop of N connections the mean latency W and throughput X obey N = X·W over the
  window. The window's edges move this by at most about 2N/(X·T) (a few % at these sizes), so
  a sample whose measured mean lies outside [N/X ÷ LITTLE_FACTOR, N/X × LITTLE_FACTOR] measured
  something other than the loop it reports (requests stalled past the window, connections
  that never sent, a driver that starved some connections). The cell fails when the median
  sample does.
* **No timeouts**: a sample with errors.timeout > 0 dropped requests the latency figures never
  saw.
* **p50 ≥ the CPU cost of a request**: the server's CPU seconds ÷ requests ÷ the processes that
  can run at once (min(serving processes, cores)) is a lower bound on a typical request's
  service time; a median latency below it is not a latency of those requests. A mix of
  requests (the journey: reviews beside cheap config reads) is held to its mean latency
  instead: its median request may well cost less than the average one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from loadtests.cell import Cell, Setup
from loadtests.sample import Sample

LITTLE_FACTOR = 1.5
LITTLE_DRIVERS = ("wrk", "locust")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str
    applies: bool = True


@dataclass(frozen=True)
class Sanity:
    """Every check run on one cell; `ok` when none failed."""

    cell: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.checks if not c.ok]

    def summary(self) -> str:
        return "passed" if self.ok else "; ".join(self.reasons)


def _na(name: str, why: str) -> Check:
    return Check(name, True, why, applies=False)


def little_ratio(sample: Sample, concurrency: int | None) -> float | None:
    """Measured mean latency ÷ the N/X Little's law predicts (None where it cannot be read)."""
    n = sample.concurrency or concurrency
    mean = sample.latency_ms.mean
    if not n or not sample.rps or mean is None or mean <= 0:
        return None
    think = sample.extra.get("think_s")
    think_ms = 1000.0 * float(think) if isinstance(think, int | float) else 0.0
    predicted = 1000.0 * n / float(sample.rps) - think_ms
    return float(mean) / predicted if predicted > 0 else None


def littles_law(cell: Cell) -> Check:
    name = "Little's law"
    if cell.mode != "closed" or cell.driver not in LITTLE_DRIVERS:
        return _na(name, f"not a closed loop of {'/'.join(LITTLE_DRIVERS)}")
    if any(float(s.extra.get("think_s") or 0) > 0 for s in cell.samples):
        return _na(name, "think time between requests")
    ratios = [r for r in (little_ratio(s, cell.concurrency) for s in cell.samples) if r is not None]
    if not ratios:
        return _na(name, "no mean latency recorded")
    mid = statistics.median(ratios)
    sample = cell.samples[0]
    n = sample.concurrency or cell.concurrency
    # results from before the scripts timed requests themselves carry wrk's corrected mean,
    # which exceeds N/X whenever the server has a heavy tail (loadtests/wrk.py)
    which = "" if sample.extra.get("latency_mean_source", "").startswith("uncorrected") else (
        "wrk's corrected " if cell.driver == "wrk" else "")
    text = (f"{which}mean latency {mid:.2f}× the N/X = {n}/{statistics.median(s.rps for s in cell.samples):.0f}"
            f" req/s that Little's law predicts")
    if 1 / LITTLE_FACTOR <= mid <= LITTLE_FACTOR:
        return Check(name, True, text + f" (within ×/÷ {LITTLE_FACTOR:g})")
    return Check(name, False, f"Little's law violated: {text} (tolerance ×/÷ {LITTLE_FACTOR:g})")


def no_timeouts(cell: Cell) -> Check:
    name = "timeouts"
    counts = [s.timeouts for s in cell.samples]
    if not any(counts):
        return Check(name, True, "no timeouts")
    return Check(name, False, f"timeouts in {sum(1 for c in counts if c)} of {len(counts)} "
                              f"samples ({sum(counts):.0f} in all)")


def p50_above_cpu_cost(cell: Cell, setup: Setup | None) -> Check:
    name = "p50 ≥ CPU per request"
    parallel = 1
    if setup is not None:
        parallel = max(1, min(setup.processes, len(setup.cores) or setup.processes))
    below = []
    seen = 0
    for s in cell.samples:
        mixed = len(s.extra.get("requests_by_name") or {}) > 1  # a mix is held to its mean
        cost = s.metric("cpu_ms_per_request")
        which, value = ("mean", s.latency_ms.mean) if mixed else ("p50", s.latency_ms.p50)
        if cost is None or value is None:
            continue
        seen += 1
        if value < cost / parallel:
            below.append((which, value, cost / parallel))
    if not seen:
        return _na(name, "no server CPU time or p50 recorded")
    if not below:
        return Check(name, True, "p50 (a mix: mean) above the CPU cost of a request")
    which, value, cost = below[0]
    return Check(name, False, f"{which} {value:.3g} ms below the CPU cost of a request ({cost:.3g} ms "
                              f"CPU ÷ {parallel} parallel) in {len(below)} of {seen} samples")


def check_cell(cell: Cell, setup: Setup | None = None) -> Sanity:
    """Every sanity check of one cell (`setup`: what its server ran, for the CPU bound)."""
    if not cell.ok:
        return Sanity(cell.id, (Check("measured", False, f"cell {cell.status}"
                                      + (f": {cell.error}" if cell.error else "")),))
    return Sanity(cell.id, (littles_law(cell), no_timeouts(cell),
                            p50_above_cpu_cost(cell, setup or cell.setup)))
