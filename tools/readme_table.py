"""Regenerate the README's verdict table from the committed run's verdicts.

Every figure in the README's table comes from ``reports/latest/verdicts.json``: this script
rewrites the rows from it (claim, what was claimed, what was measured, the verdict) and keeps
the last column, the audit note a person wrote for each claim, as it is. ``--check`` changes
nothing and exits 1 when the table and the verdicts disagree (the test suite runs it), so a new
standard run cannot land with a README that still quotes the old one. ``--check`` also reads
the hand-written summary paragraph below the table and fails on any figure in it that the
committed ``report.md`` does not contain (a number written from memory, or from an older run).

    python tools/readme_table.py            # rewrite README.md from reports/latest
    python tools/readme_table.py --check    # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEADER = "| claim | claimed |"
NARRATIVE = "What the run says in one paragraph:"
# a figure: digits with thousands commas and decimals; "9.0k"-style roundings are prose, not checked
FIGURE = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})*(?:\.\d+)?(?![\d,]*\d|\.\d|k\b|\w)")


def _g(x: float) -> str:
    return f"{x:.3g}"


def measured_text(verdict: Mapping[str, Any]) -> str:
    """What a verdict measured, as the table prints it: a capacity interval, the factor with its
    95 % interval, or a dash."""
    held_parts = [f"{p['scenario']}: {p['held']}" for p in verdict.get("parts") or [] if p.get("held")]
    if held_parts and not verdict.get("held"):
        return " · ".join(held_parts)
    if verdict.get("held"):
        return str(verdict["held"])
    if verdict.get("measured") is None:
        return "—"
    unit = verdict.get("unit") or ""
    value = f"{_g(verdict['measured'])}{unit}" if unit == "x" else f"{_g(verdict['measured'])} {unit}".strip()
    ci = verdict.get("ci95")
    return value + (f" [{_g(ci[0])}, {_g(ci[1])}]" if ci and None not in ci else "")


def table_span(readme: str) -> tuple[int, int]:
    start = readme.index(HEADER)
    return start, readme.index("\n\n", start)


def render(readme: str, verdicts: Sequence[Mapping[str, Any]]) -> str:
    """The README with its verdict table rebuilt from ``verdicts`` (audit notes kept by claim id)."""
    start, end = table_span(readme)
    old_rows = readme[start:end].splitlines()
    audited = {}
    for row in old_rows[2:]:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        audited[cells[0].strip("`")] = cells[-1]
    lines = old_rows[:2]
    for v in verdicts:
        word = f"**{v['status']}**" + (f" (leans {v['leaning']})" if v.get("leaning") else "")
        lines.append(f"| `{v['id']}` | {v['claimed']} | {measured_text(v)} | {word} | {audited.get(v['id'], '—')} |")
    return readme[:start] + "\n".join(lines) + readme[end:]


def narrative_span(readme: str) -> tuple[int, int]:
    start = readme.index(NARRATIVE)
    return start, readme.index("\n## ", start)


def _plain(text: str) -> str:
    """Figures as comparable text: no thousands commas, × as x."""
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", text).replace("×", "x")


def unsupported_figures(readme: str, report_md: str) -> list[str]:
    """Figures of the README's summary paragraph that the report does not contain."""
    start, end = narrative_span(readme)
    report = _plain(report_md)
    missing = []
    for figure in FIGURE.findall(readme[start + len(NARRATIVE):end]):
        plain = _plain(figure)
        if not re.search(rf"(?<![\d.]){re.escape(plain)}(?![\d])", report):
            missing.append(figure)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--verdicts", type=Path, default=ROOT / "reports" / "latest" / "verdicts.json")
    parser.add_argument("--report", type=Path, help="the report the summary quotes (default: beside --verdicts)")
    args = parser.parse_args(argv)
    readme = args.readme.read_text()
    verdicts = json.loads(args.verdicts.read_text())
    new = render(readme, verdicts)
    counts = dict(Counter(v["status"] for v in verdicts))
    if args.check:
        if new != readme:
            print(f"{args.readme}: the verdict table differs from {args.verdicts}; "
                  "run python tools/readme_table.py", file=sys.stderr)
            return 1
        report = args.report or args.verdicts.with_name("report.md")
        missing = unsupported_figures(readme, report.read_text())
        if missing:
            print(f"{args.readme}: the summary paragraph quotes {', '.join(missing)}, not in {report}",
                  file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(new)
    print(f"{len(verdicts)} claims: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
