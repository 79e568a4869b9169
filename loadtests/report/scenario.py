"""The closed-loop scenario sections (one per registry scenario of the closed family) and the
open-loop latency section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import scenarios
from loadtests.cell import Cell
from loadtests.document import Run
from loadtests.report import charts
from loadtests.report.document import Section, Table
from loadtests.report.values import (
    cells_for,
    ci95,
    closed_driver,
    driver_ceiling,
    flags,
    fmt,
    is_floor,
    last,
    median,
    median_ci,
    run_of,
    stack_label,
)


def _writes(cell: Cell) -> str:
    sample = last(cell)
    w = sample.writes if sample is not None else None
    return f"{fmt(w.acknowledged)} / {fmt(w.stored)}" if w is not None else ""


def _row(run: Run, c: Cell, counts_writes: bool) -> list[str]:
    note = flags(c)
    if c.status != "ok":
        note = f"**{c.status}**: {c.error or ''} " + note
    return [stack_label(run, c.stack), str(c.concurrency if c.concurrency is not None else ""),
            median_ci(c, "rps"), median_ci(c, "p50_ms", 2), median_ci(c, "p99_ms", 2),
            fmt(median(c, "errors")), median_ci(c, "server_cpu_pct"),
            median_ci(c, "server_peak_rss_bytes", 0, 2**20), median_ci(c, "client_cpu_pct"),
            *([_writes(c)] if counts_writes else []), note]


def scenario_section(run: Run, charts_dir: Path, scenario: scenarios.Scenario) -> Section | None:
    cells = cells_for(run, scenario.name, closed_driver(run))
    if not cells:
        return None
    name = scenario.name
    cells.sort(key=lambda c: -(median(c, "rps") or 0))
    s = Section(scenario.title)
    header = ["stack (workers)", "conns", "req/s median [95% CI]", "p50 ms", "p99 ms", "errors",
              "server CPU %", "server RSS MiB", "client CPU %",
              *(["writes acked / stored"] if scenario.counts_writes else []), "flags"]
    s.blocks.append(Table(header, [_row(run, c, scenario.counts_writes) for c in cells]))
    ok = [c for c in cells if c.ok and median(c, "rps")]
    by_conc: dict[int, list[Cell]] = {}
    for c in ok:
        by_conc.setdefault(int(c.concurrency or 0), []).append(c)
    if by_conc:
        main_conc = max(by_conc, key=lambda k: len(by_conc[k]))
        chosen = by_conc[main_conc]
        labels = [stack_label(run, c.stack) for c in chosen]
        values = [median(c, "rps") or 0.0 for c in chosen]
        errors = [ci95(c, "rps") or (v, v) for c, v in zip(chosen, values, strict=True)]
        floor = [is_floor(run, c.stack) for c in chosen]
        s.blocks.append(charts.bar_chart(
            charts_dir / f"{name}-throughput.png",
            f"{name}: throughput at {main_conc} connections (median, 95% CI; red = client-bound)",
            labels, values, errors, "requests per second", ["client-bound" in c.flags for c in chosen], floor))
        lat = {lbl: _latency(c) for lbl, c in zip(labels, chosen, strict=True)}
        s.blocks.append(charts.latency_chart(
            charts_dir / f"{name}-latency.png", f"{name}: latency percentiles at {main_conc} connections "
            "(last sample; floors dotted)", lat, [lb for lb, f in zip(labels, floor, strict=True) if f]))
        s.blocks.append(charts.resource_chart(
            charts_dir / f"{name}-resources.png", f"{name}: server CPU and memory", labels,
            [median(c, "server_cpu_pct") or 0 for c in chosen],
            [(median(c, "server_peak_rss_bytes") or 0) / 2**20 for c in chosen]))
    if len(by_conc) > 1:
        series: dict[str, list[tuple[float, float]]] = {}
        for c in ok:
            series.setdefault(c.stack, []).append((float(c.concurrency or 0), median(c, "rps") or 0.0))
        s.blocks.append(charts.line_chart(
            charts_dir / f"{name}-concurrency.png", f"{name}: throughput against connections", series,
            "connections (log)", "requests per second", logx=True, floors=[k for k in series if is_floor(run, k)]))
    if ceiling := driver_ceiling(run):
        s.blocks.append(f"Driver ceiling in this run: {fmt(ceiling)} req/s (the load generator against the fastest floor); "
                        "a cell above a third of it, or with the client CPU saturated, is flagged client-bound.")
    return s


def _latency(cell: Cell) -> dict[str, float]:
    sample = last(cell)
    if sample is None:
        return {}
    return {k: float(v) for k, v in sample.latency_ms.model_dump().items() if v is not None}


def scenario_sections(doc: dict[str, Any], charts_dir: Path) -> list[Section]:
    run = run_of(doc)
    found = (scenario_section(run, charts_dir, sc) for sc in scenarios.closed_loop())
    return [s for s in found if s is not None]


def open_loop_section(doc: dict[str, Any], charts_dir: Path) -> Section | None:
    run = run_of(doc)
    cells = [c for c in run.cells if c.mode == "open"]
    if not cells:
        return None
    rows = []
    for c in sorted(cells, key=lambda c: (c.scenario, c.stack, c.target_rate or 0)):
        sample = last(c)
        lat = _latency(c)
        rows.append([c.stack, c.scenario, fmt(c.target_rate), fmt(sample.rps if sample else None),
                     fmt(lat.get("p50"), 2), fmt(lat.get("p99"), 2), fmt(lat.get("max"), 1),
                     str(c.extra_value("fraction_of_peak") or ""), flags(c)])
    timeouts = sorted({float(t) for c in cells for s in c.samples
                       if isinstance(t := s.extra.get("timeout_s"), int | float)})
    timeout_text = (f" A request counts as timed out (and its cell is excluded from verdicts) only when "
                    f"it is unanswered {' or '.join(f'{t:g}' for t in timeouts)} s after its send; "
                    f"slower answers are in the percentiles." if timeouts else "")
    return Section("Latency at a fixed offered rate (open loop, no coordinated omission)", blocks=[
        "Each request has a planned send time at the target rate and its latency counts from that plan, "
        "so a stalled server cannot hide its queue (wrk's closed loop can). Rates are fractions of the "
        "stack's own closed-loop peak from the same run; `sustainable` rows are the highest rate found "
        "with p99 under the latency objective." + timeout_text,
        Table(["stack", "scenario", "target req/s", "achieved req/s", "p50 ms", "p99 ms", "max ms",
               "fraction of peak", "flags"], rows),
    ])
