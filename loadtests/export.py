"""Results other tools read (``stackbench export results.json --format csv|bmf``).

- ``csv``: one row per cell (``--samples``: one per sample) with the run, the cell's coordinates,
  its status and flags, and per metric the median, min, max and coefficient of variation over
  the samples. Spreadsheets, pandas and `csvkit` read it as is.
- ``bmf``: Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format/):
  ``{benchmark: {measure: {"value", "lower_value", "upper_value"}}}``, one benchmark per cell that
  ran ("ok"), value = the median over samples and the bounds = the smallest/largest sample, so
  `bencher run --adapter json` keeps the history and its thresholds raise the alerts.

Both read the document through the typed model (`loadtests.document`), one accessor per metric.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from loadtests import stats
from loadtests.cell import Cell
from loadtests.document import Run

CSV_METRICS = ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "error_rate", "cpu_ms_per_request",
               "server_cpu_pct", "memory", "client_cpu_pct")
# BMF measure slugs (Bencher creates a measure the first time it sees its slug).
BMF_MEASURES = {"rps": "throughput-rps", "p50_ms": "latency-p50-ms", "p99_ms": "latency-p99-ms",
                "cpu_ms_per_request": "cpu-ms-per-request", "memory": "memory-bytes",
                "error_rate": "error-rate"}


def _run_columns(run: Run) -> dict[str, Any]:
    git = run.environment.git
    return {"run_id": run.run_id, "profile": run.profile, "started_at": run.started_at,
            "commit": git.get("commit"), "cpu_model": run.environment.machine.cpu_model,
            "cores": run.environment.machine.cores}


def _cell_columns(cell: Cell) -> dict[str, Any]:
    return {"cell": cell.id, "stack": cell.stack, "scenario": cell.scenario, "driver": cell.driver,
            "mode": cell.mode, "concurrency": cell.concurrency, "target_rate": cell.target_rate,
            "status": cell.status, "flags": " ".join(cell.flags), "n": len(cell.samples)}


def csv_rows(run: Run, *, samples: bool = False,
             metrics: Sequence[str] = CSV_METRICS) -> list[dict[str, Any]]:
    """The rows `to_csv` writes (dicts, in column order)."""
    rows: list[dict[str, Any]] = []
    for cell in run.cells:
        base = {**_run_columns(run), **_cell_columns(cell)}
        if samples:
            for i, sample in enumerate(cell.samples):
                rows.append({**base, "sample": i, **{m: sample.metric(m) for m in metrics}})
            continue
        row = dict(base)
        for m in metrics:
            values = cell.values(m)
            row[f"{m}_median"] = stats.median(values) if values else None
            row[f"{m}_min"] = min(values) if values else None
            row[f"{m}_max"] = max(values) if values else None
            row[f"{m}_cv"] = stats.cv(values) if values else None
        rows.append(row)
    return rows


def to_csv(run: Run, *, samples: bool = False) -> str:
    rows = csv_rows(run, samples=samples)
    out = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def to_bmf(run: Run) -> dict[str, dict[str, dict[str, float]]]:
    """Bencher Metric Format: every cell that ran, every measure it has a value for."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for cell in run.cells:
        if not cell.ok:
            continue
        measures: dict[str, dict[str, float]] = {}
        for metric, slug in BMF_MEASURES.items():
            values = cell.values(metric)
            if values:
                measures[slug] = {"value": stats.median(values), "lower_value": min(values),
                                  "upper_value": max(values)}
        if measures:
            out[cell.id] = measures
    return out


def export(run: Run, fmt: str, *, samples: bool = False) -> str:
    """The document as `fmt` ("csv" or "bmf"), as text."""
    if fmt == "csv":
        return to_csv(run, samples=samples)
    if fmt == "bmf":
        return json.dumps(to_bmf(run), indent=1)
    raise ValueError(f"unknown format {fmt!r}: csv or bmf")
