"""`stackbench compare`: cell-by-cell significance with a minimum ratio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from loadtests import results
from loadtests.compare import compare, compare_metric
from loadtests.compare_render import render_compare_table

ENVIRONMENT = {"machine": {"cpu_model": "test", "cores": 2, "memory_bytes": 0, "kernel": "6"},
               "python": "3.11", "packages": {}, "git": {"commit": "abc", "dirty": False}}
STACK = {"impl": "rest", "server": "uvicorn", "kind": "app", "workers": 1, "settings": {},
         "command": ["uvicorn"]}


def _sample(rps: float, p99: float) -> dict[str, Any]:
    return {"requests": int(rps * 5), "duration_s": 5.0, "rps": rps,
            "latency_ms": {"p50": p99 / 3, "p90": p99 / 2, "p99": p99, "p99_9": p99, "max": p99},
            "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
            "client_cpu_pct": 40.0, "extra": {}}


def _document(run_id: str, cells: dict[str, list[tuple[float, float]]], tmp_path: Path,
              status: dict[str, str] | None = None) -> dict[str, Any]:
    """A valid results document (saved and loaded back as `stackbench compare` does)."""
    doc = results.new_document(run_id=run_id, profile="quick", environment=ENVIRONMENT,
                               settings={"repetitions": 5})
    doc["stacks"]["rest-uvicorn"] = STACK
    for scenario, samples in cells.items():
        cell = results.new_cell("rest-uvicorn", scenario, "wrk", 64)
        cell["samples"] = [_sample(rps, p99) for rps, p99 in samples]
        if status and scenario in status:
            cell["status"], cell["error"] = status[scenario], "stack crashed"
        results.finish_cell(cell, ceiling_rps=None)
        doc["cells"].append(cell)
    path = results.save(doc, tmp_path / run_id / "results.json")
    return results.load(path)


BASE = [(1000.0, 10.0), (1010.0, 10.2), (990.0, 9.9), (1005.0, 10.1), (995.0, 10.0)]


def test_identical_runs_show_no_significant_change(tmp_path: Path) -> None:
    a = _document("a", {"config": BASE, "card": BASE}, tmp_path)
    b = _document("b", {"config": BASE, "card": BASE}, tmp_path)
    rows = compare(a, b)
    assert [r.cell_id for r in rows] == ["rest-uvicorn/config/wrk/c64", "rest-uvicorn/card/wrk/c64"]
    for row in rows:
        assert row.presence == "both" and not row.significant
        assert row.rps is not None and row.p99 is not None
        assert row.rps.verdict == row.p99.verdict == "no change"
        assert row.rps.ratio == 1.0 and row.rps.test == "mann-whitney"
        assert row.rps.p is not None and row.rps.p > 0.5


def test_a_30_percent_shift_with_five_samples_is_significant(tmp_path: Path) -> None:
    faster = [(rps * 1.3, p99 * 0.7) for rps, p99 in BASE]
    rows = compare(_document("a", {"config": BASE}, tmp_path),
                   _document("b", {"config": faster}, tmp_path))
    (row,) = rows
    assert row.significant and row.verdict == "better"
    assert row.rps is not None and row.p99 is not None
    assert row.rps.ratio == pytest.approx(1.3)
    assert row.rps.mann_whitney_p is not None and row.rps.mann_whitney_p < 0.05
    assert row.rps.welch_p is not None and row.rps.welch_p < 0.05
    assert row.rps.verdict == "better" and row.p99.verdict == "better"
    assert row.p99.ratio == pytest.approx(0.7)
    # and the other way round
    (back,) = compare(_document("c", {"config": faster}, tmp_path),
                      _document("d", {"config": BASE}, tmp_path))
    assert back.rps is not None and back.rps.verdict == "worse" and back.verdict == "worse"


def test_one_sample_a_side_is_not_judged(tmp_path: Path) -> None:
    rows = compare(_document("a", {"config": [(1000.0, 10.0)]}, tmp_path),
                   _document("b", {"config": [(2000.0, 5.0)]}, tmp_path))
    (row,) = rows
    assert row.rps is not None and row.rps.verdict == "n too small" and row.rps.p is None
    assert row.rps.ratio == 2.0  # still printed, never called
    assert not row.significant and row.verdict == "n too small"
    (mixed,) = compare(_document("c", {"config": BASE}, tmp_path),
                       _document("d", {"config": [(2000.0, 5.0)]}, tmp_path))
    assert mixed.rps is not None and mixed.rps.verdict == "n too small"


def test_a_small_shift_is_not_a_change_even_when_significant() -> None:
    a = [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    b = [x * 1.03 for x in a]
    change = compare_metric("rps", a, b, higher_is_better=True)
    assert change.p is not None and change.p < 0.05
    assert not change.significant and change.verdict == "no change"
    assert compare_metric("rps", a, b, higher_is_better=True, min_change=0.02).significant


def test_few_samples_use_welch() -> None:
    change = compare_metric("rps", [100.0, 101.0, 99.0], [150.0, 151.0, 149.0],
                            higher_is_better=True)
    assert change.mann_whitney_p is None and change.test == "welch"
    assert change.significant and change.verdict == "better"


def test_cells_in_one_run_only_and_cells_that_did_not_run(tmp_path: Path) -> None:
    a = _document("a", {"config": BASE, "card": BASE, "due": BASE}, tmp_path,
                  status={"due": "failed"})
    b = _document("b", {"config": BASE, "review": BASE, "due": BASE}, tmp_path)
    rows = {r.cell_id.split("/")[1]: r for r in compare(a, b)}
    assert rows["card"].presence == "only A" and rows["card"].verdict == "only A"
    assert rows["review"].presence == "only B" and rows["review"].status_b == "ok"
    assert any(note.startswith("A failed") for note in rows["due"].notes)
    assert [r.presence for r in compare(a, b)] == ["both", "both", "only A", "only B"]


def test_the_table_and_the_cli(tmp_path: Path) -> None:
    a = _document("a", {"config": BASE, "card": BASE}, tmp_path)
    b = _document("b", {"config": [(r * 1.3, p) for r, p in BASE], "due": BASE}, tmp_path)
    table = render_compare_table(compare(a, b))
    assert table.row_count == 3
    console = Console(record=True, width=250)
    console.print(table)
    text = console.export_text()
    assert "rest-uvicorn/config/wrk/c64" in text and "better" in text
    assert "only A" in text and "only B" in text and "×1.300" in text

    from stackbench.cli import app

    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a" / "results.json"),
                                      str(tmp_path / "b")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "1 significant change" in result.output and "rest-uvicorn/config/wrk/c64" in result.output


# -- the regression gate ------------------------------------------------------------------------
LATEST = Path(__file__).resolve().parents[2] / "reports" / "latest" / "results.json"
GATE = ["--fail-on", "worse", "--min-change", "5%", "--metric", "rps", "--metric", "p99"]


def _scaled(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """The same run with every sample's throughput multiplied by `factor`."""
    import copy

    out = copy.deepcopy(doc)
    out["run_id"] = f"{doc['run_id']}-x{factor}"
    for cell in out["cells"]:
        for sample in cell.get("samples") or []:
            if isinstance(sample.get("rps"), int | float):
                sample["rps"] *= factor
    return out


def _compare_cli(*args: str) -> Any:
    from stackbench.cli import app

    return CliRunner().invoke(app, ["compare", *args])


@pytest.mark.skipif(not LATEST.exists(), reason="no reports/latest/results.json")
def test_gate_fails_on_a_30_percent_regression_of_the_standard_run(tmp_path: Path) -> None:
    import json

    base = results.load(LATEST)
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(_scaled(base, 0.7)))
    diff = tmp_path / "diff.json"
    result = _compare_cli(str(LATEST), str(slower), *GATE, "--json", str(diff))
    assert result.exit_code == 1, result.output
    assert "FAIL:" in result.output
    doc = json.loads(diff.read_text())
    assert doc["gate"]["status"] == "fail" and doc["gate"]["exit_code"] == 1
    worse = [c for c in doc["cells"] if c["metrics"].get("rps", {}).get("verdict") == "worse"]
    assert len(worse) > 10
    assert all(c["metrics"]["rps"]["ratio"] == pytest.approx(0.7) for c in worse)
    # nothing else moved: no latency verdict, no "better"
    assert not any(c["metrics"]["p99_ms"]["significant"] for c in doc["cells"] if c["metrics"])
    assert doc["fingerprint_differences"] == []


@pytest.mark.skipif(not LATEST.exists(), reason="no reports/latest/results.json")
def test_gate_passes_a_copy_of_the_same_run(tmp_path: Path) -> None:
    copy_path = tmp_path / "copy.json"
    copy_path.write_text(LATEST.read_text())
    result = _compare_cli(str(LATEST), str(copy_path), *GATE)
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "warning" not in result.output


def test_gate_fails_on_a_regression_and_on_a_broken_cell(tmp_path: Path) -> None:
    slower = [(rps * 0.7, p99) for rps, p99 in BASE]
    a = tmp_path / "a" / "results.json"
    _document("a", {"config": BASE, "card": BASE}, tmp_path)
    _document("b", {"config": slower, "card": BASE}, tmp_path)
    _document("c", {"config": BASE, "card": BASE}, tmp_path, status={"card": "failed"})
    assert _compare_cli(str(a), str(tmp_path / "b"), *GATE).exit_code == 1
    assert _compare_cli(str(a), str(tmp_path / "b")).exit_code == 0  # no --fail-on: report only
    broken = _compare_cli(str(a), str(tmp_path / "c"), *GATE)
    assert broken.exit_code == 1 and "card/wrk/c64 (B failed)" in broken.output
    # faster is not a failure of --fail-on worse, but is of --fail-on change
    assert _compare_cli(str(tmp_path / "b"), str(a), *GATE).exit_code == 0
    assert _compare_cli(str(tmp_path / "b"), str(a), "--fail-on", "change").exit_code == 1


def test_a_regression_below_the_minimum_change_passes(tmp_path: Path) -> None:
    _document("a", {"config": BASE}, tmp_path)
    _document("b", {"config": [(rps * 0.97, p99) for rps, p99 in BASE]}, tmp_path)
    args = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert _compare_cli(*args, *GATE).exit_code == 0
    assert _compare_cli(*args, "--fail-on", "worse", "--min-change", "2%").exit_code == 1


def test_one_sample_per_cell_cannot_be_judged(tmp_path: Path) -> None:
    _document("a", {"config": [(1000.0, 10.0)]}, tmp_path)
    _document("b", {"config": [(500.0, 30.0)]}, tmp_path)
    args = [str(tmp_path / "a"), str(tmp_path / "b"), *GATE]
    result = _compare_cli(*args)
    assert result.exit_code == 0, result.output
    assert "no comparison could be judged" in result.output and "n too small" in result.output
    assert "worse" not in result.output.replace("--fail-on worse", "").replace("no cell worse", "")
    assert _compare_cli(*args, "--strict").exit_code == 2


def test_a_changed_fingerprint_warns_and_strict_refuses(tmp_path: Path) -> None:
    import json

    _document("a", {"config": BASE}, tmp_path)
    b_doc = _document("b", {"config": BASE}, tmp_path)
    b_doc["environment"]["machine"]["cpu_model"] = "other CPU"
    b_doc["environment"]["packages"] = {"uvicorn": "9.9"}
    b_path = tmp_path / "b2.json"
    b_path.write_text(json.dumps(b_doc))
    result = _compare_cli(str(tmp_path / "a"), str(b_path), *GATE)
    assert result.exit_code == 0, result.output
    assert "warning: the runs' environments differ" in result.output
    assert "cpu model: test → other CPU" in result.output and "package uvicorn: None → 9.9" in result.output
    strict = _compare_cli(str(tmp_path / "a"), str(b_path), *GATE, "--strict")
    assert strict.exit_code == 2 and "REFUSED" in strict.output


def test_output_through_a_pipe_is_not_truncated(tmp_path: Path) -> None:
    import subprocess
    import sys

    long_stack = "flask-gunicorn-gthread-with-a-very-long-stack-name"
    doc = results.new_document(run_id="a", profile="ci", environment=ENVIRONMENT, settings={})
    doc["stacks"][long_stack] = STACK
    cell = results.new_cell(long_stack, "config", "wrk", 256)
    cell["samples"] = [_sample(rps, p99) for rps, p99 in BASE]
    results.finish_cell(cell, ceiling_rps=None)
    doc["cells"].append(cell)
    a = results.save(doc, tmp_path / "a.json")
    proc = subprocess.run([sys.executable, "-m", "stackbench.cli", "compare", str(a), str(a), *GATE],
                          capture_output=True, text=True, env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(f"{long_stack}/config/wrk/c256" in line for line in lines), proc.stdout
    assert max(len(line) for line in lines) > 80  # wider than a terminal, nothing cut
    assert "…" not in proc.stdout


def test_a_moved_control_cell_warns_and_never_fails_the_gate(tmp_path: Path) -> None:
    """A floor (no app code) that changed means the machine changed: said, not blamed on the code."""
    def with_floor(run_id: str, floor: list[tuple[float, float]], app: list[tuple[float, float]]) -> Path:
        doc = _document(run_id, {"config": app}, tmp_path)
        doc["stacks"]["raw-asgi-uvicorn"] = {**STACK, "kind": "floor", "impl": "raw-asgi"}
        cell = results.new_cell("raw-asgi-uvicorn", "config", "wrk", 64)
        cell["samples"] = [_sample(rps, p99) for rps, p99 in floor]
        results.finish_cell(cell, ceiling_rps=None)
        doc["cells"].append(cell)
        return results.save(doc, tmp_path / f"{run_id}-floor.json")

    slow = [(rps * 0.6, p99) for rps, p99 in BASE]
    a = with_floor("a", BASE, BASE)
    b = with_floor("b", slow, BASE)
    result = _compare_cli(str(a), str(b), *GATE)
    assert result.exit_code == 0, result.output
    assert "a control cell (no app code) changed" in result.output
    assert "raw-asgi-uvicorn/config/wrk/c64 rps ×0.600" in result.output
    assert _compare_cli(str(a), str(b), *GATE, "--strict").exit_code == 2
    # the app regressing while the floor held still fails
    c = with_floor("c", BASE, slow)
    held = _compare_cli(str(a), str(c), *GATE)
    assert held.exit_code == 1 and "control" not in held.output
