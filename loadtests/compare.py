"""Compare two results documents cell by cell (``stackbench compare A.json B.json``).

For every cell id in both runs, its per-sample throughput (``rps``) and tail latency
(``latency_ms.p99``) are compared: the ratio of the medians (B / A), a two-sided Mann–Whitney U
p-value (n ≥ 4 a side) and a Welch t p-value (n ≥ 2 a side) from `loadtests.stats`. As asv does,
a change is called only when it is both significant and large enough: p < ``alpha`` (the
Mann–Whitney p where it exists, else Welch's) AND |ratio − 1| ≥ ``min_change`` (5% by default).
With a single sample on either side nothing is judged ("n too small"): one fresh server start and
one load run is one sample (FIELD-NOTES), and one sample has no spread to test against.

Cells found in one document only are listed as such; a cell that did not run ("failed",
"refused", "skipped") is listed with its status and not judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table

from loadtests import stats

MIN_CHANGE = 0.05
ALPHA = 0.05

Verdict = Literal["better", "worse", "no change", "n too small", "no data"]
Presence = Literal["both", "only A", "only B"]


@dataclass(frozen=True)
class MetricChange:
    """One metric of one cell, A against B."""

    metric: str  # "rps" (higher is better) | "p99_ms" (lower is better)
    a: tuple[float, ...]
    b: tuple[float, ...]
    median_a: float | None
    median_b: float | None
    ratio: float | None  # median_b / median_a
    mann_whitney_p: float | None
    welch_p: float | None
    p: float | None  # the p-value the verdict used (Mann–Whitney where defined, else Welch)
    test: str | None  # "mann-whitney" | "welch" | None
    significant: bool
    verdict: Verdict

    @property
    def n_a(self) -> int:
        return len(self.a)

    @property
    def n_b(self) -> int:
        return len(self.b)


@dataclass(frozen=True)
class CompareRow:
    cell_id: str
    presence: Presence
    status_a: str | None
    status_b: str | None
    rps: MetricChange | None = None
    p99: MetricChange | None = None
    flags_a: tuple[str, ...] = ()
    flags_b: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def significant(self) -> bool:
        return any(m is not None and m.significant for m in (self.rps, self.p99))

    @property
    def verdict(self) -> str:
        """One word for the cell: the throughput verdict, else the latency one."""
        if self.presence != "both":
            return self.presence
        for metric in (self.rps, self.p99):
            if metric is not None and metric.significant:
                return metric.verdict
        if self.rps is not None:
            return self.rps.verdict
        return "no data"


def _values(cell: Mapping[str, Any], key: str) -> tuple[float, ...]:
    values = (stats.sample_value(key, s) for s in cell.get("samples") or [])
    return tuple(v for v in values if v is not None and math.isfinite(v))


def compare_metric(metric: str, a: Sequence[float], b: Sequence[float], *,
                   higher_is_better: bool, min_change: float = MIN_CHANGE,
                   alpha: float = ALPHA) -> MetricChange:
    """Judge one metric's samples: ratio of medians, both tests, the verdict."""
    a, b = tuple(float(x) for x in a), tuple(float(x) for x in b)
    median_a = stats.median(a) if a else None
    median_b = stats.median(b) if b else None
    ratio = (median_b / median_a) if median_a and median_b is not None else None
    mw = stats.mann_whitney_p(a, b)
    welch = stats.welch_p(a, b)
    if mw is not None:
        p, test = mw, "mann-whitney"
    elif welch is not None and not math.isnan(welch):
        p, test = welch, "welch"
    else:
        p, test = None, None
    verdict: Verdict
    significant = False
    if not a or not b or ratio is None:
        verdict = "no data"
    elif len(a) < 2 or len(b) < 2 or p is None:
        verdict = "n too small"
    else:
        significant = p < alpha and abs(ratio - 1.0) >= min_change
        if not significant:
            verdict = "no change"
        else:
            improved = ratio > 1.0 if higher_is_better else ratio < 1.0
            verdict = "better" if improved else "worse"
    return MetricChange(metric, a, b, median_a, median_b, ratio, mw, welch, p, test,
                        significant, verdict)


def compare(a: Mapping[str, Any], b: Mapping[str, Any], *, min_change: float = MIN_CHANGE,
            alpha: float = ALPHA) -> list[CompareRow]:
    """Rows for every cell of ``a`` and ``b`` (two results documents): cells in both first, in
    A's order, then those only in A, then those only in B."""
    cells_a = {c["id"]: c for c in a.get("cells") or []}
    cells_b = {c["id"]: c for c in b.get("cells") or []}
    rows: list[CompareRow] = []
    for cid, ca in cells_a.items():
        cb = cells_b.get(cid)
        if cb is None:
            continue
        notes: list[str] = []
        for side, cell in (("A", ca), ("B", cb)):
            if cell.get("status") != "ok":
                notes.append(f"{side} {cell.get('status')}: {cell.get('error') or ''}".strip())
            if "client-bound" in (cell.get("flags") or []):
                notes.append(f"{side} client-bound")
        rows.append(CompareRow(
            cell_id=cid, presence="both", status_a=ca.get("status"), status_b=cb.get("status"),
            rps=compare_metric("rps", _values(ca, "rps"), _values(cb, "rps"),
                               higher_is_better=True, min_change=min_change, alpha=alpha),
            p99=compare_metric("p99_ms", _values(ca, "p99_ms"), _values(cb, "p99_ms"),
                               higher_is_better=False, min_change=min_change, alpha=alpha),
            flags_a=tuple(ca.get("flags") or ()), flags_b=tuple(cb.get("flags") or ()),
            notes=tuple(notes),
        ))
    for cid, ca in cells_a.items():
        if cid not in cells_b:
            rows.append(CompareRow(cid, "only A", ca.get("status"), None,
                                   flags_a=tuple(ca.get("flags") or ())))
    for cid, cb in cells_b.items():
        if cid not in cells_a:
            rows.append(CompareRow(cid, "only B", None, cb.get("status"),
                                   flags_b=tuple(cb.get("flags") or ())))
    return rows


# -- rendering ---------------------------------------------------------------------------------

_STYLE = {"better": "green", "worse": "red", "no change": "dim", "n too small": "yellow",
          "no data": "dim", "only A": "magenta", "only B": "magenta"}


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(m: MetricChange | None) -> str:
    return "–" if m is None or m.ratio is None else f"×{m.ratio:.3f}"


def _p(m: MetricChange | None) -> str:
    if m is None or m.p is None:
        return "–"
    mark = "U" if m.test == "mann-whitney" else "t"
    return f"{m.p:.3g} ({mark})"


def _verdict(m: MetricChange | None) -> str:
    if m is None:
        return ""
    return f"[{_STYLE[m.verdict]}]{m.verdict}[/]"


def render_compare_table(rows: Sequence[CompareRow], *, title: str | None = None) -> Table:
    """A rich table: one line per cell, rps and p99 medians of A and B, ratio, p, verdict."""
    significant = sum(r.significant for r in rows)
    table = Table(title=title or f"A → B: {significant} significant change(s) in {len(rows)} cells",
                  caption=f"significant: p < {ALPHA:g} (U: Mann–Whitney, t: Welch) and "
                          f"|ratio − 1| ≥ {MIN_CHANGE:.0%}; n = samples A/B")
    for name, justify in (("cell", "left"), ("n", "right"), ("rps A", "right"),
                          ("rps B", "right"), ("ratio", "right"), ("p", "right"),
                          ("rps", "left"), ("p99 A ms", "right"), ("p99 B ms", "right"),
                          ("ratio", "right"), ("p", "right"), ("p99", "left"), ("notes", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        if row.presence != "both":
            status = row.status_a if row.presence == "only A" else row.status_b
            table.add_row(row.cell_id, "", "", "", "", "", f"[magenta]{row.presence}[/]",
                          "", "", "", "", "", status or "")
            continue
        rps, p99 = row.rps, row.p99
        n = f"{rps.n_a}/{rps.n_b}" if rps else ""
        table.add_row(
            row.cell_id, n,
            _num(rps.median_a if rps else None), _num(rps.median_b if rps else None),
            _ratio(rps), _p(rps), _verdict(rps),
            _num(p99.median_a if p99 else None, 2), _num(p99.median_b if p99 else None, 2),
            _ratio(p99), _p(p99), _verdict(p99),
            "; ".join(row.notes),
        )
    return table
