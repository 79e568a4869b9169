"""`stackbench export`: CSV of cells and Bencher Metric Format, read back as other tools would."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtests import results
from loadtests.document import Run
from loadtests.export import csv_rows, to_bmf, to_csv
from tests.loadtests.test_compare import BASE, _document

LATEST = Path(__file__).resolve().parents[2] / "reports" / "latest" / "results.json"


def _run(tmp_path: Path) -> Run:
    doc = _document("a", {"config": BASE, "card": BASE[:2], "due": BASE}, tmp_path,
                    status={"due": "failed"})
    return Run.from_json(doc)


def test_csv_has_one_row_per_cell_with_medians(tmp_path: Path) -> None:
    run = _run(tmp_path)
    rows = list(csv.DictReader(io.StringIO(to_csv(run))))
    assert [r["cell"] for r in rows] == [c.id for c in run.cells]
    config = rows[0]
    assert config["stack"] == "rest-uvicorn" and config["scenario"] == "config"
    assert config["concurrency"] == "64" and config["n"] == "5" and config["status"] == "ok"
    assert float(config["rps_median"]) == pytest.approx(1000.0)
    assert float(config["rps_min"]) == 990.0 and float(config["rps_max"]) == 1010.0
    assert float(config["p99_ms_median"]) == pytest.approx(10.0)
    assert config["commit"] == "abc" and config["profile"] == "quick"
    assert rows[2]["status"] == "failed"


def test_csv_per_sample(tmp_path: Path) -> None:
    rows = csv_rows(_run(tmp_path), samples=True)
    config = [r for r in rows if r["scenario"] == "config"]
    assert [r["rps"] for r in config] == [rps for rps, _ in BASE]
    assert [r["sample"] for r in config] == [0, 1, 2, 3, 4]


def test_bmf_is_benchmark_measure_value_with_bounds(tmp_path: Path) -> None:
    bmf = to_bmf(_run(tmp_path))
    assert set(bmf) == {"rest-uvicorn/config/wrk/c64", "rest-uvicorn/card/wrk/c64"}  # not the failed one
    rps = bmf["rest-uvicorn/config/wrk/c64"]["throughput-rps"]
    assert rps == {"value": pytest.approx(1000.0), "lower_value": 990.0, "upper_value": 1010.0}
    for measures in bmf.values():
        for value in measures.values():
            assert set(value) == {"value", "lower_value", "upper_value"}
            assert value["lower_value"] <= value["value"] <= value["upper_value"]


def test_the_cli_exports_a_real_run(tmp_path: Path) -> None:
    from stackbench.cli import app

    source = LATEST if LATEST.exists() else tmp_path / "a" / "results.json"
    if not LATEST.exists():
        _run(tmp_path)
    doc = results.load(source)
    out = tmp_path / "bmf.json"
    result = CliRunner().invoke(app, ["export", str(source), "--format", "bmf", "-o", str(out)])
    assert result.exit_code == 0, result.output
    bmf = json.loads(out.read_text())
    assert len(bmf) == sum(1 for c in doc["cells"] if c["status"] == "ok" and c["samples"])
    as_csv = CliRunner().invoke(app, ["export", str(source), "--format", "csv"])
    assert as_csv.exit_code == 0
    assert len(list(csv.DictReader(io.StringIO(as_csv.stdout)))) == len(doc["cells"])
    bad = CliRunner().invoke(app, ["export", str(source), "--format", "xml"])
    assert bad.exit_code == 2
