"""The README's verdict table is the committed run's (tools/readme_table.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tools import readme_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_table_is_the_committed_runs_verdicts() -> None:
    assert readme_table.main(["--check"]) == 0


def test_a_changed_verdict_is_caught_and_the_audit_notes_are_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    verdicts = json.loads((ROOT / "reports" / "latest" / "verdicts.json").read_text())
    first = verdicts[0]
    start, end = readme_table.table_span(readme.read_text())
    row = next(r for r in readme.read_text()[start:end].splitlines() if r.startswith(f"| `{first['id']}`"))
    note = row.rstrip(" |").rsplit(" | ", 1)[-1]
    changed = tmp_path / "verdicts.json"
    changed.write_text(json.dumps([{**first, "status": "contradicted", "leaning": None, "held": None,
                                    "parts": [], "measured": 0.5, "unit": "x", "ci95": [0.4, 0.6]},
                                   *verdicts[1:]]))
    args = ["--readme", str(readme), "--verdicts", str(changed),
            "--report", str(ROOT / "reports" / "latest" / "report.md")]
    assert readme_table.main([*args, "--check"]) == 1
    assert readme_table.main(args) == 0
    assert readme_table.main([*args, "--check"]) == 0
    row = next(r for r in readme.read_text().splitlines() if r.startswith(f"| `{first['id']}`"))
    assert row == f"| `{first['id']}` | {first['claimed']} | 0.5x [0.4, 0.6] | **contradicted** | {note} |"


def test_capacity_intervals_and_multi_part_holds_are_printed_as_held() -> None:
    assert readme_table.measured_text({"held": "a held ≥ 100"}) == "a held ≥ 100"
    parts = [{"scenario": "chat", "held": "x held 20"}, {"scenario": "ws", "held": "x held 500"}]
    assert readme_table.measured_text({"held": None, "parts": parts}) == "chat: x held 20 · ws: x held 500"
    assert readme_table.measured_text({"measured": None}) == "—"
    assert readme_table.measured_text({"measured": 12.34, "unit": "ms", "ci95": None}) == "12.3 ms"


def test_a_summary_figure_the_report_lacks_is_caught(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    report = (ROOT / "reports" / "latest" / "report.md").read_text()
    assert readme_table.unsupported_figures(readme, report) == []
    _, end = readme_table.narrative_span(readme)
    forged = readme[:end] + " Flask served 123,457.5 req/s at 0.123× the cost.\n" + readme[end:]
    assert readme_table.unsupported_figures(forged, report) == ["123,457.5", "0.123"]
    # thousands commas and × are spelled either way; "9.0k"-style roundings are prose
    small = f"{readme_table.NARRATIVE} gevent fails at 2,000 (9.9k req/s), 1.5× faster.\n\n## Layout\n"
    assert readme_table.unsupported_figures(small, "failed at 2000; 1.5x [1.2, 1.8]") == []
    assert readme_table.unsupported_figures(small, "failed at 20000; 1.55x") == ["2,000", "1.5"]
