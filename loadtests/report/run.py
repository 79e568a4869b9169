"""Sections about the run itself: reliability, floors and the driver's ceiling, calibration
against the committed run, and the environment and settings."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from loadtests import results, scenarios
from loadtests.cell import Setup
from loadtests.document import Run
from loadtests.report.document import Section, Table
from loadtests.report.values import driver_ceiling, fmt, median, run_of

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "reports" / "latest" / "results.json"
# Throughput ratios to the committed run outside this band mean "a different machine (or load)".
SAME_MACHINE = (0.8, 1.25)


def reliability_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section:
    rows = []
    for sc in scenarios.SCENARIOS.values():
        if not sc.counts_writes:
            continue
        for c in (c for c in doc.get("cells", []) if c["scenario"] == sc.name):
            for i, sample in enumerate(c.get("samples", [])):
                w = sample.get("writes") or {}
                rows.append([c["stack"], str(i + 1), fmt(w.get("acknowledged")), fmt(w.get("stored")),
                             fmt(w.get("in_flight_at_cutoff")), "yes" if w.get("lost", 0) == 0 else f"**{w.get('lost')} lost**"])
    errors = sum(int(sum((s.get("errors") or {}).values())) for c in doc.get("cells", []) for s in c.get("samples", []))
    failed = [c["id"] for c in doc.get("cells", []) if c.get("status") in ("failed", "refused")]
    blocks: list[str | Table | Path] = [
        f"Errors across all measured samples: {errors}. Cells that failed or were refused by verification: "
        f"{', '.join(failed) if failed else 'none'}.",
        "Writes: every acknowledged write (2xx) must be a row in the database. A request in flight when the "
        "load generator stops may be stored without being acknowledged (the `in flight` column); an acknowledged "
        "write without a row would be a lost write.",
    ]
    if rows:
        blocks.append(Table(["stack", "sample", "acknowledged", "stored", "in flight at cutoff", "none lost"], rows))
    checks = doc.get("checks") or {}
    named = {k: v for k, v in checks.items() if k not in ("reliability", "logs")}
    logs = checks.get("logs") or {}
    if named:
        blocks.append(Table(["check (test suite, same run)", "result"],
                            [[k, f"**{v}** (output: `{logs[k]}` beside results.json)" if k in logs else str(v)]
                             for k, v in sorted(named.items())]))
    rel = checks.get("reliability")
    if isinstance(rel, dict):
        blocks += _reliability_suites(rel)
    return Section("Reliability", blocks=blocks)


def _reliability_suites(rel: dict[str, Any]) -> list[str | Table | Path]:
    """The reliability suites (loadtests/reliability.py): one pytest run, counted from its JUnit XML."""
    if rel.get("status") == "error" or not rel.get("suites"):
        where = f"`{rel['output']}` beside results.json" if rel.get("output") else "`checks.reliability.output_tail` in the results"
        return [f"Reliability suites: **could not run** (pytest exit code {rel.get('returncode')}); see {where}."]
    t = rel.get("totals") or {}
    found = rel.get("server_errors_found", 0)
    out: list[str | Table | Path] = [
        f"Reliability suites ({rel.get('command', 'pytest')}; profile {rel.get('profile', 'default')}, "
        f"{fmt(rel.get('wall_seconds'), 1)} s): **{rel.get('status')}**. {fmt(t.get('tests'))} tests, "
        f"{fmt(t.get('passed'))} passed, {fmt(t.get('failed'))} failed, {fmt(t.get('skipped'))} skipped; "
        f"{fmt(rel.get('bad_inputs_tried'))} bad inputs tried, {fmt(rel.get('faults_injected'))} faults "
        f"injected, {'**' + fmt(found) + '**' if found else '0'} server errors (5xx) found."]
    rows = [[name, f"`{s.get('path', '')}`", fmt(s.get("tests")), fmt(s.get("passed")),
             fmt(s.get("failed")) if not s.get("failed") else f"**{fmt(s.get('failed'))}**",
             fmt(s.get("skipped")), fmt(float(s.get("seconds") or 0), 1)] for name, s in rel["suites"].items()]
    rows.append(["total", "", fmt(t.get("tests")), fmt(t.get("passed")), fmt(t.get("failed")),
                 fmt(t.get("skipped")), fmt(float(t.get("seconds") or 0), 1)])
    out.append(Table(["reliability suite", "path", "tests", "passed", "failed", "skipped", "seconds"], rows))
    if details := rel.get("failure_details"):
        out.append(Table(["failed test", "why (pytest's message)"],
                         [[f"`{d.get('test')}`", _cell_text(d.get("why") or "")] for d in details[:10]]))
        more = int(t.get("failed") or len(details)) - min(len(details), 10)
        out.append((f"{more} more failed. " if more > 0 else "")
                   + (f"Every failure in full (traceback, captured output): `{rel['junit']}` (JUnit XML) and "
                      f"`{rel.get('output')}`, beside results.json." if rel.get("junit") else ""))
    elif failures := rel.get("failures"):
        out.append("Failed: " + ", ".join(f"`{f}`" for f in failures[:10])
                   + (f" and {len(failures) - 10} more" if len(failures) > 10 else "") + ".")
    return out


def _cell_text(text: str) -> str:
    """One table cell of free text: one line, no backticks to open code spans (the table
    escapes pipes itself)."""
    return " ".join(text.split()).replace("`", "'")[:300]


def floors_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section:
    rows = [[c.get("driver", "") + (f" × {c['processes']} processes" if c.get("processes") else ""),
             c.get("floor", ""), fmt(c.get("rps")), fmt(c.get("client_cpu_pct"), 0)]
            for c in doc.get("driver_ceilings", [])]
    return Section("Floors and the load generator's headroom", blocks=[
        "Floors are a raw ASGI app, a raw WSGI app and each framework's bare hello-world on the same servers "
        "(the config table above includes them, on their own panel of its chart). The driver's ceiling is the load "
        "generator against the fastest floor in the same run — the dedicated measurement first, then any floor cell "
        "that went faster (the driver reached at least that rate): a stack reaching more than a third of it would be "
        "measuring the client, and is flagged.",
        Table(["driver", "against", "req/s", "client CPU %"], rows),
    ])


# --- calibration against the committed run ------------------------------------------------------
def _throughputs(run: Run) -> dict[tuple[str, str, int | None], float]:
    """(stack, scenario, connections) → median req/s of the ok closed-loop cells."""
    closed = {sc.name for sc in scenarios.closed_loop()}
    out = {}
    for c in run.cells:
        if c.scenario in closed and c.mode == "closed" and c.ok and (rps := median(c, "rps")):
            out[(c.stack, c.scenario, c.concurrency)] = rps
    return out


def calibration(doc: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """This run against `reference`: the driver ceilings' ratio and the median ratio over the
    closed-loop cells both runs measured (same stack, scenario and connections)."""
    ours_run, ref_run = run_of(doc), Run.from_json(results.resummarize(reference))
    ours, theirs = _throughputs(ours_run), _throughputs(ref_run)
    common = sorted(set(ours) & set(theirs), key=str)
    ratios = [ours[k] / theirs[k] for k in common]
    ceiling, ref_ceiling = driver_ceiling(ours_run), driver_ceiling(ref_run)
    return {
        "reference_run": ref_run.run_id, "reference_profile": ref_run.profile,
        "ceiling": ceiling, "reference_ceiling": ref_ceiling,
        "ceiling_ratio": ceiling / ref_ceiling if ceiling and ref_ceiling else None,
        "cells_compared": len(common), "median_cell_ratio": statistics.median(ratios) if ratios else None,
        "cell_ratio_range": (min(ratios), max(ratios)) if ratios else None,
    }


def calibration_section(doc: dict[str, Any], charts_dir: Path | None = None,
                        committed: Path = COMMITTED) -> Section | None:
    """How this run's machine compares with the committed run's (reports/latest/)."""
    if not committed.exists():
        return None
    reference = json.loads(committed.read_text())
    if reference.get("run_id") == doc.get("run_id"):
        return Section("Calibration against the committed run", blocks=[
            "This is the committed run (`reports/latest/`): the reference other runs are calibrated against."])
    cal = calibration(doc, reference)
    return Section("Calibration against the committed run", blocks=[
        calibration_sentence(cal),
        Table(["measure", "this run", f"committed run {cal['reference_run']}", "ratio"], [
            ["driver ceiling (req/s)", fmt(cal["ceiling"]), fmt(cal["reference_ceiling"]), _ratio(cal["ceiling_ratio"])],
            [f"closed-loop cells in both runs ({cal['cells_compared']}): median ratio", "", "",
             _ratio(cal["median_cell_ratio"])],
        ]),
    ])


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def calibration_sentence(cal: dict[str, Any]) -> str:
    ratio = cal["median_cell_ratio"] if cal["median_cell_ratio"] is not None else cal["ceiling_ratio"]
    if ratio is None:
        return (f"No cell of this run matches one of the committed run {cal['reference_run']}: "
                "absolute numbers cannot be calibrated; compare ratios only.")
    lo, hi = SAME_MACHINE
    verdict = ("about the same machine: absolute numbers are comparable" if lo <= ratio <= hi else
               "**a different machine or load**: absolute numbers here are not comparable with the committed "
               "run's; the ratios between stacks (which the verdicts use) still are")
    return (f"Against the committed run {cal['reference_run']} (profile {cal['reference_profile']}): the driver "
            f"ceiling is {_ratio(cal['ceiling_ratio'])} and the same cells run at {_ratio(cal['median_cell_ratio'])} "
            f"of its throughput (median) — {verdict}.")


def environment_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section:
    env = doc.get("environment", {})
    machine = env.get("machine", {})
    rows = [[k, str(v)] for k, v in machine.items()]
    rows += [["python", str(env.get("python"))], ["git", json.dumps(env.get("git"))], ["database", json.dumps(env.get("database"))]]
    settings = [[k, json.dumps(v)] for k, v in sorted(doc.get("settings", {}).items())]
    packages = [[k, str(v)] for k, v in sorted((env.get("packages") or {}).items())]
    stacks = [[sid, info.get("server", ""), str(info.get("workers", "")),
               ", ".join(f"{k}={v}" for k, v in sorted((info.get("settings") or {}).items())
                         if k not in ("app", "bind", "package", "server"))]
              for sid, info in sorted(doc.get("stacks", {}).items())]
    return Section("Environment and settings", blocks=[
        Table(["machine", ""], rows), Table(["run setting", "value"], settings),
        Table(["stack", "server", "workers", "settings as run"], stacks),
        Table(["stack", "setup as launched (read from its processes; GC policy)", "app tuning in force"],
              setups_as_launched(doc)),
        Table(["package", "version"], packages)])


def setups_as_launched(doc: dict[str, Any]) -> list[list[str]]:
    """One row per distinct (stack, setup) among the cells: what each server really ran, its
    GC policy (flashcards/runtime.py) and the app's tuning knobs (loadtests/setups.py)."""
    seen: dict[tuple[str, str, str], None] = {}
    for cell in doc.get("cells", []):
        raw = cell.get("setup")
        if not isinstance(raw, dict) or "error" in raw:
            continue
        try:
            setup = Setup.model_validate(raw)
        except ValueError:
            continue
        seen[(str(cell.get("stack")), setup.describe(), setup.tuning() or "not recorded")] = None
    return [list(key) for key in sorted(seen)]
