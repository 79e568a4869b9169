"""The history of runs (``stackbench report --index reports/runs``): one self-contained HTML page
listing every run found under a directory (date, run id, commit, machine, profile, cells) and a
trend chart per featured cell: the median throughput (and p99) of that cell in each run that has
it, in time order, with the runs' min–max band.

A run is any ``*/results.json`` (or ``*/*/results.json``) below the directory; documents that do
not load are listed with the reason instead of being skipped silently. Charts are inline SVG, so
the page needs nothing beside it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests import results, stats
from loadtests.profiles import PROFILES

# Cells charted when present: the CI gate's matrix and the featured stacks at their primary level.
FEATURED_STACKS = ("flask-gunicorn-gthread", "rest-uvicorn", "graphql-uvicorn", "raw-asgi-granian-asgi")
FEATURED_SCENARIOS = PROFILES["ci"].scenarios  # the CI gate's matrix
MAX_CHARTS = 24


@dataclass
class RunEntry:
    path: Path
    doc: dict[str, Any] | None
    error: str | None = None
    medians: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)

    @property
    def started(self) -> str:
        return str((self.doc or {}).get("started_at") or "")


def find_runs(root: Path) -> list[RunEntry]:
    paths = sorted({*root.glob("*/results.json"), *root.glob("*/*/results.json")})
    entries = []
    for path in paths:
        try:
            doc = results.load(path, strict=False)
        except (OSError, ValueError) as exc:
            entries.append(RunEntry(path, None, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        entry = RunEntry(path, doc)
        for cell in doc.get("cells") or []:
            if cell.get("status") != "ok":
                continue
            for metric in ("rps", "p99_ms"):
                values = [v for v in (stats.sample_value(metric, s) for s in cell.get("samples") or [])
                          if v is not None]
                if values:
                    entry.medians.setdefault(cell["id"], {})[metric] = (
                        stats.median(values), min(values), max(values))
        entries.append(entry)
    entries.sort(key=lambda e: (e.started, str(e.path)))
    return entries


def featured_cells(entries: Sequence[RunEntry]) -> list[str]:
    """Closed-loop cells of the featured stacks and scenarios seen in at least two runs (then any
    cell in two runs, when none of those is), most frequent first."""
    counts: dict[str, int] = {}
    for entry in entries:
        for cid in entry.medians:
            counts[cid] = counts.get(cid, 0) + 1
    repeated = [cid for cid, n in counts.items() if n >= 2]
    featured = [cid for cid in repeated if cid.split("/")[0] in FEATURED_STACKS
                and cid.split("/")[1] in FEATURED_SCENARIOS and "/wrk/" in cid]
    chosen = featured or repeated
    return sorted(chosen, key=lambda c: (-counts[c], c))[:MAX_CHARTS]


def _svg(points: Sequence[tuple[float, float, float]], labels: Sequence[str], unit: str) -> str:
    """A small line chart of (median, low, high) per run, with a band."""
    width, height, pad = 420, 150, 34
    values = [v for p in points for v in p]
    top, bottom = max(values), min(0.0, min(values))
    span = (top - bottom) or 1.0
    step = (width - 2 * pad) / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * step, height - pad - (v - bottom) / span * (height - 2 * pad)

    band = [xy(i, p[2]) for i, p in enumerate(points)] + [xy(i, p[1]) for i, p in reversed(list(enumerate(points)))]
    line = [xy(i, p[0]) for i, p in enumerate(points)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in band)}" fill="#cfe0f5"/>',
             f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in line)}" fill="none" stroke="#1f5fa8" stroke-width="2"/>']
    for (x, y), p, label in zip(line, points, labels, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f5fa8"><title>{html.escape(label)}: '
                     f'{p[0]:,.1f} {unit} (min {p[1]:,.1f}, max {p[2]:,.1f})</title></circle>')
    parts.append(f'<text x="{pad}" y="14" font-size="11">{top:,.0f} {html.escape(unit)}</text>')
    parts.append(f'<text x="{pad}" y="{height - 8}" font-size="11">{bottom:,.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _row(entry: RunEntry, root: Path) -> str:
    if entry.doc is None:
        return (f"<tr><td colspan=7>{html.escape(str(entry.path.relative_to(root)))}: "
                f"not readable ({html.escape(entry.error or '')})</td></tr>")
    doc = entry.doc
    env = doc.get("environment") or {}
    machine = env.get("machine") or {}
    git = env.get("git") or {}
    commit = str(git.get("commit") or "")[:10] + (" (dirty)" if git.get("dirty") else "")
    cells = doc.get("cells") or []
    ok = sum(1 for c in cells if c.get("status") == "ok")
    report = entry.path.parent / "report.html"
    run_id = html.escape(str(doc.get("run_id")))
    link = f'<a href="{html.escape(str(report.relative_to(root)))}">{run_id}</a>' if report.exists() else run_id
    return ("<tr>" + "".join(f"<td>{v}</td>" for v in (
        html.escape(entry.started), link, html.escape(commit),
        html.escape(f"{machine.get('cpu_model', '?')} × {machine.get('cores', '?')}"),
        html.escape(str(doc.get("profile"))), f"{ok}/{len(cells)}",
        html.escape(str(env.get("python", ""))))) + "</tr>")


def build_index(root: Path) -> str:
    entries = find_runs(root)
    readable = [e for e in entries if e.doc is not None]
    rows = "\n".join(_row(e, root) for e in entries)
    charts = []
    for cid in featured_cells(readable):
        having = [e for e in readable if cid in e.medians]
        labels = [f"{e.started} {e.doc.get('run_id') if e.doc else ''}" for e in having]
        block = [f"<h3>{html.escape(cid)}</h3>"]
        for metric, unit in (("rps", "req/s"), ("p99_ms", "ms p99")):
            points = [e.medians[cid][metric] for e in having if metric in e.medians[cid]]
            if len(points) >= 2:
                block.append(_svg(points, labels[:len(points)], unit))
        charts.append('<div class="chart">' + "".join(block) + "</div>")
    note = ("" if charts else "<p>No cell appears in two runs yet: trends need at least two runs "
            "of the same cells.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stackbench runs</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}.chart{{display:inline-block;margin:0 1em 1em 0;
vertical-align:top}}h3{{font-size:13px;margin:0}}</style></head><body>
<h1>stackbench: {len(entries)} run(s) under {html.escape(str(root))}</h1>
<table><thead><tr><th>started</th><th>run</th><th>commit</th><th>machine</th><th>profile</th>
<th>cells ok</th><th>python</th></tr></thead><tbody>
{rows}
</tbody></table>
<h2>Trends (median per run; band: min–max of its samples)</h2>
{note}{"".join(charts)}
<p>Numbers from different machines or profiles are not comparable: read the machine and profile
columns before a trend.</p>
</body></html>
"""


def write_index(root: Path, out: Path | None = None) -> Path:
    path = out or root / "index.html"
    path.write_text(build_index(root))
    return path
