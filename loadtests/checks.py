"""What a full run adds after its cells: the checks some claims rest on, the reliability suites
and the micro-benchmarks, each run in a child process so the report describes this commit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtests.interrupt import run_child
from loadtests.servers import REPO_ROOT


def run_checks(console: Console, run_dir: Path) -> dict[str, Any]:
    """The checks some claims rest on ("SM-2 results unchanged", "0 breaking changes"), run here so
    the report can cite them: the SM-2 vectors and properties, and the contract drift tests. A
    failed suite's pytest output is kept beside the results (check-KEY.txt, named in `logs`)."""
    suites = {"sm2-parity": ["tests/test_sm2.py"], "contract-parity": ["tests/contract/test_drift.py"]}
    outcome: dict[str, Any] = {}
    for key, paths in suites.items():
        if not all((REPO_ROOT / p).exists() for p in paths):
            outcome[key] = "skipped"
            continue
        proc = run_child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
                         cwd=REPO_ROOT, timeout=600)
        outcome[key] = "passed" if proc.returncode == 0 else "failed"
        console.print(f"check {key}: {outcome[key]}")
        if proc.returncode != 0:
            log = run_dir / f"check-{key}.txt"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(proc.stdout + proc.stderr)
            outcome.setdefault("logs", {})[key] = log.name
            for line in [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))][:5]:
                console.print(f"  [red]{line[:300]}[/red]")
            console.print(f"  full output: {log}")
    return outcome


def run_reliability(console: Console, run_dir: Path) -> dict[str, Any]:
    """Faults injected, bad inputs tried, parity: the suites behind the report's reliability
    section, run now so the section describes this commit."""
    from loadtests.reliability import failure_lines, run_reliability_checks

    with console.status("reliability suites (faults, bad input, parity)…"):
        summary = run_reliability_checks(REPO_ROOT, keep_dir=run_dir)
    console.print(f"reliability: {summary.get('status')}")
    if summary.get("status") != "passed":
        for line in failure_lines(summary):
            console.print(f"  [red]{line[:300]}[/red]")
        kept = summary.get("junit") or summary.get("output")
        if kept:
            console.print(f"  details: {run_dir / kept}")
    return summary


def run_micro(out_dir: Path, cpus: tuple[int, ...], console: Console, *, runs: int = 1,
               max_time_s: float = 0.25) -> dict[str, Any] | None:
    """pytest-benchmark over benchmarks/ (Pydantic v1 vs v2, json vs orjson, SM-2 step), `runs`
    times, each a fresh process: the first run's JSON in full, and every run's statistics under
    "runs" (rounds of one process are one repetition; verdicts compare the runs' medians)."""
    import json

    done: list[dict[str, Any]] = []
    for i in range(max(1, runs)):
        target = out_dir / f"micro-{i + 1}.json"
        argv = [sys.executable, "-m", "pytest", "benchmarks/test_micro.py", "-q", "-p", "no:cacheprovider",
                "--benchmark-only", f"--benchmark-json={target}", "--benchmark-min-rounds=50"]
        # the file's marker sets max_time (marker options win over --benchmark-max-time)
        env = {**os.environ, "STACKBENCH_MICRO_MAX_TIME_S": f"{max_time_s:g}"}
        proc = run_child(["taskset", "-c", ",".join(map(str, cpus)), *argv] if cpus else argv,
                         cwd=REPO_ROOT, timeout=900, env=env)
        if proc.returncode != 0 or not target.exists():
            console.print(f"[red]micro-benchmark run {i + 1} failed:[/red] {proc.stdout[-500:]}{proc.stderr[-500:]}")
            continue
        done.append(dict(json.loads(target.read_text())))
    if not done:
        return None
    first = dict(done[0])
    first["runs"] = [micro_run_summary(d) for d in done]
    return first


MICRO_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "rounds", "iterations")


def micro_run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """One pytest-benchmark run without its raw timings: what `verdicts._run_medians` reads."""
    return {"datetime": doc.get("datetime"), "benchmarks": [
        {"name": b.get("name"), "fullname": b.get("fullname"), "group": b.get("group"),
         "extra_info": b.get("extra_info") or {}, "params": b.get("params"),
         "stats": {k: (b.get("stats") or {}).get(k) for k in MICRO_STATS}}
        for b in doc.get("benchmarks", [])]}
