"""The open-loop driver split over N processes, so its ceiling grows with client cores.

One Python process on one core tops out at a few thousand requests a second; a rate above that
is split over ``processes`` copies of ``python -m loadtests.openloop``, each pinned to its own
client CPU where there are as many CPUs as processes (else they share the client CPUs, and
``extra.split.shared_cpus`` says so).

The aggregate must still be ONE even open-loop arrival stream at ``rate``: part ``k`` of ``n``
runs at ``rate / n`` with its plan shifted by ``k / rate``, and every part starts from the same
``time.monotonic()`` instant (CLOCK_MONOTONIC is one clock for the whole machine). Request ``i``
of part ``k`` is due at ``start + (k + i * n) / rate``: the union of the parts is exactly the
single-process plan ``start + j / rate``. The start is agreed by a handshake (each part creates
its ready file once imported and connected to nothing yet; the parent then writes the start
instant), so a slow interpreter start delays everyone instead of bursting one part.

Merging is exact: each part prints its HdrHistograms encoded; the parent decodes and adds them
(HdrHistogram addition is count-by-bucket, so the merged percentiles are those of one histogram
fed every value), never averaging percentiles. Counts and errors add; the achieved rate is the
sum of the parts'; ``client_cpu_pct`` is the busiest part's (the saturation flag is per
load-generator thread), the sum is ``extra.client_cpu_pct_total``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from loadtests import histograms, openloop, openloop_driver
from loadtests.accounting import run_measured
from loadtests.ratesearch import ACHIEVED_MIN
from loadtests.wire import RequestSpec

START_LEAD_S = 0.2  # from the last part's ready file to the shared start
READY_TIMEOUT_S = 60.0


def part_schedule(rate: float, processes: int) -> list[tuple[float, float]]:
    """(rate, phase offset in s) per part: ``rate / n`` each, part ``k`` shifted by ``k / rate``."""
    if rate <= 0 or processes < 1:
        raise ValueError("a split open loop needs rate > 0 and processes >= 1")
    return [(rate / processes, k / rate) for k in range(processes)]


def part_cpus(cpus: Sequence[int] | None, processes: int) -> list[list[int] | None]:
    """Each part on its own client CPU when there are enough; otherwise all share them."""
    if not cpus:
        return [None] * processes
    ordered = sorted(set(cpus))
    if len(ordered) >= processes:
        return [[ordered[k]] for k in range(processes)]
    return [ordered] * processes


def await_start(ready_file: str | None, start_file: str, timeout_s: float = READY_TIMEOUT_S) -> float:
    """In a part: say it is ready, then wait for the shared start instant (monotonic)."""
    if ready_file:
        Path(ready_file).touch()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            text = Path(start_file).read_text()
        except FileNotFoundError:
            time.sleep(0.002)
            continue
        return float(text)
    raise openloop_driver.OpenLoopError(f"no start instant in {start_file} after {timeout_s:g} s")


def run_open_loop_split(
    url: str,
    spec: RequestSpec,
    rate: float,
    duration_s: float,
    warmup_s: float,
    *,
    processes: int = 1,
    max_connections: int = 512,
    timeout_s: float = 2.0,
    cpus: Sequence[int] | None = None,
    seed: int | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """`openloop.run_open_loop` over ``processes`` pinned processes, merged into one sample."""
    if processes == 1:
        sample = openloop.run_open_loop(url, spec, rate, duration_s, warmup_s,
                                        max_connections=max_connections, timeout_s=timeout_s,
                                        cpus=cpus, seed=seed, python=python)
        sample["extra"]["processes"] = 1
        return sample
    schedule = part_schedule(rate, processes)
    pins = part_cpus(cpus, processes)
    per_part_connections = max(1, -(-max_connections // processes))
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="stackbench-split-") as tmp:
        spec_file = os.path.join(tmp, "spec.json")
        start_file = os.path.join(tmp, "start")
        Path(spec_file).write_text(spec.to_json())
        readies = [os.path.join(tmp, f"ready-{k}") for k in range(processes)]
        argvs = [[*openloop.command(url, spec_file, part_rate, duration_s, warmup_s,
                                    per_part_connections, timeout_s,
                                    None if seed is None else seed + k, python),
                  "--offset", repr(offset), "--ready-file", readies[k], "--start-file", start_file]
                 for k, (part_rate, offset) in enumerate(schedule)]
        limit = READY_TIMEOUT_S + warmup_s + duration_s + 2 * timeout_s + 30
        with ThreadPoolExecutor(max_workers=processes) as pool:
            futures = [pool.submit(run_measured, argv, cpus=pin, env=env, timeout=limit)
                       for argv, pin in zip(argvs, pins, strict=True)]
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not all(os.path.exists(r) for r in readies):
                if time.monotonic() > deadline or any(f.done() for f in futures):
                    break  # a part died or hung: the parts time out and the parse says why
                time.sleep(0.005)
            staged = start_file + ".tmp"
            Path(staged).write_text(repr(time.monotonic() + START_LEAD_S))
            os.replace(staged, start_file)  # atomic: a part never reads half a number
            children = [f.result() for f in futures]
    parts = [openloop.parse_child(child, pin) for child, pin in zip(children, pins, strict=True)]
    return merge_parts(parts, rate, shared_cpus=bool(cpus) and len(set(cpus or ())) < processes)


def _merged(parts: Sequence[Mapping[str, Any]], name: str) -> Any:
    encoded = [h for p in parts if (h := p["extra"]["part_histograms"][name])]
    return histograms.merge_histograms(encoded)


def merge_parts(parts: Sequence[dict[str, Any]], rate: float, *,
                shared_cpus: bool = False) -> dict[str, Any]:
    """One sample from the parts of a split plan (histograms added, counts summed)."""
    latency = _merged(parts, "latency")
    lag = histograms.histogram_ms(_merged(parts, "lag"))
    sched = histograms.histogram_ms(_merged(parts, "schedule"))
    extras = [p["extra"] for p in parts]
    rps = sum(float(p["rps"]) for p in parts)
    achieved = rps / rate
    status: dict[str, int] = {}
    for part in extras:
        for code, n in part["status_counts"].items():
            status[code] = status.get(code, 0) + int(n)
    flags = sorted({f for extra in extras for f in extra["flags"]} - {"below-target"})
    if achieved < ACHIEVED_MIN:
        flags.append("below-target")
    cpu = [float(p["client_cpu_pct"]) for p in parts]
    summed = ("planned", "completed_in_window", "answered_total", "unsent", "connections_opened",
              "peak_connections", "max_connections", "client_cpu_s", "client_cpu_s_window")
    extra: dict[str, Any] = {
        **{k: v for k, v in extras[0].items() if k not in ("part_histograms", "cpus")},
        **{k: sum(e.get(k, 0) for e in extras) for k in summed},
        "target_rate": rate,
        "achieved_fraction": achieved,
        "below_target": achieved < ACHIEVED_MIN,
        "client_lagging": any(e["client_lagging"] for e in extras),
        "connection_cap_hit": any(e["connection_cap_hit"] for e in extras),
        "flags": flags,
        "status_counts": dict(sorted(status.items())),
        "lag_ms": {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]},
        "schedule_lag_ms": {"p50": sched["p50"], "p99": sched["p99"], "max": sched["max"]},
        "latency_from_send_ms": histograms.histogram_ms(_merged(parts, "from_send")),
        "latency_histogram": latency.encode().decode() if latency.get_total_count() else None,
        "start_late_s": max(e["start_late_s"] for e in extras),
        "client_cpu_pct_total": sum(cpu),
        "client_cpu_pct_window": max(e["client_cpu_pct_window"] for e in extras),
        "client_wall_s": max(e["client_wall_s"] for e in extras),
        "client_max_rss_bytes": max(e["client_max_rss_bytes"] for e in extras),
        "cpus": sorted({c for e in extras for c in e["cpus"] or ()}) or None,
        "processes": len(parts),
        "split": {"shared_cpus": shared_cpus, "parts": [
            {"cpus": e["cpus"], "target_rate": e["target_rate"], "rps": p["rps"],
             "client_cpu_pct": p["client_cpu_pct"], "start_late_s": e["start_late_s"],
             "requests": p["requests"]} for p, e in zip(parts, extras, strict=True)]},
    }
    return {
        "requests": sum(int(p["requests"]) for p in parts),
        "duration_s": max(float(p["duration_s"]) for p in parts),
        "rps": rps,
        "latency_ms": histograms.histogram_ms(latency),
        "errors": {k: sum(int(p["errors"][k]) for p in parts) for k in openloop_driver.ERROR_KEYS},
        "client_cpu_pct": max(cpu),
        "extra": extra,
    }
