"""Rendering verdicts (loadtests/verdict_render.py): the table says what was compared, the chart
is drawn, the terminal summary is short, and no rendering shows ∞ or a negative bound."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from loadtests import verdict_render as r
from loadtests import verdicts as v
from tests.test_verdicts_docs import doc, rps_cell

REGISTRY = v.load_registry()
LATEST = Path(__file__).resolve().parents[1] / "reports" / "latest" / "results.json"


@pytest.fixture(scope="module")
def found() -> list[v.Verdict]:
    if not LATEST.is_file():
        pytest.skip("no reports/latest/results.json")
    return v.judge_all(json.loads(LATEST.read_text()))


def test_markdown_table_one_row_per_claim_without_infinity(found: list[v.Verdict]) -> None:
    table = r.verdicts_markdown(found, REGISTRY)
    lines = table.splitlines()
    assert len(lines) == len(found) + 2 and lines[0].startswith("| claim |")
    assert "∞" not in table and not re.search(r"\binf\b", table.lower())
    assert not re.search(r"\[-\d", table)  # no negative lower bound
    assert "what was compared" in lines[0]


def test_row_names_setups_method_and_exclusions() -> None:
    claim = REGISTRY.by_id("eas-simple-json-5x")
    d = doc(rps_cell(claim.baseline or "", "config", 1000.0), rps_cell(claim.candidate or "", "config", 6000.0))
    verdict = v.judge(claim, d)
    row = r.table_rows([verdict], REGISTRY)[0]
    assert row[5] == "**supported**"
    assert "uvicorn: 1 process" in row[6] and "n = 5/5" in row[6] and "Welch" in row[6]
    partly = v.judge(claim, doc(rps_cell(claim.baseline or "", "config", 1000.0),
                                rps_cell(claim.candidate or "", "config", 2000.0)))
    assert r.status_text(partly) == "**partly supported** — undershoot: 2x measured against 5x claimed"


def test_terminal_summary_is_counts_and_path(found: list[v.Verdict]) -> None:
    text = r.terminal_summary(found, "reports/latest/report.md")
    assert text.count("\n") == 1 and text.endswith("report: reports/latest/report.md")
    assert sum(r.tally(found).values()) == len(found)


def test_verdict_chart_drawn(tmp_path: Path) -> None:
    claim = REGISTRY.by_id("eas-simple-json-5x")
    verdicts = [v.judge(claim, doc(rps_cell(claim.baseline or "", "config", 1000.0),
                                   rps_cell(claim.candidate or "", "config", x))) for x in (500.0, 2000.0, 6000.0)]
    points = r.chart_points(verdicts)
    assert [p["status"] for p in points] == [v.CONTRADICTED, v.PARTLY, v.SUPPORTED]
    path = r.verdict_chart(verdicts, tmp_path / "verdicts.png")
    assert path is not None and path.stat().st_size > 5000
    assert r.verdict_chart([], tmp_path / "none.png") is None


def test_capacity_headlines_say_what_each_side_held(found: list[v.Verdict]) -> None:
    """A capacity bound is not a ratio: the headline names what each stack held, never ∞."""
    capacity = [x for x in found if x.metric == "capacity" and x.status != v.NOT_TESTABLE]
    assert capacity, "reports/latest has capacity claims"
    for verdict in found:
        assert "∞" not in v.headline(verdict)
    for verdict in capacity:
        text = v.headline(verdict)
        assert "held" in text, (verdict.id, text)
        if verdict.parts or (verdict.held and ";" in verdict.held):
            assert text.count("held") >= 2, (verdict.id, text)
