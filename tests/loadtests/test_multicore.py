"""Multi-core runs: CPUs checked before anything starts, community worker counts, the scaling
curve and the `scale` profile's plan on the cores at hand."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from loadtests import multicore, setups
from loadtests.multicore import CpuRequestError, community_workers, parse_cpus, plan_cpus
from loadtests.plan import make_plan
from loadtests.profiles import PROFILES


def test_cpu_lists_take_ids_and_ranges() -> None:
    assert parse_cpus("0-3,8,2") == (0, 1, 2, 3, 8)
    for bad in ("a", "3-1", "-1", "0,,1"):
        with pytest.raises(CpuRequestError):
            parse_cpus(bad)


def test_cpus_that_do_not_exist_are_refused_with_what_exists() -> None:
    with pytest.raises(CpuRequestError) as caught:
        plan_cpus("0-7", "8-11", available=(0, 1))
    message = str(caught.value)
    assert "8 CPU(s)" in message and "2,3,4,5,6,7 do not exist here" in message and "Nothing was started" in message


def test_one_side_given_takes_the_rest_for_the_other() -> None:
    assert plan_cpus("0-3", None, available=range(8)) == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert plan_cpus(None, "7", available=range(8)) == ((0, 1, 2, 3, 4, 5, 6), (7,))
    assert plan_cpus(None, None, available=(0, 1)) == ((0,), (1,))
    assert plan_cpus("0", None, available=(0,)) == ((0,), (0,))


def test_community_rules_scale_with_the_cores() -> None:
    assert [community_workers("gunicorn-gthread", n) for n in (1, 2, 4)] == [3, 5, 9]
    assert community_workers("gunicorn-gevent", 8) == 17
    assert [community_workers("uvicorn", n) for n in (1, 4)] == [1, 4]
    assert community_workers("granian-asgi", 4) == 4 and community_workers("waitress", 4) == 1


def test_the_curve_pins_each_point_to_its_own_cores() -> None:
    assert multicore.curve_levels(8) == (1, 2, 4, 8)
    assert setups.cpus_for("rest-uvicorn-w2", (4, 5, 6, 7)) == (4, 5)
    assert setups.cpus_for("rest-uvicorn", (4, 5, 6, 7)) == (4, 5, 6, 7)
    assert setups.workers_for(setups.variant_stack("rest-uvicorn-w2"), (4, 5)) == 2


def _plan(server: tuple[int, ...], client: tuple[int, ...]):  # type: ignore[no-untyped-def]
    profile = PROFILES["scale"]
    return make_plan(profile, stack_ids=list(profile.stacks), impls=None, servers=None,
                     only=list(profile.scenarios), server_cpus=server, client_cpus=client)


def test_the_scale_profile_runs_what_two_cores_allow_and_refuses_the_rest() -> None:
    plan = _plan((0,), (1,))
    ids = {s.id for s in plan.stacks}
    assert {"rest-uvicorn", "flask-gunicorn-gevent", "rest-uvicorn-eas", "flask-gunicorn-gevent-eas"} <= ids
    assert {f"rest-uvicorn-w{n}" for n in (1, 2, 4, 8)} <= ids
    assert "rest-uvicorn-w1" not in plan.refused
    assert "needs 2 server cores" in plan.refused["rest-uvicorn-w2"]
    assert "4 server cores" in plan.refused["rest-uvicorn-eas"]
    assert multicore.scale_requirement((0,), (1,)) is not None


def test_the_full_scale_profile_on_twelve_cpus_refuses_nothing() -> None:
    plan = _plan(tuple(range(8)), tuple(range(8, 12)))
    assert plan.refused == {}
    assert setups.VARIANTS["rest-uvicorn-eas"].workers == 4 and setups.VARIANTS["rest-uvicorn-eas"].wrk_threads == 4
    assert setups.VARIANTS["flask-gunicorn-gevent-eas"].workers == 2
    assert multicore.scale_requirement(tuple(range(8)), tuple(range(8, 12))) is None


def test_bench_asking_for_more_cores_than_exist_exits_before_starting() -> None:
    too_many = len(os.sched_getaffinity(0)) + 4
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "stackbench.cli", "bench", "--profile", "scale",
                           "--server-cpus", f"0-{too_many - 1}", "--out", "/nonexistent/never"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "do not exist here" in proc.stderr and "Nothing was started" in proc.stderr
    assert "seeded" not in proc.stdout and time.monotonic() - started < 30


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a server and a client CPU")
def test_a_short_scale_run_here_runs_one_worker_points_and_refuses_the_rest(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import dataclasses
    import shutil

    from rich.console import Console

    from loadtests import results, runner
    from provision.seed import SeedPlan

    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    short = dataclasses.replace(
        PROFILES["scale"], repetitions=1, warmup_s=0.3, duration_s=1.0, concurrency=(8,), primary_concurrency=8,
        seed=SeedPlan(users=2, decks_per_user=2, cards_per_deck=10, seed=1),
        stacks=("rest-uvicorn", "rest-uvicorn-eas"), scenarios=("config",), scaling_stacks=("rest-uvicorn",))
    monkeypatch.setitem(PROFILES, "scale", short)
    path = runner.main(profile="scale", impls=None, servers=None, scenarios=None, stacks=None,
                       dsn=f"sqlite:///{tmp_path / 'b.sqlite3'}", out=tmp_path / "runs", write_report=False,
                       console=Console(quiet=True), server_cpus="0", client_cpus="1")
    doc = results.load(path)
    cells = {c["stack"]: c for c in doc["cells"] if c["scenario"] == "config"}
    assert cells["rest-uvicorn-w1"]["status"] == "ok"
    assert cells["rest-uvicorn-w1"]["setup"]["cores"] == [0] and doc["stacks"]["rest-uvicorn-w1"]["workers"] == 1
    for refused in ("rest-uvicorn-w2", "rest-uvicorn-w4", "rest-uvicorn-w8", "rest-uvicorn-eas"):
        assert cells[refused]["status"] == "refused", refused
    multi = doc["settings"]["multicore"]
    assert multi["workers"]["rest-uvicorn"] == {"equal": 1, "community": 1}
    assert multi["scale_requirement"] and doc["settings"]["openloop_processes"] == 1
    assert [c["processes"] for c in doc["driver_ceilings"] if c["driver"] == "openloop"] == [1, 2]
