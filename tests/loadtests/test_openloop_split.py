"""The open-loop driver split over processes: one even plan, exact histogram merges, pinning."""

from __future__ import annotations

import multiprocessing
import random
from fractions import Fraction

import pytest

from loadtests import histograms, openloop_driver
from loadtests.launcher import serving
from loadtests.openloop_split import merge_parts, part_cpus, part_schedule, run_open_loop_split
from loadtests.servers import AppTarget, ServerSpec
from loadtests.wire import RequestSpec

_rng = random.Random(7)
# seconds: a log-normal service time with a 300-request stall (0.2-0.5 s) in the middle
STREAM = [_rng.uniform(0.2, 0.5) if 15_000 <= i < 15_300 else _rng.lognormvariate(-6.5, 1.2)
          for i in range(30_000)]


def _encode_part(values: list[float]) -> str:
    """What one part process does: record its share of the stream, print it encoded."""
    hist = histograms.new_histogram()
    for v in values:
        histograms.record(hist, v)
    return str(hist.encode().decode())


def test_a_stream_split_over_three_processes_merges_to_the_same_percentiles() -> None:
    whole = histograms.new_histogram()
    for v in STREAM:
        histograms.record(whole, v)
    # uneven shares (one part holds the stall) and a round-robin remainder, as phased parts see it
    shares = [STREAM[:12_000], STREAM[12_000:16_000], STREAM[16_000:]]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        encoded = pool.map(_encode_part, shares)
    merged = histograms.merge_histograms(encoded)
    assert merged.get_total_count() == whole.get_total_count() == len(STREAM)
    for q in (50, 90, 99, 99.9, 99.99, 100):
        assert merged.get_value_at_percentile(q) == whole.get_value_at_percentile(q)
    assert merged.get_max_value() == whole.get_max_value()
    assert merged.get_mean_value() == whole.get_mean_value()
    assert histograms.histogram_ms(merged) == histograms.histogram_ms(whole)
    # averaging the parts' p99s instead is far off (so the equality above can fail)
    parts = [histograms.merge_histograms([e]) for e in encoded]
    averaged = sum(p.get_value_at_percentile(99) for p in parts) / 3
    assert abs(averaged - whole.get_value_at_percentile(99)) > 0.05 * whole.get_value_at_percentile(99)


def test_the_phased_parts_make_exactly_the_single_process_plan() -> None:
    rate, n, per_part = 1000, 3, 200
    parts = part_schedule(rate, n)
    assert [r for r, _ in parts] == [pytest.approx(rate / n)] * n
    planned = sorted(Fraction(k, rate) + Fraction(i * n, rate)
                     for k in range(n) for i in range(per_part))
    assert planned == [Fraction(j, rate) for j in range(n * per_part)]
    for k, (part_rate, offset) in enumerate(parts):
        assert offset == pytest.approx(k / rate)
        assert 1 / part_rate == pytest.approx(n / rate)
    with pytest.raises(ValueError):
        part_schedule(0, 2)


def test_each_part_gets_its_own_cpu_when_there_are_enough() -> None:
    assert part_cpus([3, 1, 2], 2) == [[1], [2]]
    assert part_cpus([1], 2) == [[1], [1]]
    assert part_cpus(None, 2) == [None, None]


def _part(rps: float, cpu: float, latencies: list[float], errors: int = 0) -> dict:
    hist = histograms.new_histogram()
    for v in latencies:
        histograms.record(hist, v)
    enc = hist.encode().decode()
    zero = histograms.histogram_ms(histograms.new_histogram())
    return {"requests": len(latencies), "duration_s": 1.0, "rps": rps, "client_cpu_pct": cpu,
            "latency_ms": histograms.histogram_ms(hist),
            "errors": {**dict.fromkeys(openloop_driver.ERROR_KEYS, 0), "timeout": errors},
            "extra": {"flags": [], "status_counts": {"200": len(latencies)}, "planned": len(latencies),
                      "completed_in_window": len(latencies), "unsent": 0, "connections_opened": 1,
                      "peak_connections": 1, "max_connections": 8, "client_cpu_s": cpu / 100,
                      "client_cpu_s_window": cpu / 100, "client_cpu_pct_window": cpu,
                      "client_lagging": False, "connection_cap_hit": False, "target_rate": rps,
                      "start_late_s": 0.0, "client_wall_s": 1.0, "client_max_rss_bytes": 1,
                      "cpus": None, "latency_from_send_ms": zero,
                      "part_histograms": {"latency": enc, "from_send": enc, "lag": enc, "schedule": enc}}}


def test_merge_adds_counts_and_keeps_the_busiest_part_cpu() -> None:
    merged = merge_parts([_part(50, 40, STREAM[:50], errors=1), _part(40, 70, STREAM[50:90])], 100)
    assert merged["requests"] == 90 and merged["rps"] == 90
    assert merged["errors"]["timeout"] == 1
    assert merged["client_cpu_pct"] == 70 and merged["extra"]["client_cpu_pct_total"] == 110
    assert merged["extra"]["status_counts"] == {"200": 90}
    assert merged["extra"]["processes"] == 2
    assert merged["extra"]["achieved_fraction"] == pytest.approx(0.9)
    assert "below-target" in merged["extra"]["flags"]
    whole = histograms.new_histogram()
    for v in STREAM[:90]:
        histograms.record(whole, v)
    assert merged["latency_ms"] == histograms.histogram_ms(whole)


@pytest.mark.server
def test_two_processes_drive_one_rate_against_a_real_server() -> None:
    spec = ServerSpec("uvicorn", AppTarget("loadtests.floors.raw_asgi:app", "asgi"), port=0, workers=1)
    with serving(spec) as server:
        sample = run_open_loop_split(server.url, RequestSpec("GET", "/"), rate=200, duration_s=1.5,
                                     warmup_s=0.5, processes=2)
    extra = sample["extra"]
    assert extra["processes"] == 2 and len(extra["split"]["parts"]) == 2
    assert extra["planned"] == 300
    assert [p["target_rate"] for p in extra["split"]["parts"]] == [100, 100]
    assert 0.95 * 300 <= sample["requests"] <= 300
    assert sample["rps"] == pytest.approx(200, rel=0.06)
    assert sample["errors"] == dict.fromkeys(openloop_driver.ERROR_KEYS, 0)
    merged = histograms.merge_histograms([extra["latency_histogram"]])
    assert merged.get_total_count() == sample["requests"]
    assert all(p["start_late_s"] < 0.1 for p in extra["split"]["parts"])
    assert "part_histograms" not in extra
