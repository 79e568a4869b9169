"""The open-loop driver: fixed rate, latency from planned send times, errors by kind, the
sustainable-rate search."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from loadtests import histograms, openloop, openloop_driver
from loadtests.histograms import merge_histograms
from loadtests.launcher import serving
from loadtests.openloop import run_open_loop
from loadtests.openloop_driver import run_in_process
from loadtests.ratesearch import find_sustainable_rate, judge
from loadtests.results import validate
from loadtests.scenarios import BenchUser, RequestSpec, request_spec
from loadtests.servers import AppTarget, ServerSpec
from tests.loadtests.tiny_server import TinyServer

GET = RequestSpec("GET", "/")


def _schema_ok(sample: dict[str, Any]) -> None:
    """The sample passes the results validator inside a minimal document."""
    doc = {
        "schema_version": 1, "run_id": "r", "profile": "quick", "started_at": "t",
        "environment": {"machine": {"cpu_model": "", "cores": 2, "memory_bytes": 0, "kernel": ""},
                        "python": "", "packages": {}, "git": {}},
        "settings": {}, "driver_ceilings": [], "stacks": {"s": {
            "impl": "raw-asgi", "server": "uvicorn", "kind": "floor", "workers": 1,
            "settings": {}, "command": []}},
        "cells": [{"id": "s/config/openloop/c-/r300", "stack": "s", "scenario": "config",
                   "driver": "openloop", "mode": "open", "status": "ok",
                   "samples": [json.loads(json.dumps(sample))],
                   "summary": {}, "flags": []}],
    }
    assert validate(doc) == []


@pytest.mark.server
def test_fixed_rate_against_the_raw_asgi_floor() -> None:
    spec = ServerSpec("uvicorn", AppTarget("loadtests.floors.raw_asgi:app", "asgi"), port=0,
                      workers=1)
    with serving(spec) as server:
        sample = run_open_loop(server.url, GET, rate=300, duration_s=2.0, warmup_s=0.5)
    extra = sample["extra"]
    assert extra["driver"] == "openloop" and extra["target_rate"] == 300
    assert extra["planned"] == 600
    assert 0.97 * 600 <= sample["requests"] <= 600
    # the warmup's 150 answers too: the server's CPU is measured over them (metrics.py)
    assert 0.97 * 750 <= extra["answered_total"] <= 750
    assert sample["errors"] == dict.fromkeys(openloop_driver.ERROR_KEYS, 0)
    assert extra["achieved_fraction"] == pytest.approx(1.0, abs=0.03)
    assert sample["rps"] == pytest.approx(300, rel=0.03)
    assert "below-target" not in extra["flags"] and "connection-cap" not in extra["flags"]
    lat = sample["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert lat["p50"] < 20  # a hello world at 300/s on a shared 2-core machine
    assert extra["connections_opened"] >= 1
    assert sample["client_cpu_pct"] > 0 and extra["client_wall_s"] > 2.5
    assert merge_histograms([extra["latency_histogram"]]).get_total_count() == sample["requests"]
    _schema_ok(sample)


@pytest.mark.server
def test_a_stall_shows_in_latency_from_planned_times_not_from_sends() -> None:
    """The server freezes for 500 ms once. With one connection (as a closed-loop tool would
    keep), the requests planned during the freeze wait in the client: counted from their
    planned times the tail shows the freeze; counted from the actual send (wrk's way) only the
    one request in flight saw it, and p99 hides it."""
    with TinyServer(stall_at=200, stall_s=0.5) as server:  # 0.5 s into the measured window
        one = run_open_loop(server.url, GET, rate=200, duration_s=2.0, warmup_s=0.5,
                            max_connections=1)
    planned, sent = one["latency_ms"], one["extra"]["latency_from_send_ms"]
    assert planned["p99"] >= 400 and planned["max"] >= 450
    assert sent["max"] >= 400  # the request in flight during the stall
    assert sent["p99"] < 100  # ... but the tail measured from sends hides the stall
    assert "connection-cap" in one["extra"]["flags"]
    assert one["errors"] == dict.fromkeys(openloop_driver.ERROR_KEYS, 0)

    with TinyServer(stall_at=200, stall_s=0.5) as server:
        many = run_open_loop(server.url, GET, rate=200, duration_s=2.0, warmup_s=0.5)
    # the plan opened connections instead of waiting: sends stayed on time
    assert many["extra"]["connections_opened"] > 10
    assert "connection-cap" not in many["extra"]["flags"]
    assert many["latency_ms"]["p99"] >= 400 and many["latency_ms"]["max"] >= 450
    assert many["extra"]["lag_ms"]["p99"] < 100


def test_requests_are_rendered_from_the_spec_and_statuses_counted() -> None:
    spec = RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}',
                       {"Authorization": "Bearer t", "Content-Type": "application/json"},
                       ids=(1, 2, 3, 404), expect_status=201)
    with TinyServer(status=lambda path: 404 if "/404/" in path else 201) as server:
        sample = run_in_process(server.url, spec, 200, 0.5, 0.1, seed=7)
        seen = list(server.seen)
    assert len(seen) == 120
    paths = {path for _method, path, _body in seen}
    assert paths <= {f"/api/cards/{i}/reviews" for i in (1, 2, 3, 404)} and len(paths) == 4
    grades = {json.loads(body)["grade"] for _m, _p, body in seen}
    assert grades <= set(range(6)) and len(grades) > 3
    assert {method for method, _p, _b in seen} == {"POST"}
    counts = sample["extra"]["status_counts"]
    assert set(counts) == {"201", "404"}
    assert sample["errors"]["status"] == counts["404"] > 0
    assert sample["requests"] == 100


def test_connection_refused_is_a_connect_error() -> None:
    with TinyServer() as server:
        url = server.url
    sample = run_in_process(url, GET, 50, 0.4, 0.0, timeout_s=0.5)
    assert sample["requests"] == 0 and sample["rps"] == 0
    assert sample["errors"]["connect"] == 20
    assert sample["latency_ms"]["p99"] is None
    assert sample["extra"]["below_target"] and "below-target" in sample["extra"]["flags"]


def test_a_request_without_an_answer_times_out() -> None:
    spec = RequestSpec("GET", "/{id}", ids=(1, 2, 3, 4))
    with TinyServer(hang_prefix="/4") as server:
        sample = run_in_process(server.url, spec, 40, 0.5, 0.0, timeout_s=0.3, seed=3)
    assert sample["errors"]["timeout"] > 0
    assert sample["errors"]["timeout"] + sample["requests"] == 20
    assert sample["latency_ms"]["max"] < 300  # timeouts are errors, not latencies


def test_requests_queued_behind_the_connection_cap_time_out_too() -> None:
    with TinyServer(hang_prefix="/") as server:
        sample = run_in_process(server.url, GET, 40, 0.5, 0.0, timeout_s=0.3, max_connections=1)
    extra = sample["extra"]
    assert sample["requests"] == 0 and sample["errors"]["timeout"] == 20
    assert 0 < extra["unsent"] < 20  # the ones sent timed out on the wire, the rest in the queue
    assert extra["connection_cap_hit"] and extra["peak_connections"] == 1


def test_the_cli_prints_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    with TinyServer() as server:
        code = openloop.main(["--json", "--url", server.url, "--spec",
                              GET.to_json(), "--rate", "50",
                              "--duration", "0.2"])
    assert code == 0
    sample = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sample["extra"]["planned"] == 10 and sample["requests"] == 10


def test_the_client_process_renders_exactly_like_request_spec() -> None:
    """The client process gets the spec as JSON (`RequestSpec.from_json`): same fields, same rendering."""
    user = BenchUser("user00001", "tok", deck_ids=[1, 2, 3], card_ids=list(range(1, 50)))
    specs = [request_spec(s, api, user) for api in ("rest", "graphql")
             for s in ("config", "card", "due", "review")]
    for spec in specs:
        wire = RequestSpec.from_json(spec.to_json())
        assert (wire.method, wire.path, wire.body, dict(wire.headers), wire.ids,
                wire.expect_status) == (spec.method, spec.path, spec.body, spec.headers,
                                        spec.ids, spec.expect_status)
        a, b = random.Random(5), random.Random(5)
        assert [wire.render(b) for _ in range(50)] == [spec.render(a) for _ in range(50)]


# -- judging and the sustainable-rate search (synthetic measurements) -------------------------


def _sample(rate: float, p99: float, *, errors: int = 0, achieved: float = 1.0,
            lagging: bool = False) -> dict[str, Any]:
    planned = int(rate * 5)
    return {"requests": planned - errors, "duration_s": 5.0, "rps": rate * achieved,
            "latency_ms": {"p50": p99 / 4, "p90": p99 / 2, "p99": p99, "p99_9": p99, "max": p99},
            "errors": {"connect": 0, "read": 0, "write": 0, "timeout": errors, "status": 0},
            "client_cpu_pct": 20.0,
            "extra": {"planned": planned, "achieved_fraction": achieved,
                      "client_lagging": lagging}}


def test_judge_names_every_reason() -> None:
    assert judge(_sample(100, 50), 100, 100) == []
    assert judge(_sample(100, 150), 100, 100) == ["p99 150.0 ms > 100 ms"]
    assert judge(_sample(100, 50, errors=5), 100, 100) == ["errors 5/500"]
    assert judge(_sample(100, 50, errors=4), 100, 100) == []  # 0.8% < 1%
    assert judge(_sample(100, 50, achieved=0.9), 100, 100) == ["achieved 90.0% of 100/s"]
    assert judge(_sample(100, 50, lagging=True), 100, 100) == ["client lagging its schedule"]


def test_sustainable_rate_bisects_to_the_knee() -> None:
    """A server whose p99 passes 100 ms above 700 req/s (of a 1,000 req/s peak)."""
    rates: list[float] = []

    def measure(rate: float) -> dict[str, Any]:
        rates.append(rate)
        return _sample(rate, 20.0 if rate <= 700 else 400.0)

    found = find_sustainable_rate(measure, peak_rps=1000, objective_p99_ms=100, probes=6)
    assert len(rates) == 6 and rates[0] == 500
    assert found["rate"] is not None and 680 <= found["rate"] <= 700
    assert found["fraction"] == pytest.approx(found["rate"] / 1000)
    assert [p["ok"] for p in found["probes"]] == [r <= 700 for r in rates]
    assert not found["client_limited"]
    failing = [p for p in found["probes"] if not p["ok"]]
    assert failing and all(p["reasons"] == ["p99 400.0 ms > 100 ms"] for p in failing)


def test_sustainable_rate_none_when_nothing_meets_the_objective() -> None:
    found = find_sustainable_rate(lambda rate: _sample(rate, 20, errors=int(rate)), 1000, 100,
                                  probes=4)
    assert found["rate"] is None and found["fraction"] is None
    assert [round(p["fraction"], 4) for p in found["probes"]] == [0.5, 0.25, 0.125, 0.0625]


def test_sustainable_rate_says_when_the_client_was_the_limit() -> None:
    found = find_sustainable_rate(lambda rate: _sample(rate, 10, lagging=rate > 300), 1000, 100)
    assert found["client_limited"] and found["rate"] is not None and found["rate"] <= 300


def test_sustainable_rate_with_noise_still_monotone_probes() -> None:
    rng = random.Random(1)
    found = find_sustainable_rate(
        lambda rate: _sample(rate, 50 + rng.uniform(-5, 5) + (200 if rate > 420 else 0)),
        peak_rps=600, objective_p99_ms=100, probes=5)
    assert found["rate"] is not None and found["rate"] <= 420


def test_histograms_merge_rather_than_average() -> None:
    a, b = histograms.new_histogram(), histograms.new_histogram()
    for _ in range(99):
        a.record_value(1000)
    b.record_value(500_000)
    merged = merge_histograms([a.encode().decode(), b.encode().decode()])
    assert merged.get_total_count() == 100
    assert histograms.histogram_ms(merged)["max"] == pytest.approx(500, rel=0.01)


def test_a_spec_spread_over_users_is_sent_as_each_user_with_its_own_ids() -> None:
    spec = RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}',
                       {"Authorization": "Bearer a", "Content-Type": "application/json"}, ids=(1, 2),
                       expect_status=201, users=(("a", (1, 2)), ("b", (3, 4)), ("c", (5,))))
    owner = {"1": "Bearer a", "2": "Bearer a", "3": "Bearer b", "4": "Bearer b", "5": "Bearer c"}
    with TinyServer(status=lambda path: 201) as server:
        run_in_process(server.url, spec, 200, 0.5, 0.1, seed=7)
        sent = list(zip(server.seen, server.authorizations, strict=True))
    assert len(sent) == 120
    for (_method, path, _body), auth in sent:
        assert owner[path.split("/")[3]] == auth
    assert {auth for _, auth in sent} == {"Bearer a", "Bearer b", "Bearer c"}
