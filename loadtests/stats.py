"""Statistics over samples: median with a 95% interval, CV, the cell flags, significance tests.

* Interval of a cell's central value: n ≥ 10 samples → percentile bootstrap of the median
  (seeded); 2 ≤ n < 10 → Student-t interval on the log scale (the geometric mean's interval:
  never a negative bound for a positive quantity; a bootstrap of 3–5 values only re-draws the
  sample's own extremes); values with zeros: the t-interval of the mean, cut at 0 when no
  value is negative; n = 1 → none.
* Ratios between two stacks (`log_ratio`): Welch's t-interval on the difference of the mean
  logs (n ≥ 2 a side), i.e. an interval for the ratio of geometric means; always positive.
* CV = sample standard deviation / mean (n ≥ 2); a cell with CV above `NOISY_CV` is "noisy".
* Flags (RESULTS_SCHEMA.md): ``client-bound`` (the stack reached more than a third of the
  driver's ceiling, or the load generator's CPU passed `CLIENT_CPU_SATURATED`), ``noisy``,
  ``errors`` (any error in any sample), ``writes-mismatch`` (an acknowledged write missing, or
  more rows than acknowledged + in flight).
* Two sets of samples: Welch's t-test (n ≥ 2 each) and Mann–Whitney U (n ≥ 4 each, where it
  can reach p < 0.05), both two-sided; `compare.py` adds a minimum ratio, as asv does.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOISY_CV = 0.05
CEILING_FRACTION = 1 / 3
CLIENT_CPU_SATURATED = 85.0  # % of one core, per load-generator thread
BOOTSTRAP_MIN_N = 10
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261123
# Per-sample metrics summarized for every cell: name → how to read it from a sample.
SUMMARY_KEYS = ("rps", "p50_ms", "p90_ms", "p99_ms", "errors", "server_cpu_pct",
                "server_peak_rss_bytes", "client_cpu_pct")


# The latency block of a sample (RESULTS_SCHEMA.md): these percentiles, then "max".
LATENCY_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999))
LATENCY_KEYS = (*(name for name, _q in LATENCY_QUANTILES), "max")


def latency_block(at: Callable[[float], float], maximum: float) -> dict[str, float]:
    """{"p50", "p90", "p99", "p99_9", "max"}: each percentile read through `at(q)` (q in 0..1)."""
    return {**{name: at(q) for name, q in LATENCY_QUANTILES}, "max": maximum}


def latency_percentiles(values: Sequence[float]) -> dict[str, float]:
    """The latency block of raw values (the value at rank ⌊q·n⌋ of the sorted values), plus "n";
    zeros when there are none."""
    if not values:
        return {**dict.fromkeys(LATENCY_KEYS, 0.0), "n": 0}
    ordered = sorted(values)
    n = len(ordered)
    return {**latency_block(lambda q: ordered[min(n - 1, int(q * n))], ordered[-1]), "n": n}


def latency_percentiles_from_counts(counts: Mapping[float, int], maximum: float | None = None
                                    ) -> tuple[dict[str, float | None], int]:
    """The latency block of a histogram ({value: count}), and its total count; Nones when empty.
    A percentile is the smallest value with at least q × total counts at or below it (locust's
    own definition); "max" is the largest of the values and `maximum`."""
    total = sum(counts.values())
    if total == 0:
        return dict.fromkeys(LATENCY_KEYS), 0
    ordered = sorted(counts.items())

    def at(q: float) -> float:
        need = q * total
        seen = 0
        for value, n in ordered:
            seen += n
            if seen >= need:
                return value
        return ordered[-1][0]

    return dict(latency_block(at, max(ordered[-1][0], maximum or 0.0))), total


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (sample stdev / mean); None below two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean == 0:
        return None
    return float(statistics.stdev(values) / abs(mean))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean; None below two values."""
    n = len(values)
    if n < 2:
        return None
    from scipy import stats as sps

    mean = statistics.fmean(values)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return (mean - half, mean + half)


def t_log_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the geometric mean (t on the logs); None below two values or with a
    value ≤ 0."""
    if len(values) < 2 or min(values) <= 0:
        return None
    logs = [math.log(v) for v in values]
    lo, hi = t_interval(logs, confidence) or (0.0, 0.0)
    return (math.exp(lo), math.exp(hi))


@dataclass(frozen=True)
class RatioEstimate:
    """num/den as a ratio of geometric means, with a Welch t-interval on the log scale."""

    point: float
    low: float | None
    high: float | None
    method: str
    n_num: int
    n_den: int
    log_diff: float
    log_se: float | None
    df: float | None


LOG_RATIO_METHOD = "Welch t-interval on log values (ratio of geometric means)"


def log_ratio(num: Sequence[float], den: Sequence[float], confidence: float = 0.95) -> RatioEstimate | None:
    """The ratio of the geometric means of two positive samples with its Welch t-interval on the
    log scale (n ≥ 2 a side; with fewer, the point only). None if a value is ≤ 0 or a side is
    empty."""
    if not num or not den or min(num) <= 0 or min(den) <= 0:
        return None
    a, b = [math.log(x) for x in num], [math.log(x) for x in den]
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return RatioEstimate(math.exp(diff), None, None, "point estimate (n < 2 on a side)",
                             len(a), len(b), diff, None, None)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return RatioEstimate(math.exp(diff), math.exp(diff), math.exp(diff), LOG_RATIO_METHOD,
                             len(a), len(b), diff, 0.0, float(len(a) + len(b) - 2))
    df = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if va else 0.0) + (vb**2 / (len(b) - 1) if vb else 0.0))
    from scipy import stats as sps

    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    return RatioEstimate(math.exp(diff), math.exp(diff - half), math.exp(diff + half),
                         LOG_RATIO_METHOD, len(a), len(b), diff, se, df)


def joint_log_interval(parts: Sequence[RatioEstimate], confidence: float = 0.95
                       ) -> tuple[float, float, float]:
    """Geometric mean of several ratios with a joint interval: mean of the log differences,
    standard error sqrt(Σ se²)/k, t with the smallest part's degrees of freedom (conservative).
    Returns (point, low, high); every part needs an interval."""
    k = len(parts)
    mean = sum(p.log_diff for p in parts) / k
    se = math.sqrt(sum((p.log_se or 0.0) ** 2 for p in parts)) / k
    df = min(p.df or 1.0 for p in parts)
    from scipy import stats as sps

    half = float(sps.t.ppf(0.5 + confidence / 2, max(df, 1.0))) * se
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..1) of an already sorted sequence (numpy's default)."""
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_medians(values: Sequence[float], resamples: int, seed: int) -> list[float]:
    """Medians of `resamples` with-replacement resamples of `values` (seeded; numpy when
    installed, drawn in chunks of at most 2 M values)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a loadtests dependency
        rng = random.Random(seed)
        return [median(rng.choices(values, k=len(values))) for _ in range(resamples)]
    gen = np.random.default_rng(seed)
    arr = np.asarray(values, dtype=float)
    out: list[float] = []
    chunk = max(1, 2_000_000 // max(1, len(arr)))
    while len(out) < resamples:
        k = min(chunk, resamples - len(out))
        out.extend(np.median(arr[gen.integers(0, len(arr), size=(k, len(arr)))], axis=1).tolist())
    return out


def bootstrap_median_interval(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                              seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median."""
    meds = sorted(bootstrap_medians(values, resamples, seed))
    return (percentile(meds, 0.025), percentile(meds, 0.975))


def summarize(values: Sequence[float | None]) -> dict[str, Any] | None:
    """{"median", "ci95", "ci_method", "cv", "n"} of the non-null values; None if there are none."""
    clean = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return None
    n = len(clean)
    if n >= BOOTSTRAP_MIN_N:
        ci: tuple[float, float] | None = bootstrap_median_interval(clean)
        method: str | None = "bootstrap-median"
    elif min(clean) > 0:
        ci = t_log_interval(clean)
        method = "t-log (geometric mean)" if ci else None
    else:
        ci = t_interval(clean)
        if ci and min(clean) >= 0:
            ci = (max(0.0, ci[0]), ci[1])
        method = "t-mean (cut at 0)" if ci else None
    return {"median": median(clean), "ci95": list(ci) if ci else None, "ci_method": method,
            "cv": cv(clean), "n": n}


def errors_total(sample: Mapping[str, Any]) -> int:
    return int(sum(v for v in (sample.get("errors") or {}).values() if isinstance(v, int | float)))


def sample_value(key: str, sample: Mapping[str, Any]) -> float | None:
    latency = sample.get("latency_ms") or {}
    value: Any
    if key.endswith("_ms") and key.removesuffix("_ms") in ("p50", "p90", "p99"):
        value = latency.get(key.removesuffix("_ms"))
    elif key == "errors":
        value = errors_total(sample)
    else:
        value = sample.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cell_summary(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        summary = summarize([sample_value(key, s) for s in samples])
        if summary is not None:
            out[key] = summary
    return out


def cell_flags(cell: Mapping[str, Any], ceiling_rps: float | None,
               client_cpu_limit: float = CLIENT_CPU_SATURATED) -> list[str]:
    """The flags of a measured cell (the floor that defines the ceiling is client-bound too)."""
    samples = cell.get("samples") or []
    flags: list[str] = []
    rps = [s["rps"] for s in samples if isinstance(s.get("rps"), int | float)]
    cpu = [s["client_cpu_pct"] for s in samples if isinstance(s.get("client_cpu_pct"), int | float)]
    closed = cell.get("mode", "closed") == "closed" and cell.get("driver") in ("wrk", "locust")
    if closed and rps and ceiling_rps and median(rps) > CEILING_FRACTION * ceiling_rps:
        flags.append("client-bound")
    elif cpu and max(cpu) > client_cpu_limit:
        flags.append("client-bound")
    summary = (cell.get("summary") or {}).get("rps") or {}
    if summary.get("cv") is not None and summary["cv"] > NOISY_CV:
        flags.append("noisy")
    if any(errors_total(s) for s in samples):
        flags.append("errors")
    for s in samples:
        writes = s.get("writes") or {}
        acked, stored = writes.get("acknowledged"), writes.get("stored")
        if acked is None or stored is None:
            continue
        if stored < acked or stored - acked > int(cell.get("concurrency") or 0):
            flags.append("writes-mismatch")
            break
    return flags


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None below two values a side or with no variance."""
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.stdev(a) == 0 and statistics.stdev(b) == 0:
        return 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    from scipy import stats as sps

    return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Mann–Whitney U p-value; None below four values a side (it could not reach
    0.05 with three against three)."""
    if len(a) < 4 or len(b) < 4:
        return None
    from scipy import stats as sps

    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
