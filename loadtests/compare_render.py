"""How `stackbench compare` shows its rows: a rich table on a terminal, plain aligned text in a
pipe or a file (never cut to 80 columns: every column is as wide as its widest value), and the
whole command (`run`) so the CLI stays a thin wrapper."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table

from loadtests import compare as cmp
from loadtests.compare import CompareRow, GateResult, MetricChange

_STYLE = {"better": "green", "worse": "red", "no change": "dim", "n too small": "yellow",
          "no data": "dim", "only A": "magenta", "only B": "magenta", "broken": "red"}
_SHORT = {"rps": "rps", "p99_ms": "p99", "p50_ms": "p50", "p90_ms": "p90", "mean_ms": "mean"}


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(m: MetricChange | None) -> str:
    return "–" if m is None or m.ratio is None else f"×{m.ratio:.3f}"


def _p(m: MetricChange | None) -> str:
    if m is None or m.p is None:
        return "–"
    mark = "U" if m.test == "mann-whitney" else "t"
    return f"{m.p:.3g} ({mark})"


def _metrics_of(rows: Sequence[CompareRow]) -> list[str]:
    for row in rows:
        if row.metrics:
            return [m.metric for m in row.metrics]
    return list(cmp.DEFAULT_METRICS)


def _header(metrics: Sequence[str]) -> list[str]:
    cols = ["cell", "n"]
    for name in metrics:
        short = _SHORT.get(name, name)
        unit = " ms" if name.endswith("_ms") else ""
        cols += [f"{short} A{unit}", f"{short} B{unit}", "ratio", "p", short]
    return [*cols, "notes"]


def _cells(row: CompareRow, metrics: Sequence[str]) -> list[tuple[str, str | None]]:
    """(text, verdict-or-None) per column; the verdict marks a cell to colour."""
    if row.presence != "both":
        status = row.status_a if row.presence == "only A" else row.status_b
        blank: list[tuple[str, str | None]] = [("", None)] * (5 * len(metrics) - 1)
        return [(row.cell_id, None), ("", None), *blank, (row.presence, row.presence), (status or "", None)]
    first = row.metrics[0] if row.metrics else None
    out: list[tuple[str, str | None]] = [(row.cell_id, None),
                                         (f"{first.n_a}/{first.n_b}" if first else "", None)]
    for name in metrics:
        m = row.metric(name)
        digits = 2 if name.endswith("_ms") else 1
        out += [(_num(m.median_a if m else None, digits), None), (_num(m.median_b if m else None, digits), None),
                (_ratio(m), None), (_p(m), None), ((m.verdict if m else ""), m.verdict if m else None)]
    notes = list(row.notes)
    if row.broken:
        notes.insert(0, "BROKEN in B")
    out.append(("; ".join(notes), None))
    return out


def _title(rows: Sequence[CompareRow], min_change: float, alpha: float) -> tuple[str, str]:
    significant = sum(r.significant for r in rows)
    return (f"A → B: {significant} significant change(s) in {len(rows)} cells",
            f"significant: p < {alpha:g} (U: Mann–Whitney, t: Welch) and |ratio − 1| ≥ {min_change:.0%}; "
            "n = samples A/B")


def render_compare_table(rows: Sequence[CompareRow], *, title: str | None = None,
                         min_change: float = cmp.MIN_CHANGE, alpha: float = cmp.ALPHA) -> Table:
    """A rich table: one line per cell; per metric the medians of A and B, ratio, p, verdict."""
    metrics = _metrics_of(rows)
    head, caption = _title(rows, min_change, alpha)
    table = Table(title=title or head, caption=caption)
    verdict_cols = {_SHORT.get(m, m) for m in metrics}
    for i, name in enumerate(_header(metrics)):
        left = i == 0 or name == "notes" or name in verdict_cols
        table.add_column(name, justify="left" if left else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(f"[{_STYLE[v]}]{t}[/]" if v in _STYLE else t for t, v in _cells(row, metrics)))
    return table


def render_text(rows: Sequence[CompareRow], *, min_change: float = cmp.MIN_CHANGE,
                alpha: float = cmp.ALPHA) -> str:
    """The same table as plain text: columns padded to their widest value, no truncation."""
    metrics = _metrics_of(rows)
    head, caption = _title(rows, min_change, alpha)
    lines = [_header(metrics), *([t for t, _ in _cells(row, metrics)] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = {i for i, name in enumerate(lines[0]) if i and name != "notes"}

    def fmt(line: list[str]) -> str:
        cells = [v.rjust(w) if i in numeric and v and (v[0].isdigit() or v[0] in "×–")
                 else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([head, fmt(lines[0]), rule, *(fmt(line) for line in lines[1:]), caption])


def render_gate(result: GateResult, fail_on: str) -> str:
    lines = [f"warning: {reason}" for reason in result.reasons]
    if result.status == "refused":
        lines.append("REFUSED (--strict): not comparable; exit 2")
    elif fail_on == "never":
        lines.append(f"{result.judged} comparison(s) judged, {result.not_judged} with too few samples")
    elif result.status == "fail":
        lines.append(f"FAIL: {len(result.failing)} regression(s) (--fail-on {fail_on}):")
        lines += [f"  {item}" for item in result.failing]
    else:
        lines.append(f"PASS: no cell {'changed' if fail_on == 'change' else 'worse'} "
                     f"({result.judged} comparison(s) judged, {result.not_judged} with too few samples)")
    return "\n".join(lines)


def run(a_path: Path, b_path: Path, *, metrics: Sequence[str] | None = None, min_change: str = "5%",
        alpha: float = cmp.ALPHA, fail_on: str = "never", json_out: Path | None = None,
        strict: bool = False, out: TextIO | None = None, console: Console | None = None) -> int:
    """`stackbench compare`: print the rows and the gate's outcome; return the exit status."""
    from loadtests.results import load

    out = out or sys.stdout
    if fail_on not in ("worse", "change", "never"):
        raise ValueError(f"--fail-on must be worse, change or never (not {fail_on!r})")
    names = [cmp.metric_name(m) for m in (metrics or cmp.DEFAULT_METRICS)]
    change = cmp.parse_change(min_change)
    a, b = load(a_path), load(b_path)
    rows = cmp.compare(a, b, metrics=names, min_change=change, alpha=alpha)
    result = cmp.gate(rows, fail_on=fail_on, fingerprint_diff=cmp.fingerprint_differences(a, b),  # type: ignore[arg-type]
                      strict=strict, control=cmp.control_stacks(a) & cmp.control_stacks(b))
    if out.isatty():
        table = render_compare_table(rows, min_change=change, alpha=alpha)
        shown = console or Console(file=out)
        shown.width = max(shown.width, shown.measure(table).maximum)
        shown.print(table)
    else:
        print(render_text(rows, min_change=change, alpha=alpha), file=out)
    print(render_gate(result, fail_on), file=out)
    if json_out is not None:
        doc = cmp.diff_document(a, b, rows, result, metrics=names, min_change=change, alpha=alpha,
                                fail_on=fail_on)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    return result.exit_code
