"""The bench runner end to end on a tiny profile: real servers, wrk, the realtime drivers, the
results document and the report; and a server that dies mid-run fails its cells, not the run."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtests import results, rules, runner, setups
from loadtests.bench import Bench, equal_rate
from loadtests.capacity import CapacitySearch
from loadtests.checks import micro_run_summary
from loadtests.claims import load_registry
from loadtests.ledger import flag_p99_swing
from loadtests.plan import CONNECT, Plan, make_plan
from loadtests.profiles import PROFILES, claimed_cells
from loadtests.servers import REPO_ROOT
from loadtests.verdicts import judge
from provision.seed import SeedPlan

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


def _run(tmp_path: Path, stacks: list[str], scenarios: list[str], **kwargs: Any) -> dict[str, Any]:
    path = runner.main(profile="smoke", impls=None, servers=None, scenarios=scenarios, stacks=stacks,
                       dsn=f"sqlite:///{tmp_path / 'bench.sqlite3'}", out=tmp_path / "runs",
                       write_report=kwargs.pop("write_report", False), console=Console(quiet=True), **kwargs)
    return results.load(path)


def _cells(doc: dict[str, Any], stack: str) -> dict[str, dict[str, Any]]:
    return {c["scenario"]: c for c in doc["cells"] if c["stack"] == stack}


def test_smoke_run_measures_every_kind_of_cell(tmp_path: Path) -> None:
    doc = _run(tmp_path, ["rest-uvicorn"], ["config", "card", "review", "chat", "sse-fanout"],
               write_report=True)
    assert results.validate(doc) == []
    ceiling = doc["driver_ceilings"][0]
    assert ceiling["floor"] == "raw-asgi-granian-asgi" and ceiling["rps"] > 0
    opened = [c for c in doc["driver_ceilings"] if c["driver"] == "openloop"]
    assert [c["processes"] for c in opened] == [1, 2] and all(c["rps"] > 0 for c in opened)
    assert results.refresh_ceiling(doc) == max(c["rps"] for c in doc["driver_ceilings"] if "processes" not in c)
    cells = _cells(doc, "rest-uvicorn")
    assert set(cells) == {"config", "card", "review", "chat", "sse-fanout"}
    for scenario, cell in cells.items():
        assert cell["status"] == "ok", (scenario, cell["error"])
        assert cell["samples"][0]["server_peak_rss_bytes"] > 0, scenario
    # every acknowledged review is a stored row (in-flight ones at the cutoff may add a few)
    writes = cells["review"]["samples"][0]["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == 0
    assert writes["stored"] == writes["acknowledged"] + writes["in_flight_at_cutoff"]
    chat = cells["chat"]["samples"][0]["extra"]
    assert chat["completed"] == 5 and chat["ttft_ms"]["p50"] >= PROFILES["smoke"].upstream_ttft_ms
    fanout = cells["sse-fanout"]["samples"][0]["extra"]
    assert fanout["connected"] == 20 and fanout["delivered"] == fanout["expected"] == 20 * 3
    assert fanout["single_event"]["delivered"] == fanout["single_event"]["expected"] == 20
    stack = doc["stacks"]["rest-uvicorn"]
    assert stack["settings"]["loop"] == "uvloop" and stack["fanout_server"]["workers"] == 1
    # fan-out across workers needs the PostgreSQL feed: on SQLite the cell is refused, with why
    (across,) = doc["fanout_workers"]
    assert (across["stack"], across["workers"], across["status"]) == ("rest-uvicorn", 2, "refused")
    assert "PostgreSQL" in across["error"]
    report = Path(doc["run_id"]).name
    assert (tmp_path / "runs" / report / "report.html").exists()
    assert "Fan-out across workers (PostgreSQL feed)" in (tmp_path / "runs" / report / "report.md").read_text()


def test_review_load_is_spread_over_the_seeded_users_and_its_writes_still_add_up(tmp_path: Path) -> None:
    doc = _run(tmp_path, ["rest-uvicorn", "graphql-uvicorn"], ["review"])
    assert results.validate(doc) == []
    for stack in ("rest-uvicorn", "graphql-uvicorn"):
        cell = _cells(doc, stack)["review"]
        assert cell["status"] == "ok", cell["error"]
        # smoke seeds 2 users: the review load runs as both, and says so
        assert cell["extra"]["load_users"] == PROFILES["smoke"].seed.users == 2
        sample = cell["samples"][0]
        assert sample["extra"]["load_users"] == sample["extra"]["wrk"]["users"] == 2
        writes = sample["writes"]
        assert writes["acknowledged"] > 0 and writes["lost"] == 0
        assert writes["stored"] == writes["acknowledged"] + writes["in_flight_at_cutoff"]
        assert "writes-mismatch" not in cell["flags"]


def test_a_server_that_dies_fails_its_cells_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []
    original = Bench._wrk_scenario

    def kill_before_card(self: Bench, stack: Any, client: Any, load: Any, scenario: str, *rest: Any) -> None:
        if stack.id == "rest-uvicorn" and scenario == "card" and not killed:
            os.kill(load.server_pid, signal.SIGKILL)
            killed.append(load.server_pid)
        original(self, stack, client, load, scenario, *rest)

    monkeypatch.setattr(Bench, "_wrk_scenario", kill_before_card)
    doc = _run(tmp_path, ["rest-uvicorn", "graphql-uvicorn"], ["config", "card", "due"])
    assert killed
    dead = _cells(doc, "rest-uvicorn")
    assert dead["config"]["status"] == "ok"
    # the killed server's card run saw only connection errors; the next cell is failed, with why
    assert "errors" in dead["card"]["flags"] or dead["card"]["status"] == "failed"
    assert dead["due"]["status"] == "failed" and "exited" in dead["due"]["error"]
    alive = _cells(doc, "graphql-uvicorn")
    assert all(c["status"] == "ok" for c in alive.values()), alive


def test_without_wrk_the_run_uses_locust_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "wrk_available", lambda: False)
    doc = _run(tmp_path, ["rest-uvicorn"], ["config", "review"])
    assert doc["settings"]["closed_loop_driver"] == "locust"
    assert doc["driver_ceilings"][0]["driver"] == "locust"
    cells = _cells(doc, "rest-uvicorn")
    assert {c["driver"] for c in cells.values()} == {"locust"}
    assert all(c["status"] == "ok" and c["samples"][0]["requests"] > 0 for c in cells.values())
    assert "wrk missing" in cells["config"]["samples"][0]["extra"]["note"]
    writes = cells["review"]["samples"][0]["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == 0


# -- like for like: what was launched, equal offered load, capacity, the plan -------------------
def _equal_load_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    smoke = PROFILES["smoke"]
    monkeypatch.setitem(PROFILES, "smoke", dataclasses.replace(
        smoke, equal_load_fractions=(0.25, 0.5), equal_load_repetitions=(1, 2), equal_load_scenarios=("config",),
        equal_load_duration_s=1.0, equal_load_warmup_s=0.3, featured=("rest-uvicorn", "graphql-uvicorn"),
        capacity={"chat": CapacitySearch(start=3, max_level=6, resolution=0.5, max_probes=3, budget_s=60)},
        grid_with_capacity=("chat",)))


def test_equal_load_phase_drives_every_stack_at_the_same_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _equal_load_profile(monkeypatch)
    doc = _run(tmp_path, ["rest-uvicorn", "graphql-uvicorn", "rest-uvicorn-eas"], ["config", "chat"],
               server_cpus="0", client_cpus="1")
    assert results.validate(doc) == []
    peaks = {c["stack"]: c["summary"]["rps"]["median"] for c in doc["cells"]
             if c["scenario"] == "config" and c["mode"] == "closed" and c["status"] == "ok"
             and c["stack"] in ("rest-uvicorn", "graphql-uvicorn")}
    assert len(peaks) == 2
    reference = min(peaks.values())
    equal = [c for c in doc["cells"] if c["mode"] == "open"]
    by_fraction: dict[float, dict[str, dict[str, Any]]] = {}
    for cell in equal:
        by_fraction.setdefault(cell["extra"]["fraction_of_reference"], {})[cell["stack"]] = cell
    assert set(by_fraction) == {0.25, 0.5}
    for fraction, cells in by_fraction.items():
        assert set(cells) == {"rest-uvicorn", "graphql-uvicorn"}
        rates = {c["target_rate"] for c in cells.values()}
        assert rates == {equal_rate(reference, fraction)}  # one rate for every stack
        for cell in cells.values():
            assert cell["extra"]["load_group"] == "config-equal"
            assert cell["extra"]["reference_rps"] == pytest.approx(reference)
            assert cell["driver"] == "openloop" and cell["status"] == "ok", cell["error"]
            assert len(cell["samples"]) == {0.25: 1, 0.5: 2}[fraction]
            for sample in cell["samples"]:
                assert sample["achieved_rps"] > 0 and sample["latency_ms"]["mean"] is not None
                assert sample["server_pss_bytes"] > 0 and sample["server_cpu_s"] >= 0
    settings = doc["settings"]["equal_load"]
    assert settings["scenarios"]["config"]["reference_rps"] == pytest.approx(reference)
    # the verdict engine finds these cells: a latency claim is judged on them, at 50 % of the
    # weaker stack's peak (n = 2 < 5: indicative, never "not measured")
    registry = load_registry()
    for claim_id in ("eas-p50-5x", "eas-p99-4x", "sophia-avg-under-200ms"):
        claim = dataclasses.replace(registry.by_id(claim_id), baseline="graphql-uvicorn", candidate="rest-uvicorn",
                                    scenarios=("config",))
        verdict = judge(claim, doc)
        assert verdict.status == "indicative", (claim_id, verdict.status, verdict.label)
        part = verdict.to_dict()
        assert "50%" in json.dumps(part) and "req/s offered" in json.dumps(part), part
    # every closed-loop sample carries the v2 fields; the setup is what was launched
    closed = next(c for c in doc["cells"] if c["id"] == "rest-uvicorn/config/wrk/c8")
    sample = closed["samples"][0]
    assert sample["concurrency"] == 8 and sample["latency_ms"]["mean"] > 0 and "timeout" in sample["errors"]
    assert sample["server_uss_bytes"] <= sample["server_pss_bytes"] <= sample["server_peak_rss_bytes"]
    assert sample["server_processes"] == 1
    assert closed["setup"]["processes"] == 1 and closed["setup"]["master"] is False
    assert closed["setup"]["cores"] == [0]
    # the documented 4-vs-2-worker setup cannot run on one server core: refused, with the reason
    eas = next(c for c in doc["cells"] if c["stack"] == "rest-uvicorn-eas")
    assert eas["status"] == "refused" and "4 server cores" in eas["error"]
    assert doc["settings"]["variants"]["rest-uvicorn-eas"]["refused"] == eas["error"]
    # chat capacity by search: one cell, an interval, the probes that found it
    chat = next(c for c in doc["cells"] if c["stack"] == "rest-uvicorn" and c["scenario"] == "chat"
                and c["mode"] == "capacity")
    # beside the search, the chat grid (latency, memory and error claims read it, not the search)
    grid = next(c for c in doc["cells"] if c["id"] == "rest-uvicorn/chat/chat/c5")
    assert grid["mode"] == "closed" and grid["status"] == "ok" and len(grid["samples"]) == 1, grid["error"]
    assert grid["samples"][0]["extra"]["ttft_ms"]["p50"] > 0
    assert chat["mode"] == "capacity" and chat["concurrency"] is None and chat["status"] == "ok", chat["error"]
    found = chat["samples"][0]["extra"]["capacity"]
    assert found["probes"][0]["level"] == 3 and found["max_tried"] <= 6
    held = [p["level"] for p in found["probes"] if p["held"]]
    failed = [p["level"] for p in found["probes"] if not p["held"]]
    assert found["held_lo"] == max(held, default=0) and found["failed_hi"] == min(failed, default=None)
    assert all(p["reasons"] for p in found["probes"] if not p["held"])
    assert chat["samples"][0]["extra"]["max_sustained"] == found["held_lo"]
    assert chat["setup"]["processes"] == 1


def test_setup_counts_the_processes_that_were_launched() -> None:
    from loadtests.launcher import RunningServer
    from loadtests.servers import ServerSpec, held_streams_per_user
    from loadtests.stacks import FLOORS

    cpu = sorted(os.sched_getaffinity(0))[:1]
    for workers in (1, 2):
        spec = ServerSpec(server="gunicorn-gthread", app=FLOORS["raw-wsgi"], port=0, workers=workers,
                          cpus=tuple(cpu), env={"STACKBENCH_GC_POLICY": "freeze", "STACKBENCH_POOL_SIZE": "7"})
        with RunningServer(spec) as running:
            setup = setups.read_setup(running.pid, spec.settings())
        assert setup["master"] is True and setup["processes"] == workers == setup["workers"]
        assert setup["worker_class"] == "gthread" and setup["threads_per_worker"] == 2 + held_streams_per_user()
        assert setup["cores"] == cpu and setup["gc_policy"] == "STACKBENCH_GC_POLICY=freeze"
        assert setup["app"]["pool_size"] == 7
    spec = ServerSpec(server="uvicorn", app=FLOORS["raw-asgi"], port=0, workers=1, cpus=tuple(cpu))
    with RunningServer(spec) as running:
        setup = setups.read_setup(running.pid, spec.settings())
    assert setup["master"] is False and setup["processes"] == 1 and setup["gc_policy"] == "freeze (default)"


def test_main_matrix_is_one_worker_per_core_and_variants_keep_their_rule() -> None:
    from loadtests.stacks import STACKS

    assert setups.workers_for(STACKS["flask-gunicorn-gevent"], (0,)) == 1
    assert setups.workers_for(STACKS["flask-gunicorn-gthread"], (0, 1, 2)) == 3
    assert setups.workers_for(STACKS["rest-uvicorn"], (0, 1)) == 2
    assert setups.workers_for(STACKS["flask-waitress"], (0, 1)) is None  # one process, threads
    assert setups.workers_for(setups.variant_stack("flask-gunicorn-gevent-2n1"), (0,)) is None  # → 2n+1
    assert setups.workers_for(setups.variant_stack("rest-uvicorn-eas"), (0,)) == 4


def test_refusal_names_the_missing_cores() -> None:
    why = setups.refusal("flask-gunicorn-gevent-eas", (0,), (1,))
    assert why is not None
    assert "4 server cores (--server-cpus gave 1: 0)" in why and "4 client cores" in why
    assert "gevent, 2 workers" in why and "wrk -t4" in why
    assert setups.refusal("flask-gunicorn-gevent-eas", (0, 1, 2, 3), (4, 5, 6, 7)) is None
    assert setups.refusal("rest-uvicorn", (0,), (1,)) is None  # the main matrix is never refused


def _standard_plan(**cpus: tuple[int, ...]) -> Plan:
    return make_plan(PROFILES["standard"], stack_ids=None, impls=None, servers=None, only=None,
                            server_cpus=cpus.get("server", (0,)), client_cpus=cpus.get("client", (1,)))


def test_standard_plan_fits_the_budget_and_gives_verdict_cells_five_long_repetitions() -> None:
    plan = _standard_plan()
    estimate = plan.estimate_s()
    assert estimate["total"] == pytest.approx(sum(v for k, v in estimate.items() if k != "total"), abs=1)
    profile = plan.profile
    assert profile.db_sweep is not None
    # the sweep included; the robustness matrix (issue 19's reference sizes) is priced on top, apart
    ws_connect = sum(plan.repetitions(s, "ws-connect") for s in plan.stacks if "ws-connect" in plan.scenarios[s.id])
    assert ws_connect == 10
    # fan-out across 1 and 2 workers (PostgreSQL feed, issue 16): priced, at most 2 minutes on top
    assert profile.fanout_workers == (1, 2) and 0 < estimate["fanout_workers"] <= 120, estimate
    assert (estimate["total"] - estimate["robustness"] - estimate["fanout_workers"]
            + profile.db_sweep.estimate_s() <= 81 * 60), estimate  # 75 until the journey's users-held search
    assert 0 < estimate["robustness"] <= 20 * 60, estimate
    stacks = {s.id: s for s in plan.stacks}
    for (stack_id, scenario), levels in claimed_cells().items():
        if stack_id not in stacks or scenario not in plan.scenarios[stack_id]:
            raise AssertionError(f"claimed cell {stack_id}/{scenario} not in the plan")
        stack = stacks[stack_id]
        if scenario in profile.capacity:  # decisive capacity verdicts need two searches a side
            assert plan.repetitions(stack, scenario) >= rules.MIN_SEARCHES, (stack_id, scenario)
            continue
        for level in levels:
            c = profile.primary_concurrency if level is None else level
            if scenario in CONNECT:  # its own fixed client count, the same for every stack
                c = profile.ws_connect_clients
            assert c in plan.concurrency(scenario, stack)
            assert plan.repetitions(stack, scenario, c) >= 5, (stack_id, scenario, c)
            if scenario in CONNECT:  # thousands of sessions per window: 5 s (Profile.ws_connect_duration_s)
                assert plan.duration_s(stack, scenario, c) >= 5
            elif scenario != "journey":
                assert plan.duration_s(stack, scenario, c) >= 10
    # chat latency/memory/error claims read a grid run beside the capacity search, 5 times
    assert profile.chat_levels and plan.grid_repetitions("chat") >= rules.MIN_DECISIVE
    # micro verdicts are decisive over independent benchmark processes; the journey thinks
    assert profile.micro and profile.micro_runs >= rules.MIN_DECISIVE
    assert profile.journey_think_s > 0
    # the latency sweep keeps the stacks and delays its section compares, at two repetitions
    sweep = profile.db_sweep
    assert {"flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn"} <= set(sweep.stacks)
    assert sweep.delays_ms == (0.0, 1.0, 5.0, 20.0) and sweep.repetitions >= 2
    # a confirming capacity search is priced below the first one
    one = make_plan(dataclasses.replace(profile, capacity_repetitions=1), stack_ids=None, impls=None,
                           servers=None, only=None, server_cpus=(0,), client_cpus=(1,)).estimate_s()
    assert one["realtime"] < estimate["realtime"] < 2 * one["realtime"]
    # c100 (the EAS wrk claims) is measured; c16/c256 are a sensitivity sweep at one repetition
    gevent = stacks["flask-gunicorn-gevent"]
    assert plan.concurrency("config", gevent) == (16, 100, 256)
    assert [plan.repetitions(gevent, "config", c) for c in (16, 100, 256)] == [1, 5, 1]
    # the variants are there, the documented one refused on this machine
    assert "flask-gunicorn-gevent-2n1" in stacks and "rest-uvicorn-eas" in plan.refused
    # more repetitions cost more: the estimate follows the plan
    longer = make_plan(dataclasses.replace(profile, repetitions=7), stack_ids=None, impls=None,
                              servers=None, only=None, server_cpus=(0,), client_cpus=(1,))
    assert longer.estimate_s()["closed"] > estimate["closed"]
    # with the cores, the documented setup runs (and costs its time)
    roomy = _standard_plan(server=(0, 1, 2, 3), client=(4, 5, 6, 7))
    assert not roomy.refused and roomy.estimate_s()["closed"] > estimate["closed"]


def test_quick_and_smoke_stay_short() -> None:
    quick = make_plan(PROFILES["quick"], stack_ids=None, impls=None, servers=None, only=None,
                             server_cpus=(0,), client_cpus=(1,))
    assert quick.profile.repetitions == 1
    assert quick.estimate_s()["total"] < 25 * 60
    smoke = make_plan(PROFILES["smoke"], stack_ids=["rest-uvicorn"], impls=None, servers=None,
                             only=["config", "card"], server_cpus=(0,), client_cpus=(1,))
    assert smoke.estimate_s()["total"] - smoke.estimate_s()["checks"] < 60
    # a subset run skips the micro-benchmarks and checks: its plan does not price them
    assert smoke.estimate_s()["checks"] > 0 and smoke.estimate_s(subset=True)["checks"] == 0


def test_the_ci_profile_is_priced_without_the_checks_it_skips() -> None:
    """The ci profile runs its own matrix as a subset (no checks): measured 353–363 s per run on
    the 2-core VM (2026-12-03), where pricing the checks too said 11 min."""
    ci = PROFILES["ci"]
    plan = make_plan(ci, stack_ids=list(ci.stacks), impls=None, servers=None,
                            only=list(ci.scenarios) or None, server_cpus=(0,), client_cpus=(1,))
    estimate = plan.estimate_s(subset=True)
    assert estimate["checks"] == 0 and estimate["total"] < 8 * 60


def test_p99_swing_is_flagged_on_the_p99() -> None:
    cell: dict[str, Any] = {"samples": [{"latency_ms": {"p99": v}} for v in (10.0, 12.0, 11.0)], "flags": []}
    flag_p99_swing(cell, 1.5)
    assert cell["flags"] == [] and cell["p99_spread"]["max_over_min"] == pytest.approx(1.2)
    cell["samples"].append({"latency_ms": {"p99": 31.0}})
    flag_p99_swing(cell, 1.5)
    assert cell["flags"] == ["p99-swing"] and cell["p99_spread"]["max_ms"] == 31.0
    cell["samples"] = cell["samples"][:1]
    flag_p99_swing(cell, 1.5)
    assert cell["flags"] == [] and "p99_spread" not in cell


LATEST = Path(REPO_ROOT) / "reports" / "latest" / "results.json"


def _benchmark_json(speedup: float, jitter: float) -> dict[str, Any]:
    """A pytest-benchmark document with one baseline/candidate pair (as benchmarks/ tags them)."""
    def bench(role: str, median: float) -> dict[str, Any]:
        return {"name": f"test_validate_dict[card-{role}]", "fullname": f"benchmarks/test_micro.py::{role}",
                "group": "validate-dict-card", "extra_info": {"role": role}, "params": {"kind": "card"},
                "stats": {"min": median * 0.9, "max": median * 2, "mean": median * 1.1, "stddev": median / 10,
                          "median": median, "iqr": median / 20, "rounds": 500, "iterations": 1,
                          "data": [median] * 500}}
    return {"datetime": "2026-12-02T00:00:00", "machine_info": {}, "benchmarks": [
        bench("baseline", 10e-6 * jitter), bench("candidate", 10e-6 * jitter / speedup)]}


def test_micro_runs_are_what_the_verdict_reads() -> None:
    claim = load_registry().by_id("sophia-pydantic-v2-20x")
    docs = [_benchmark_json(8.0, 1 + i / 50) for i in range(5)]
    runs = [micro_run_summary(d) for d in docs]
    assert all("data" not in b["stats"] for r in runs for b in r["benchmarks"])  # raw timings left out
    doc = results.load(LATEST)
    micro = {**docs[0], "runs": runs}
    verdict = judge(claim, doc, micro=micro)
    assert verdict.status == "partly supported", (verdict.status, verdict.label)  # 8x against 20x
    assert verdict.n == (5, 5) and "independent benchmark runs" in (verdict.method or "")
    # one run (the quick profile) can only be indicative
    single = {**docs[0], "runs": runs[:1]}
    assert judge(claim, doc, micro=single).status == "indicative"


def test_the_terminal_gets_counts_and_the_report_path(tmp_path: Path) -> None:
    text = runner.verdict_summary(LATEST, tmp_path / "report.html")
    lines = text.splitlines()
    assert len(lines) == 2
    assert "claims:" in lines[0] and "not testable" in lines[0]
    assert lines[1] == f"report: {tmp_path / 'report.html'}"


@pytest.mark.slow
def test_journey_with_think_time_runs_at_one_pace_and_is_judged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """100 users thinking 2 s on average: both stacks keep up, so both serve the same req/s and
    the journey's mean latency is response time, judged (indicative at n = 1), not refused."""
    smoke = PROFILES["smoke"]
    monkeypatch.setitem(PROFILES, "smoke", dataclasses.replace(
        smoke, journey_users=100, journey_think_s=2.0, journey_duration_s=8.0, warmup_s=3.0,
        featured=("flask-gunicorn-gthread", "rest-uvicorn"),
        # enough due cards that no deck runs dry inside the window (requests per task stay put)
        seed=SeedPlan(users=10, decks_per_user=10, cards_per_deck=100, seed=1)))
    doc = _run(tmp_path, ["flask-gunicorn-gthread", "rest-uvicorn"], ["journey"])
    cells = {c["stack"]: c for c in doc["cells"] if c["scenario"] == "journey"}
    assert set(cells) == {"flask-gunicorn-gthread", "rest-uvicorn"}
    for cell in cells.values():
        assert cell["status"] == "ok", cell["error"]
        assert cell["samples"][0]["extra"]["think_s"] == 2.0
    rps = [c["samples"][0]["rps"] for c in cells.values()]
    seen = {k: (c["samples"][0]["rps"], c["samples"][0]["latency_ms"]["p50"],
                {n: r["requests"] for n, r in c["samples"][0]["extra"]["requests_by_name"].items()})
            for k, c in cells.items()}
    assert abs(rps[0] - rps[1]) <= 0.05 * max(rps), seen  # evidence.EQUAL_PACE
    verdict = judge(load_registry().by_id("mandarin-avg-response-33pct"), doc)
    assert verdict.status == "indicative", (verdict.status, verdict.label)
