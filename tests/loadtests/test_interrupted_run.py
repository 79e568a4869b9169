"""A run stopped early (issue 20): Ctrl-C in the middle of a real `stackbench bench` subprocess
leaves a valid results.json marked interrupted (the run and the cell in flight), no server
process behind, exit code 130, and `stackbench report` says the results are partial; a crash
leaves the same marks. Before the fix, the document kept `finished_at` as if done and the cell
in flight read `status: ok` with no samples."""

from __future__ import annotations

import copy
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rich.console import Console
from typer.testing import CliRunner

from loadtests import results, runner
from loadtests.bench import Bench
from loadtests.servers import REPO_ROOT
from loadtests.stacks import CEILING_FLOOR
from loadtests.upgrade import upgrade_v1
from stackbench.cli import app

LATEST = REPO_ROOT / "reports" / "latest" / "results.json"
needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def _wait_for_measuring(proc: subprocess.Popen[str], seen: dict[int, psutil.Process]) -> None:
    """Until wrk drives the rest-uvicorn server (the ceiling's floor runs on granian): every
    descendant seen on the way is remembered, to check afterwards that none is left."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        cmdlines = []
        for p in tree:
            seen.setdefault(p.pid, p)
            try:
                cmdlines.append(" ".join(p.cmdline()))
            except psutil.Error:
                pass
        if any("impl_rest:create_app" in c for c in cmdlines) and any(c.split(" ")[0].endswith("wrk") for c in cmdlines):
            return
        time.sleep(0.02)
    raise AssertionError("the bench never reached the rest-uvicorn cell")


@pytest.mark.slow  # ~20 s: a whole bench subprocess (seed, ceiling, one cell) and a report
@pytest.mark.server
@needs_wrk
def test_sigint_mid_cell_leaves_partial_results_no_servers_and_a_partial_report(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    argv = [sys.executable, "-c", "from stackbench.cli import app; app()", "bench", "--profile", "smoke",
            "--stack", "rest-uvicorn", "--scenario", "config", "--dsn", f"sqlite:///{tmp_path / 'bench.sqlite3'}",
            "--out", str(runs), "--no-report"]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: dict[int, psutil.Process] = {}
    try:
        _wait_for_measuring(proc, seen)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # to the bench only: its servers live in sessions of their own
        output = proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "run interrupted (SIGINT)" in output
    left = [p for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [p.cmdline() for p in left]

    [path] = runs.glob("*/results.json")
    doc = results.load(path)  # strict: the partial document is valid
    assert doc["status"] == "interrupted" and doc["finished_at"] is None
    cell = next(c for c in doc["cells"] if c["stack"] == "rest-uvicorn" and c["scenario"] == "config")
    assert cell["status"] == "interrupted" and "while measuring" in cell["error"]
    assert doc["interrupted"]["reason"] == "SIGINT" and doc["interrupted"]["in_flight"] == cell["id"]
    measured = [c["id"] for c in doc["cells"] if c["status"] == "ok"]  # the floor cell before it stays measured
    assert measured and doc["interrupted"]["completed_cells"] == len(measured)
    assert doc["driver_ceilings"] and "checks" not in doc  # what ran before is kept; the checks never ran

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "(partial: interrupted)" in text.splitlines()[0]
    assert "Partial results: this run was interrupted" in text and cell["id"] in text


@pytest.mark.server
@needs_wrk
def test_a_crash_mid_run_marks_the_document_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: Bench, stack: object, rep: int) -> None:
        self.doc["cells"].append(results.new_cell("rest-uvicorn", "config", "wrk", 8))  # begun, never measured
        self.doc["stacks"]["rest-uvicorn"] = dict(self.doc["stacks"][CEILING_FLOOR])
        raise RuntimeError("boom")

    monkeypatch.setattr(Bench, "run_stack", crash)
    with pytest.raises(RuntimeError, match="boom"):
        runner.main(profile="smoke", impls=None, servers=None, scenarios=["config"], stacks=["rest-uvicorn"],
                    dsn=f"sqlite:///{tmp_path / 'bench.sqlite3'}", out=tmp_path / "runs", write_report=False,
                    console=Console(quiet=True))
    [path] = (tmp_path / "runs").glob("*/results.json")
    doc = results.load(path)
    assert doc["status"] == "interrupted" and doc["interrupted"]["reason"] == "crash: RuntimeError: boom"
    assert [c["status"] for c in doc["cells"]] == ["interrupted"]
    assert "before this cell was measured" in doc["cells"][0]["error"]


def test_mark_interrupted_keeps_measured_cells_and_flags_the_rest() -> None:
    raw = json.loads(LATEST.read_text())
    doc = upgrade_v1(raw) if raw["schema_version"] == 1 else raw
    doc = copy.deepcopy(doc)
    done, in_flight = doc["cells"][0], doc["cells"][1]
    empty = results.new_cell(done["stack"], "not-yet", done["driver"], 1)
    doc["cells"] = [done, in_flight, empty]
    results.mark_interrupted(doc, "SIGTERM", in_flight["id"])
    assert results.validate(doc) == []
    assert [c["status"] for c in doc["cells"]] == ["ok", "interrupted", "interrupted"]
    assert in_flight["samples"], "samples of the cell in flight are kept"
    assert doc["interrupted"]["completed_cells"] == 1 and doc["finished_at"] is None
    results.mark_complete(doc)
    assert doc["status"] == "complete" and doc["finished_at"]


@pytest.mark.slow  # ~40 s here: a whole report (charts) of a committed-run excerpt
def test_report_lands_beside_the_results_and_says_partial(tmp_path: Path) -> None:
    raw = json.loads(LATEST.read_text())
    doc = upgrade_v1(raw) if raw["schema_version"] == 1 else raw
    doc["cells"] = doc["cells"][:2]
    doc["stacks"] = {k: v for k, v in doc["stacks"].items() if k in {c["stack"] for c in doc["cells"]}}
    doc.pop("checks", None)
    results.mark_interrupted(doc, "SIGINT", doc["cells"][1]["id"])
    path = results.save(doc, tmp_path / "runs" / "r1" / "results.json")
    result = CliRunner().invoke(app, ["report", str(path.parent)])  # a run directory is accepted too
    assert result.exit_code == 0, result.output
    text = (path.parent / "report.md").read_text()  # beside the results, not reports/<run id>
    assert "(partial: interrupted)" in text.splitlines()[0] and "Partial results" in text


def test_report_of_a_missing_file_is_refused_in_one_line(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing.json")])
    assert missing.exit_code == 2 and "no results JSON there" in missing.output
    assert "Traceback" not in missing.output
