"""The latency sweep section (`doc["sweep"]`, written by loadtests/sweep.py): every stack at each
injected database round trip with its spread, the ratios FastAPI ÷ Flask per round trip and the
crossover table (`loadtests.report.crossover`), a chart of throughput against the round trip;
then the open loop at equal offered load and the upstream time-to-first-token sweep of chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests import rules, scenarios, stats
from loadtests.cell import Cell
from loadtests.report import ceiling, charts
from loadtests.report.crossover import NOT_ENOUGH, Grid, crossover, grid, ratio_rows, usable
from loadtests.report.document import Section, Table
from loadtests.report.values import fmt


def spread(cell: Cell | None, metric: str, digits: int = 0, scale: float = 1.0) -> str:
    """median [95% CI] and n of a metric; CV where n ≥ 2."""
    values = cell.values(metric) if cell is not None else []
    s = stats.summarize(values)
    if s is None:
        return "—"
    text = fmt(s["median"] / scale, digits)
    if s["ci95"]:
        text += f" [{fmt(s['ci95'][0] / scale, digits)}–{fmt(s['ci95'][1] / scale, digits)}]"
    return text + f" n={s['n']}" + (f", CV {s['cv']:.0%}" if s["cv"] is not None else "")


def _sizing(raw: dict[str, Any]) -> str:
    setup = raw.get("setup") or {}
    size = setup.get("sizing") or {}
    threads = setup.get("threads_per_worker")
    parts = [f"{setup.get('processes', '?')} proc"]
    if threads:
        parts.append(f"{threads} threads/worker")
    if size.get("pool_size") is not None:
        parts.append(f"pool {size['pool_size']}+{size.get('pool_max_overflow', 0)}/worker")
    return ", ".join(parts) + (" (capped)" if size.get("capped") else "")


def _extra_peak(cell: Cell, key: str, field: str) -> str:
    values = [s.extra.get(key, {}).get(field) for s in cell.samples if isinstance(s.extra.get(key), dict)]
    nums = [v for v in values if isinstance(v, int | float)]
    return fmt(max(nums)) if nums else "—"


def _proxy_us(cell: Cell) -> str:
    values = [s.extra.get("proxy", {}).get("cpu_us_per_request") for s in cell.samples]
    nums = [float(v) for v in values if isinstance(v, int | float)]
    return fmt(stats.median(nums)) if nums else "—"


def detail_table(cells: Grid, raws: dict[str, dict[str, Any]], metric_cols: Sequence[tuple[str, str, int, float]]) -> Table:
    rows = []
    for (config, delay), cell in sorted(cells.items(), key=lambda kv: (kv[0][0].label, kv[0][1])):
        ok, why = usable(cell)
        cap = ceiling.reached(raws[cell.id], cell)
        rows.append([config.label, f"{delay:g}", _sizing(raws[cell.id]),
                     *(spread(cell, m, d, sc) for _h, m, d, sc in metric_cols),
                     f"{_extra_peak(cell, 'db_connections', 'peak_total')} ({_extra_peak(cell, 'db_connections', 'peak_active')})",
                     _proxy_us(cell), _ceiling_share(raws[cell.id], cell), ", ".join([*cell.flags, *([cap.flag] if cap else []), *([why] if not ok else [])])])
    return Table(["stack", "delay ms", "processes, threads, pool", *(h for h, *_ in metric_cols),
                  "DB conns peak (active)", "proxy CPU µs/req", "DB ceiling req/s (served)", "flags"], rows)


def _ceiling_share(raw: dict[str, Any], cell: Cell) -> str:
    """The lowest database ceiling and the share of it the cell served, so a cell just under the
    `ceiling.NEAR` flag still shows how close it ran."""
    lowest = ceiling.served(raw, cell)
    if lowest is None:
        return "—"
    cap, share = lowest
    return f"{fmt(cap.rps)} {cap.kind} ({share:.0%})"


CEILING_NOTE = (
    f"*pool-capped*: the cell served within {1 - ceiling.NEAR:.0%} of connections in service ÷ (round trips "
    "per request × the injected delay), the most any framework can serve with that pool at that round trip "
    "(the round trips are the delay proxy's count in that cell); *lock-capped*: within "
    f"{1 - ceiling.NEAR:.0%} of users ÷ ({ceiling.LOCK_ROUND_TRIPS} round trips × the delay), the per-user "
    "feed lock a review holds to its commit. A ratio between two capped cells measures the sizing both were "
    "given (`loadtests/sweep_settings.py`), not async against threads.")
THROUGHPUT_COLS = (("req/s median [95% CI] n, CV", "rps", 0, 1.0), ("p99 ms", "p99_ms", 1, 1.0),
                   ("CPU ms/req", "cpu_ms_per_request", 2, 1.0), ("memory MiB (PSS, else peak RSS)", "memory", 0, 2**20))
OPEN_COLS = (("achieved req/s", "achieved_rps", 0, 1.0), ("p50 ms", "p50_ms", 2, 1.0),
             ("p99 ms", "p99_ms", 2, 1.0), ("memory MiB", "memory", 0, 2**20))


def scenario_blocks(section: dict[str, Any], scenario: str, charts_dir: Path) -> tuple[list[str | Table | Path], list[list[str]]]:
    """One scenario's tables and chart, and its crossover rows."""
    cells, raws = grid(section, scenario, "closed")
    if not cells:
        return [], []
    rows, found = ratio_rows(cells, "rps", lambda c: ceiling.reached(raws[c.id], c) is not None)
    crossings = [[scenario, f"{cand.label} vs {base.label}", crossover(pts)] for (base, cand), pts in found.items()]
    series: dict[str, list[tuple[float, float, float, float, bool]]] = {}
    for (config, delay), cell in cells.items():
        s = stats.summarize(cell.values("rps")) if cell.ok else None
        if s is not None:
            lo, hi = s["ci95"] or (s["median"], s["median"])
            series.setdefault(config.label, []).append((delay, s["median"], lo, hi, not usable(cell)[0]))
    marks = []
    for (base, cand), pts in found.items():
        leads = [p.delay for p in pts if p.reading == "FastAPI significantly faster"]
        if leads:
            marks.append((min(leads), f"{cand.label} > {base.label}"))
    blocks: list[str | Table | Path] = [f"### {scenario}", detail_table(cells, raws, THROUGHPUT_COLS)]
    if any(ceiling.reached(raws[c.id], c) for c in cells.values()):
        blocks.append(CEILING_NOTE)
    if rows:
        blocks += ["Throughput FastAPI ÷ Flask per injected round trip (> 1: the FastAPI-side stack "
                   "serves more), ratio of geometric means with its 95% Welch interval on the logs:",
                   Table(["pair", "delay ms", "ratio [95% CI]", "reading"], rows)]
    if series:
        blocks.append(charts.sweep_chart(charts_dir / f"sweep-{scenario}-throughput.png",
                                         f"{scenario}: throughput against injected database round trip "
                                         "(median, 95% CI; hollow: fails a sanity check; dotted: crossover)",
                                         series, marks, "injected round trip (ms)", "requests per second"))
    return blocks, crossings


def open_blocks(section: dict[str, Any]) -> list[str | Table | Path]:
    card = scenarios.open_loop().name
    cells, raws = grid(section, card, "open")
    if not cells:
        return []
    rates = {f"{d:g}": fmt(cell.target_rate, 1) for (_, d), cell in cells.items()}
    p50, _ = ratio_rows(cells, "p50_ms")
    p99, _ = ratio_rows(cells, "p99_ms")
    rows = [[a[0], a[1], a[2], b[2], b[3]] for a, b in zip(p50, p99, strict=True)]
    return [f"### {card} at equal offered load (open loop)",
            "Every stack at one offered rate per delay (" + ", ".join(f"{k} ms: {v} req/s" for k, v in sorted(rates.items(), key=lambda kv: float(kv[0])))
            + f"; {_share(section.get('settings', {}).get('open_loop_fraction'))} of the weakest stack's closed-loop {card} rate "
            "there), latency from each request's planned send time:",
            detail_table(cells, raws, OPEN_COLS),
            "Latency Flask ÷ FastAPI (> 1: the FastAPI-side stack answers faster):",
            Table(["pair", "delay ms", "p50 ratio [95% CI]", "p99 ratio [95% CI]", "p99 reading"], rows)]


def _share(fraction: Any) -> str:
    return f"{fraction:.0%}" if isinstance(fraction, int | float) else "a share"


def ttft_blocks(section: dict[str, Any]) -> list[str | Table | Path]:
    cells, _raws = grid(section, scenarios.streams().name, "closed", key="upstream_ttft_ms")
    if not cells:
        return []
    rows = []
    for (config, ttft), cell in sorted(cells.items(), key=lambda kv: (kv[0][0].label, kv[0][1])):
        ok, why = usable(cell)
        rows.append([config.label, f"{ttft:g}", str(cell.concurrency or ""), spread(cell, "rps", 1),
                     spread(cell, "ttft_p50_ms", 0), spread(cell, "p99_ms", 0), spread(cell, "memory", 0, 2**20),
                     ", ".join([*cell.flags, *([why] if not ok else [])])])
    ratios, _ = ratio_rows(cells, "ttft_p50_ms")
    return ["### chat at each upstream time to first token",
            "The simulated LLM upstream waits TTFT before its first token; every chat client streams one answer. "
            "No database delay is injected here, and the stacks run at their main-matrix settings (the "
            "sizing rule above is for the database sweep).",
            Table(["stack", "upstream TTFT ms", "clients", "chats/s", "TTFT p50 ms", "total p99 ms", "memory MiB",
                   "flags"], rows),
            "Time to first token Flask ÷ FastAPI (> 1: the FastAPI-side stack streams sooner):",
            Table(["pair", "upstream TTFT ms", "ratio [95% CI]", "reading"], ratios)]


def sweep_section(doc: dict[str, Any], charts_dir: Path) -> Section | None:
    section = doc.get("sweep")
    if not isinstance(section, dict) or not section.get("cells"):
        return None
    settings = section.get("settings") or {}
    overhead = section.get("proxy_overhead") or {}
    swept_db = any(c.get("db_delay_ms") is not None for c in section["cells"])
    blocks: list[str | Table | Path] = [
        "Every stack with a database round trip injected by a userspace TCP proxy between the app and "
        "PostgreSQL (`loadtests/delayproxy.py`, pinned to the load generator's CPUs; one proxy per delay, "
        f"the same for every stack), at {', '.join(f'{d:g}' for d in settings.get('delays_ms', []))} ms, "
        f"{settings.get('repetitions', '?')} repetition(s), {settings.get('concurrency', '?')} wrk connections, "
        f"{settings.get('duration_s', '?')} s windows. Sizing: {section.get('rule', '—')}."
        if swept_db else "No database round trip was swept in this run (the upstream part only).",
    ]
    if overhead:
        blocks.append(f"The proxy's own cost at 0 ms: +{fmt(overhead.get('added_p50_ms'), 3)} ms per round trip "
                      f"(median, {overhead.get('round_trips', '?')} round trips), "
                      f"{fmt(overhead.get('proxy_cpu_us_per_round_trip'))} µs CPU per round trip.")
    if section.get("error"):
        blocks.append(f"**The sweep did not run:** {section['error']}")
    at = len(blocks)  # the crossover table goes here, above the per-scenario detail
    crossings: list[list[str]] = []
    for scenario in scenarios.delay_sweep():
        more, found = scenario_blocks(section, scenario, charts_dir)
        blocks += more
        crossings += found
    if crossings:
        blocks[at:at] = ["**Crossover**: the smallest injected round trip at which the FastAPI-side stack "
                       "serves significantly more (the 95% interval of the ratio lies above 1). Each delay is "
                       "judged on its own interval (no correction across delays); a delay whose cells failed, "
                       f"failed the sanity checks or have fewer than 2 samples a side is *{NOT_ENOUGH}*, and "
                       f"fewer than {rules.MIN_DECISIVE} samples a side make a crossover indicative, as for a verdict.",
                       Table(["scenario", "pair", "crossover"], crossings)]
    blocks += open_blocks(section) + ttft_blocks(section)
    return Section("Latency sweep: injected database round trips, upstream time to first token", blocks=blocks)
