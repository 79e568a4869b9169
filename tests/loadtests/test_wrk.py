"""wrk runs (loadtests/wrk.py and lua/common.lua): the latency mean a closed loop obeys Little's
law with, and responses slower than wrk's default timeout kept in the figures."""

from __future__ import annotations

import shutil

import pytest

from loadtests import sanity
from loadtests.measure import Load, closed_fields, wrk_job
from loadtests.sample import Sample
from loadtests.scenarios import RequestSpec
from loadtests.wrk import WrkJob
from tests.loadtests.tiny_server import TinyServer

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
CONNECTIONS = 8


@needs_wrk
@pytest.mark.parametrize("script", ["get", "get_ids"])
def test_the_mean_of_a_stalled_run_obeys_littles_law_where_wrks_corrected_mean_does_not(script: str) -> None:
    # one 0.6 s freeze of the whole server: every connection waits through it once. wrk adds
    # synthetic samples below each of those 8 slow responses (its coordinated-omission
    # correction), so its own mean lies far above N/X; the scripts' timed mean must not
    ids = ["1", "2", "3"] if script == "get_ids" else None
    with TinyServer(stall_at=300, stall_s=0.6) as server:
        job = WrkJob(url=server.url + "/", connections=CONNECTIONS, duration_s=3, script=script,
                     path="/x/{id}" if ids else None, ids=ids, timeout_s=3)
        raw = job.run()
    assert raw["requests"] > 300 and raw["errors"]["timeout"] == 0
    extra = raw["extra"]
    predicted_ms = 1000.0 * CONNECTIONS / raw["rps"]
    assert extra["latency_mean_source"].startswith("uncorrected")
    assert extra["uncorrected_latency"]["answered"] == raw["requests"]
    assert extra["uncorrected_latency"]["unanswered"] <= CONNECTIONS
    assert extra["latency_mean_corrected_ms"] > 1.5 * predicted_ms  # what the check used to read
    sample = Sample.model_validate(closed_fields(raw, CONNECTIONS))
    assert sample.latency_ms.mean == extra["latency_mean_ms"]
    ratio = sanity.little_ratio(sample, CONNECTIONS)
    assert ratio is not None and 0.9 < ratio < 1.1


@needs_wrk
def test_without_the_response_hook_the_mean_is_wrks_own() -> None:
    with TinyServer() as server:
        raw = WrkJob(url=server.url + "/", connections=2, duration_s=1, count_responses=False).run()
    assert raw["extra"]["latency_mean_source"].startswith("wrk")
    assert raw["extra"]["latency_mean_ms"] == raw["extra"]["latency_mean_corrected_ms"]


def test_a_bench_run_keeps_every_response_of_its_window_in_the_latency_figures() -> None:
    load = Load(url="http://127.0.0.1:1", server_pid=1, client_cpus=None)
    assert wrk_job(load, RequestSpec("GET", "/api/config"), 100, 10.0).timeout_s == 10
    assert "--timeout=10s" in wrk_job(load, RequestSpec("GET", "/api/config"), 100, 10.0).command()
    assert wrk_job(load, RequestSpec("GET", "/api/config"), 100, 1.0).timeout_s == WrkJob.timeout_s
