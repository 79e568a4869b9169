"""FastAPI ÷ Flask at each point of the latency sweep, and the crossover: the smallest injected
delay at which the FastAPI-side stack is significantly better.

A stack's cells are parsed through the typed model and go through `sanity.check_cell` first; a
ratio is `evidence.factor` (`stats.log_ratio`: ratio of geometric means, Welch t-interval on the
logs, the verdict engine's figure); "significantly" is the direction rule's reading of that
interval (its lower end above 1). No statistic is new here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from loadtests import evidence, rules, sanity
from loadtests.cell import Cell
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


BOTH_CAPPED = "both at the database's ceiling: the pool sizing decides, not the framework"


def ratio_rows(cells: Grid, metric: str, capped: Callable[[Cell], bool] | None = None,
               ) -> tuple[list[list[str]], dict[tuple[Config, Config], list[Point]]]:
    """One row per pair and delay; where `capped` says both cells sat at the database's own
    ceiling (`loadtests.report.ceiling`) the reading says so."""
    configs = sorted({c for c, _ in cells}, key=lambda c: c.label)
    delays = sorted({d for _, d in cells})
    found: dict[tuple[Config, Config], list[Point]] = {}
    rows = []
    for base, cand in pairs(configs):
        pts = [point(cells.get((base, d)), cells.get((cand, d)), d, metric) for d in delays]
        found[(base, cand)] = pts
        for p in pts:
            pair = [cells.get((base, p.delay)), cells.get((cand, p.delay))]
            both = capped is not None and all(c is not None and capped(c) for c in pair)
            rows.append([f"{cand.label} vs {base.label}", f"{p.delay:g}", evidence.format_estimate(p.estimate),
                         p.reading + (f" ({BOTH_CAPPED})" if both else "")])
    return rows, found
