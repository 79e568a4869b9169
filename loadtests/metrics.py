"""The metrics of a sample, one accessor each: `METRICS[name].read(sample)`, with its unit,
direction and where in a sample it is read."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadtests.jsontypes import num

if TYPE_CHECKING:
    from loadtests.sample import Sample


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    reads: str
    read: Callable[[Sample], float | None]
    latency: bool = False


def _lat(key: str) -> Callable[[Sample], float | None]:
    return lambda s: num(getattr(s.latency_ms, key))


def _rps_per_core(s: Sample) -> float | None:
    rps, cpu = num(s.rps), num(s.server_cpu_pct)
    return rps / (cpu / 100.0) if rps is not None and cpu else None


def _memory(s: Sample) -> float | None:
    return num(s.server_pss_bytes) if s.server_pss_bytes is not None else num(s.server_peak_rss_bytes)


def _ttft_p50(s: Sample) -> float | None:
    ttft = s.extra.get("ttft_ms")
    return num(ttft.get("p50")) if isinstance(ttft, Mapping) else None


def _cpu_ms_per_request(s: Sample) -> float | None:
    cpu = num(s.server_cpu_s)
    if cpu is None and s.server_cpu_pct is not None:
        cpu = float(s.server_cpu_pct) / 100.0 * float(s.duration_s)
    # The open-loop driver's and locust's server CPU span the whole run, warmup included, so it
    # divides by every answer of that run; `requests` counts the window's only (at 174 req/s with a 1 s
    # warmup that read 25 % high and failed the p50 ≥ CPU check).
    answered = num(s.extra.get("answered_total"))
    requests = answered if answered else float(s.requests)
    return 1000.0 * cpu / requests if cpu is not None and requests else None


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("rps", "req/s", True, "samples[].rps", lambda s: num(s.rps)),
    Metric("achieved_rps", "req/s", True, "samples[].achieved_rps, else rps",
           lambda s: num(s.achieved_rps) if s.achieved_rps is not None else num(s.rps)),
    Metric("p50_ms", "ms", False, "samples[].latency_ms.p50", _lat("p50"), True),
    Metric("p90_ms", "ms", False, "samples[].latency_ms.p90", _lat("p90"), True),
    Metric("p99_ms", "ms", False, "samples[].latency_ms.p99", _lat("p99"), True),
    Metric("mean_ms", "ms", False, "samples[].latency_ms.mean (never p50 in its place)",
           _lat("mean"), True),
    Metric("ttft_p50_ms", "ms", False, "samples[].extra.ttft_ms.p50 (time to first token)",
           _ttft_p50, True),
    Metric("memory", "bytes", False, "samples[].server_pss_bytes (PSS of all server processes); "
           "where absent server_peak_rss_bytes, labelled peak RSS", _memory),
    Metric("peak_rss", "bytes", False, "samples[].server_peak_rss_bytes (all server processes)",
           lambda s: num(s.server_peak_rss_bytes)),
    Metric("rps_per_core", "req/s per core", True, "samples[].rps / (server_cpu_pct / 100)",
           _rps_per_core),
    Metric("cpu_ms_per_request", "ms CPU", False,
           "server_cpu_s / (extra.answered_total, else requests) × 1000",
           _cpu_ms_per_request),
    Metric("error_rate", "errors per request", False, "sum(samples[].errors) / requests",
           lambda s: s.errors_total / max(float(s.requests), 1.0)),
    Metric("timeouts", "count", False, "samples[].errors.timeout", lambda s: s.timeouts),
    Metric("connects_per_s", "connections/s", True, "samples[].extra.connects_per_s",
           lambda s: num(s.extra.get("connects_per_s"))),
    Metric("server_cpu_pct", "% of a core", False, "samples[].server_cpu_pct",
           lambda s: num(s.server_cpu_pct)),
    Metric("client_cpu_pct", "% of a core", False, "samples[].client_cpu_pct",
           lambda s: num(s.client_cpu_pct)),
)}


def summarize_values(values: Sequence[float]) -> dict[str, float | None]:
    """Median and CV of some values (CV None below two values)."""
    if not values:
        return {"median": None, "cv": None}
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / abs(mean) if len(values) > 1 and mean else None
    return {"median": float(statistics.median(values)), "cv": cv}
