"""The closed-loop scenario sections (one per registry scenario of the closed family) and the
open-loop latency section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import scenarios
from loadtests.report import charts
from loadtests.report.document import Section, Table
from loadtests.report.values import (
    cells_for,
    extra,
    flags,
    fmt,
    last_sample,
    median,
    median_ci,
    stack_label,
    summary,
)


def driver_ceiling(doc: dict[str, Any]) -> float | None:
    return max((float(c.get("rps") or 0.0) for c in doc.get("driver_ceilings", [])), default=None)


def _is_floor(doc: dict[str, Any], stack: str) -> bool:
    return doc.get("stacks", {}).get(stack, {}).get("kind") == "floor"


def _row(doc: dict[str, Any], c: dict[str, Any], counts_writes: bool) -> list[str]:
    note = flags(c)
    status = c.get("status", "ok")
    if status != "ok":
        note = f"**{status}**: {c.get('error') or ''} " + note
    writes: list[str] = []
    if counts_writes:
        w = last_sample(c).get("writes") or {}
        writes = [f"{fmt(w.get('acknowledged'))} / {fmt(w.get('stored'))}" if c.get("samples") else ""]
    return [stack_label(doc, c["stack"]), str(c.get("concurrency", "")),
            median_ci(c, "rps"), median_ci(c, "p50_ms", 2), median_ci(c, "p99_ms", 2),
            fmt(summary(c, "errors").get("median")), median_ci(c, "server_cpu_pct"),
            median_ci(c, "server_peak_rss_bytes", 0, 2**20), median_ci(c, "client_cpu_pct"), *writes, note]


def scenario_section(doc: dict[str, Any], charts_dir: Path, scenario: scenarios.Scenario) -> Section | None:
    # wrk, or locust where wrk was missing (settings.closed_loop_driver says which)
    driver = doc.get("settings", {}).get("closed_loop_driver", "wrk")
    cells = cells_for(doc, scenario.name, driver)
    if not cells:
        return None
    name = scenario.name
    cells.sort(key=lambda c: -(median(c, "rps") or 0))
    s = Section(scenario.title)
    header = ["stack (workers)", "conns", "req/s median [95% CI]", "p50 ms", "p99 ms", "errors",
              "server CPU %", "server RSS MiB", "client CPU %",
              *(["writes acked / stored"] if scenario.counts_writes else []), "flags"]
    s.blocks.append(Table(header, [_row(doc, c, scenario.counts_writes) for c in cells]))
    ok = [c for c in cells if c.get("status") == "ok" and median(c, "rps")]
    by_conc: dict[int, list[dict[str, Any]]] = {}
    for c in ok:
        by_conc.setdefault(int(c.get("concurrency") or 0), []).append(c)
    if by_conc:
        main_conc = max(by_conc, key=lambda k: len(by_conc[k]))
        chosen = by_conc[main_conc]
        labels = [stack_label(doc, c["stack"]) for c in chosen]
        values = [median(c, "rps") or 0.0 for c in chosen]
        errors = [tuple(summary(c, "rps").get("ci95") or (v, v)) for c, v in zip(chosen, values, strict=True)]
        floor = [_is_floor(doc, c["stack"]) for c in chosen]
        s.blocks.append(charts.bar_chart(
            charts_dir / f"{name}-throughput.png",
            f"{name}: throughput at {main_conc} connections (median, 95% CI; red = client-bound)",
            labels, values, errors, "requests per second",  # type: ignore[arg-type]
            ["client-bound" in c.get("flags", []) for c in chosen], floor))
        lat = {lbl: (last_sample(c).get("latency_ms") or {}) for lbl, c in zip(labels, chosen, strict=True)}
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
            series.setdefault(c["stack"], []).append((float(c["concurrency"]), median(c, "rps") or 0.0))
        s.blocks.append(charts.line_chart(
            charts_dir / f"{name}-concurrency.png", f"{name}: throughput against connections", series,
            "connections (log)", "requests per second", logx=True,
            floors=[k for k in series if _is_floor(doc, k)]))
    if ceiling := driver_ceiling(doc):
        s.blocks.append(f"Driver ceiling in this run: {fmt(ceiling)} req/s (the load generator against the fastest floor); "
                        "a cell above a third of it, or with the client CPU saturated, is flagged client-bound.")
    return s


def scenario_sections(doc: dict[str, Any], charts_dir: Path) -> list[Section]:
    found = (scenario_section(doc, charts_dir, sc) for sc in scenarios.closed_loop())
    return [s for s in found if s is not None]


def open_loop_section(doc: dict[str, Any], charts_dir: Path) -> Section | None:
    cells = [c for c in doc.get("cells", []) if c.get("mode") == "open"]
    if not cells:
        return None
    rows = []
    for c in sorted(cells, key=lambda c: (c["scenario"], c["stack"], c.get("target_rate") or 0)):
        sample = last_sample(c)
        lat = sample.get("latency_ms") or {}
        rows.append([c["stack"], c["scenario"], fmt(c.get("target_rate")), fmt(sample.get("rps")),
                     fmt(lat.get("p50"), 2), fmt(lat.get("p99"), 2), fmt(lat.get("max"), 1),
                     str(extra(sample).get("fraction_of_peak", "")), flags(c)])
    return Section("Latency at a fixed offered rate (open loop, no coordinated omission)", blocks=[
        "Each request has a planned send time at the target rate and its latency counts from that plan, "
        "so a stalled server cannot hide its queue (wrk's closed loop can). Rates are fractions of the "
        "stack's own closed-loop peak from the same run; `sustainable` rows are the highest rate found "
        "with p99 under the latency objective.",
        Table(["stack", "scenario", "target req/s", "achieved req/s", "p50 ms", "p99 ms", "max ms",
               "fraction of peak", "flags"], rows),
    ])
