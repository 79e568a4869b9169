"""`stackbench report --index DIR`: every run listed, trends for cells seen in two runs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from stackbench.cli import app
from tests.loadtests.test_compare import BASE, _document


def test_index_lists_runs_and_charts_repeated_cells(tmp_path: Path) -> None:
    _document("a", {"config": BASE}, tmp_path)
    _document("b", {"config": [(r * 0.9, p) for r, p in BASE], "card": BASE}, tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    result = CliRunner().invoke(app, ["report", "--index", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "index.html").read_text()
    assert "3 run(s)" in page and "not readable" in page
    assert page.count("<svg") == 2  # config: rps and p99 (card is in one run only)
    assert "rest-uvicorn/config/wrk/c64" in page and "rest-uvicorn/card/wrk/c64" not in page
    assert CliRunner().invoke(app, ["report", "--index", str(tmp_path / "none")]).exit_code == 2
