"""The latency sweep section (`doc["sweep"]`, written by loadtests/sweep.py): every stack at each
injected database round trip, the ratios FastAPI ÷ Flask per round trip, and where FastAPI
becomes significantly faster (the crossover); then the open loop at equal offered load and the
upstream time-to-first-token sweep of the chat scenario.

No statistic is new here: a stack's value at a delay is `stats.summarize` (the cells' own
summary), a ratio is `evidence.factor` (`stats.log_ratio`: ratio of geometric means, Welch
t-interval on the logs, the verdict engine's figure), cells go through `sanity.check_cell`
first, and "significantly faster" is the direction rule's reading of that interval: its lower
end above 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loadtests import evidence, rules, sanity, stats
from loadtests.model import Cell
from loadtests.report import charts
from loadtests.report.document import Section, Table
from loadtests.report.values import fmt
from loadtests.stacks import STACKS

NOT_ENOUGH = "not enough data"
ASYNC_IMPLS = ("rest", "graphql")  # the FastAPI-side stacks (Strawberry runs on the same ASGI stack)


@dataclass(frozen=True)
class Config:
    """One line of the sweep: a stack at one sizing variant ("recommended", "more-threads")."""

    stack: str
    variant: str = "recommended"

    @property
    def label(self) -> str:
        return self.stack if self.variant == "recommended" else f"{self.stack} ({self.variant})"

    @property
    def side(self) -> str | None:
        """"flask", "fastapi", or None for a stack this report cannot place."""
        info = STACKS.get(self.stack)
        if info is None:
            return None
        return "flask" if info.impl == "flask" else "fastapi" if info.impl in ASYNC_IMPLS else None


Grid = dict[tuple[Config, float], Cell]  # (config, delay or TTFT) → cell


def parse(raw: dict[str, Any]) -> Cell | None:
    """A sweep cell through the typed model; a setup the model refuses (a server that was gone
    when read) is dropped rather than the cell."""
    try:
        return Cell.model_validate(raw)
    except ValidationError:
        try:
            return Cell.model_validate({k: v for k, v in raw.items() if k != "setup"})
        except ValidationError:
            return None


def grid(section: dict[str, Any], scenario: str, mode: str, key: str = "db_delay_ms") -> tuple[Grid, dict[str, dict[str, Any]]]:
    """The cells of one scenario and mode keyed by (config, `key`), and each cell's raw dict."""
    cells: Grid = {}
    raws: dict[str, dict[str, Any]] = {}
    for raw in section.get("cells") or []:
        if raw.get("scenario") != scenario or raw.get("mode") != mode or raw.get(key) is None:
            continue
        cell = parse(raw)
        if cell is not None:
            cells[(Config(cell.stack, str(raw.get("variant") or "recommended")), float(raw[key]))] = cell
            raws[cell.id] = raw
    return cells, raws


def usable(cell: Cell | None) -> tuple[bool, str]:
    """Whether a cell may enter a ratio: measured, and passing the sanity checks."""
    if cell is None:
        return False, "not run"
    if not cell.ok:
        return False, f"{cell.status}" + (f": {cell.error.splitlines()[0][:80]}" if cell.error else "")
    check = sanity.check_cell(cell, cell.setup)
    return (True, "") if check.ok else (False, "excluded: " + check.summary())


@dataclass(frozen=True)
class Point:
    """FastAPI ÷ Flask (> 1: the FastAPI stack is better) at one delay."""

    delay: float
    estimate: evidence.Estimate | None
    why: str = ""  # why there is no interval

    @property
    def has_interval(self) -> bool:
        return self.estimate is not None and self.estimate.low is not None and self.estimate.high is not None

    @property
    def reading(self) -> str:
        if not self.has_interval:
            return f"{NOT_ENOUGH} ({self.why})"
        assert self.estimate is not None and self.estimate.low is not None and self.estimate.high is not None
        if self.estimate.low > 1:
            return "FastAPI significantly faster"
        if self.estimate.high < 1:
            return "Flask significantly faster"
        return "no difference distinguishable"


def point(base: Cell | None, cand: Cell | None, delay: float, metric: str) -> Point:
    for cell in (base, cand):
        ok, why = usable(cell)
        if not ok:
            return Point(delay, None, f"{cell.stack if cell else 'a side'} {why}")
    assert base is not None and cand is not None
    est = evidence.factor(metric, base.values(metric), cand.values(metric))
    if est is None or est.low is None:
        return Point(delay, est, f"n = {len(base.values(metric))}/{len(cand.values(metric))}, an interval needs ≥ 2 a side")
    return Point(delay, est)


def crossover(points: Sequence[Point]) -> str:
    """The smallest delay at which the FastAPI stack is significantly faster, said with what
    limits it: delays without an interval below it, delays above it where the gap closed, and
    fewer than `rules.MIN_DECISIVE` samples (indicative, as for a verdict)."""
    points = sorted(points, key=lambda p: p.delay)
    if not points:
        return NOT_ENOUGH
    faster = [p for p in points if p.has_interval and p.reading == "FastAPI significantly faster"]
    lacking = [p for p in points if not p.has_interval]
    span = f"{points[0].delay:g}–{points[-1].delay:g} ms" if len(points) > 1 else f"{points[0].delay:g} ms"
    if not faster:
        if len(lacking) == len(points):
            return f"{NOT_ENOUGH} at any delay"
        if lacking:
            return (f"{NOT_ENOUGH} at {_delays(lacking)}; no crossover at "
                    f"{_delays([p for p in points if p.has_interval])}")
        return f"no crossover {'within' if len(points) > 1 else 'at'} {span}"
    first = faster[0]
    text = f"**{first.delay:g} ms**: {evidence.format_estimate(first.estimate)}"
    notes = []
    if first.delay == points[0].delay:
        notes.append("already at the smallest delay measured")
    if below := [p for p in lacking if p.delay < first.delay]:
        notes.append(f"could be lower: {NOT_ENOUGH} at {_delays(below)}")
    if closed := [p for p in points if p.delay > first.delay and p.has_interval and p not in faster]:
        notes.append(f"not significant again at {_delays(closed)}")
    if above := [p for p in lacking if p.delay > first.delay]:
        notes.append(f"{NOT_ENOUGH} at {_delays(above)}")
    assert first.estimate is not None
    if min(first.estimate.n) < rules.MIN_DECISIVE:
        notes.append(f"indicative: n = {'/'.join(map(str, first.estimate.n))} < {rules.MIN_DECISIVE}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _delays(points: Sequence[Point]) -> str:
    """`0 ms, 5 ms`; a point without an interval says why in a word (n < 2, excluded, failed)."""
    def why(p: Point) -> str:
        if p.has_interval:
            return ""
        word = "n < 2" if p.why.startswith("n = ") else "sanity-excluded" if "excluded:" in p.why else \
            "not run" if p.why.endswith("not run") else "failed"
        return f" ({word})"
    return ", ".join(f"{p.delay:g} ms{why(p)}" for p in points)


def pairs(configs: Sequence[Config]) -> list[tuple[Config, Config]]:
    """Every Flask configuration (each variant: more threads is the honest competitor) against
    every FastAPI-side stack."""
    flask = [c for c in configs if c.side == "flask"]
    fast = [c for c in configs if c.side == "fastapi"]
    return [(b, c) for b in flask for c in fast]


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
        rows.append([config.label, f"{delay:g}", _sizing(raws[cell.id]),
                     *(spread(cell, m, d, sc) for _h, m, d, sc in metric_cols),
                     f"{_extra_peak(cell, 'db_connections', 'peak_total')} ({_extra_peak(cell, 'db_connections', 'peak_active')})",
                     _proxy_us(cell), ", ".join([*cell.flags, *([why] if not ok else [])])])
    return Table(["stack", "delay ms", "processes, threads, pool", *(h for h, *_ in metric_cols),
                  "DB conns peak (active)", "proxy CPU µs/req", "flags"], rows)


def ratio_rows(cells: Grid, metric: str, key_name: str = "delay") -> tuple[list[list[str]], dict[tuple[Config, Config], list[Point]]]:
    configs = sorted({c for c, _ in cells}, key=lambda c: c.label)
    delays = sorted({d for _, d in cells})
    found: dict[tuple[Config, Config], list[Point]] = {}
    rows = []
    for base, cand in pairs(configs):
        pts = [point(cells.get((base, d)), cells.get((cand, d)), d, metric) for d in delays]
        found[(base, cand)] = pts
        rows += [[f"{cand.label} vs {base.label}", f"{p.delay:g}", evidence.format_estimate(p.estimate),
                  p.reading] for p in pts]
    return rows, found


THROUGHPUT_COLS = (("req/s median [95% CI] n, CV", "rps", 0, 1.0), ("p99 ms", "p99_ms", 1, 1.0),
                   ("CPU ms/req", "cpu_ms_per_request", 2, 1.0), ("memory MiB (PSS, else peak RSS)", "memory", 0, 2**20))
OPEN_COLS = (("achieved req/s", "achieved_rps", 0, 1.0), ("p50 ms", "p50_ms", 2, 1.0),
             ("p99 ms", "p99_ms", 2, 1.0), ("memory MiB", "memory", 0, 2**20))


def scenario_blocks(section: dict[str, Any], scenario: str, charts_dir: Path) -> tuple[list[str | Table | Path], list[list[str]]]:
    """One scenario's tables and chart, and its crossover rows."""
    cells, raws = grid(section, scenario, "closed")
    if not cells:
        return [], []
    rows, found = ratio_rows(cells, "rps")
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
    cells, raws = grid(section, "card", "open")
    if not cells:
        return []
    rates = {f"{d:g}": fmt(cell.target_rate, 1) for (_, d), cell in cells.items()}
    p50, _ = ratio_rows(cells, "p50_ms")
    p99, _ = ratio_rows(cells, "p99_ms")
    rows = [[a[0], a[1], a[2], b[2], b[3]] for a, b in zip(p50, p99, strict=True)]
    return ["### card at equal offered load (open loop)",
            "Every stack at one offered rate per delay (" + ", ".join(f"{k} ms: {v} req/s" for k, v in sorted(rates.items(), key=lambda kv: float(kv[0])))
            + f"; {_share(section.get('settings', {}).get('open_loop_fraction'))} of the weakest stack's closed-loop card rate "
            "there), latency from each request's planned send time:",
            detail_table(cells, raws, OPEN_COLS),
            "Latency Flask ÷ FastAPI (> 1: the FastAPI-side stack answers faster):",
            Table(["pair", "delay ms", "p50 ratio [95% CI]", "p99 ratio [95% CI]", "p99 reading"], rows)]


def _share(fraction: Any) -> str:
    return f"{fraction:.0%}" if isinstance(fraction, int | float) else "a share"


def ttft_blocks(section: dict[str, Any]) -> list[str | Table | Path]:
    cells, _raws = grid(section, "chat", "closed", key="upstream_ttft_ms")
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
            "No database delay is injected here.",
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
    crossings: list[list[str]] = []
    for scenario in ("card", "due", "review"):
        more, found = scenario_blocks(section, scenario, charts_dir)
        blocks += more
        crossings += found
    if crossings:
        blocks[1:1] = ["**Crossover**: the smallest injected round trip at which the FastAPI-side stack "
                       "serves significantly more (the 95% interval of the ratio lies above 1). Each delay is "
                       "judged on its own interval (no correction across delays); a delay whose cells failed, "
                       f"failed the sanity checks or have fewer than 2 samples a side is *{NOT_ENOUGH}*, and "
                       f"fewer than {rules.MIN_DECISIVE} samples a side make a crossover indicative, as for a verdict.",
                       Table(["scenario", "pair", "crossover"], crossings)]
    blocks += open_blocks(section) + ttft_blocks(section)
    return Section("Latency sweep: injected database round trips, upstream time to first token", blocks=blocks)
