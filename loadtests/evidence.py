"""What a verdict compares: the cells chosen for a claim, both sides' setups, and the estimate.

`pair(run, claim, scenario)` chooses the two stacks' cells for a scenario at the claim's load
level (rules.py says how), runs the sanity checks, and returns a `Comparison`; `capacity(...)`
reads a stack's capacity interval. Nothing here decides a status: rules.py does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests import sanity, scenarios, stats
from loadtests.cell import Cell
from loadtests.claims import HTTP_SCENARIOS, LATENCY_METRICS, METRICS, Claim
from loadtests.document import Run
from loadtests.sample import Capacity

OPEN_FRACTION = 0.5  # equal-offered-load level judged when the claim names none
EQUAL_PACE = 0.05  # closed loops with think time: equal throughput within this = equal load

Key = tuple[str, str, int, float, str]  # driver, mode, concurrency, target rate, load group


@dataclass(frozen=True)
class Side:
    """One stack's cell in a comparison."""

    role: str
    stack: str
    cell: str
    setup: str
    processes: int | None
    cores: int | None
    inferred_setup: bool
    n: int
    median: float | None
    cv: float | None
    sanity: str

    def describe(self) -> str:
        return f"{self.stack} ({self.setup})"


@dataclass(frozen=True)
class Estimate:
    """A measured figure: a factor (> 1: the candidate is better) or, for thresholds, a value.
    `low`/`high` None: that end is unbounded (capacity) or there is no interval (n < 2)."""

    point: float
    low: float | None
    high: float | None
    method: str
    n: tuple[int, ...]
    log_se: float | None = None
    df: float | None = None
    log_diff: float | None = None

    def __post_init__(self) -> None:
        for value in (self.point, self.low, self.high):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"estimate out of range: {value!r} (no infinity, no negative bound)")

    @property
    def has_interval(self) -> bool:
        return self.low is not None or self.high is not None


@dataclass
class Comparison:
    scenario: str
    metric: str
    level: str
    driver: str | None = None
    mode: str | None = None
    baseline: Side | None = None
    candidate: Side | None = None
    estimate: Estimate | None = None
    excluded: list[tuple[str, str]] = field(default_factory=list)
    sensitivity: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why nothing can be judged (not measured)
    cv: float | None = None  # the judged metric's largest CV of the two sides
    like_for_like: bool | None = None
    round_trip: str | None = None  # database scenarios: the round trip judged at, and why


    @property
    def cells(self) -> list[str]:
        return [s.cell for s in (self.baseline, self.candidate) if s is not None]

    def what(self) -> str:
        sides = " vs ".join(s.describe() for s in (self.baseline, self.candidate) if s)
        return (f"{sides}; {self.scenario}, {self.driver or '?'} {self.mode or ''} at {self.level}, "
                + (f"{self.round_trip}, " if self.round_trip else "") + f"metric {self.metric}")


def key(cell: Cell) -> Key:
    return (cell.driver, cell.mode, int(cell.concurrency or 0), float(cell.target_rate or 0.0),
            cell.load_group or "")


def level_text(k: Key, cell: Cell | None = None) -> str:
    if k[1] == "open":
        frac = cell.extra_value("fraction_of_reference") if cell else None
        share = f" ({float(frac):.0%} of the weaker stack's peak)" if isinstance(frac, int | float) else ""
        return f"{k[3]:g} req/s offered{share}"
    if k[1] == "capacity":
        return "capacity search"
    return f"c{k[2]}"


def side(run: Run, role: str, cell: Cell, metric: str) -> Side:
    setup = run.setup_of(cell)
    values = cell.values(metric)
    summary = stats.summarize(values) if values else None
    check = sanity.check_cell(cell, setup)
    return Side(role, cell.stack, cell.id, setup.describe() if setup else "setup unknown",
                setup.processes if setup else None, len(setup.cores) if setup and setup.cores else None,
                bool(setup and setup.inferred), len(values),
                summary["median"] if summary else None, summary["cv"] if summary else None,
                check.summary())


def factor(metric: str, base: Sequence[float], cand: Sequence[float]) -> Estimate | None:
    """The improvement factor (> 1: the candidate is better), a ratio of geometric means with
    a Welch t-interval on the logs; None where a side has no positive value."""
    higher = METRICS[metric].higher_is_better
    num, den = (cand, base) if higher else (base, cand)
    est = stats.log_ratio(num, den)
    if est is None:
        return None
    return Estimate(est.point, est.low, est.high, est.method, (len(base), len(cand)),
                    est.log_se, est.df, est.log_diff)


def value_estimate(values: Sequence[float]) -> Estimate | None:
    """One stack's value: geometric mean with a t-interval on the logs (n ≥ 2)."""
    clean = [v for v in values if v > 0]
    if not clean:
        return None
    point = math.exp(statistics.fmean(math.log(v) for v in clean))
    ci = stats.t_log_interval(clean)
    method = "t-interval on log values (geometric mean)" if ci else "point estimate (n < 2)"
    return Estimate(point, ci[0] if ci else None, ci[1] if ci else None, method, (len(clean),))


def _judged_latency(claim: Claim, scenario: str) -> bool:
    return claim.metric in LATENCY_METRICS and scenario in HTTP_SCENARIOS


def candidates(run: Run, stack: str | None, scenario: str, claim: Claim) -> list[Cell]:
    """The stack's cells that can carry this claim's metric (latency claims on HTTP scenarios:
    equal-offered-load open-loop cells only; throughput claims: closed loops only)."""
    cells = run.cells_for(stack, scenario)
    if _judged_latency(claim, scenario):
        return [c for c in cells if c.mode == "open" and c.load_group]
    if claim.metric in ("rps", "rps_per_core"):
        return [c for c in cells if c.mode == "closed"]
    return [c for c in cells if c.mode != "capacity"]


def default_level(run: Run, claim: Claim, scenario: str, common: Sequence[Key]) -> tuple[Key, str]:
    """The key judged: the claim's level, else the run's primary level (rules.rule_load_level)."""
    if _judged_latency(claim, scenario):
        def frac(k: Key) -> float:
            return abs(_fraction(run, k) - OPEN_FRACTION)
        chosen = min(common, key=frac)
        return chosen, f"equal offered load, {OPEN_FRACTION:.0%} of the weaker stack's peak (claim names no rate)"
    if claim.concurrency:
        return next(k for k in common if k[2] == claim.concurrency), (
            f"c{claim.concurrency} from the document" + (f" ({claim.level_note})" if claim.level_note else ""))
    primary = run.settings.get("primary_concurrency")
    if scenario in HTTP_SCENARIOS and isinstance(primary, int):
        want, why = primary, f"the run's primary level c{primary} (the document names none)"
    else:
        want, why = min(k[2] for k in common), "the lowest common level (the document names none)"
    chosen = min(common, key=lambda k: (abs(k[2] - want), k[2]))
    if chosen[2] != want:
        why += f"; c{want} not run by both, nearest c{chosen[2]}"
    return chosen, why


def _fraction(run: Run, k: Key) -> float:
    for cell in run.cells:
        if key(cell) == k:
            frac = cell.extra_value("fraction_of_reference")
            if isinstance(frac, int | float):
                return float(frac)
    return 1.0


def _pace_equal(bcell: Cell, ccell: Cell) -> bool:
    b, c = bcell.values("rps"), ccell.values("rps")
    if not b or not c:
        return False
    mb, mc = statistics.median(b), statistics.median(c)
    return abs(mb - mc) <= EQUAL_PACE * max(mb, mc)


def pair(run: Run, claim: Claim, scenario: str, word: Callable[[Estimate], str] | None = None) -> Comparison:
    """Both stacks' cells for `scenario` at the claim's level, checked, with the estimate; the
    latency sweep's figures for the same pair follow as sensitivity rows (`sweep_rows`, each
    with the verdict `word` gives its figure)."""
    comp = _pair(run, claim, scenario)
    rows = sweep_rows(run, claim, scenario, word)
    comp.sensitivity += rows
    if comp.baseline is not None and scenario in scenarios.delay_sweep():
        comp.round_trip = round_trip_text(run, rows)
    return comp


def round_trip_text(run: Run, rows: Sequence[str]) -> str:
    """The database round trip a verdict on a database scenario was judged at, and why, from
    the run's own data: the main matrix's local PostgreSQL (no proxy, no injected delay), whose
    round trip the sweep measures directly (`proxy_overhead.direct_p50_ms`) before it starts."""
    section = (run.model_extra or {}).get("sweep")
    overhead = section.get("proxy_overhead") if isinstance(section, dict) else None
    direct = overhead.get("direct_p50_ms") if isinstance(overhead, dict) else None
    measured = (f"{direct:.3f} ms per round trip (median of {overhead.get('round_trips', '?')} direct "
                f"`SELECT 1`s)" if isinstance(direct, int | float) and isinstance(overhead, dict)
                else "round trip not measured in this run")
    main = _runs_text(run.settings)
    why = f"the verdict cells{main} run there and the document names no database location"
    if rows:
        delays = [r.split(" ms injected", 1)[0].removeprefix("sweep, ") for r in rows]
        swept = _runs_text((section or {}).get("settings") or {}) if isinstance(section, dict) else ""
        why += f"; the sweep{swept} gives the factor at {'/'.join(delays)} ms injected (sensitivity rows)"
    else:
        why += "; no sweep cells for this pair in this run"
    return f"DB round trip judged at: the main matrix's local PostgreSQL, no injected delay, {measured} — {why}"


def sweep_rows(run: Run, claim: Claim, scenario: str, word: Callable[[Estimate], str] | None = None) -> list[str]:
    """**Injected database round trips** (the latency sweep, `doc["sweep"]`): a claim on the
    card, due or review scenario whose two stacks were both swept gets one sensitivity row per
    injected round trip, the same factor (closed loops; latency metrics: the sweep's
    equal-offered-load open loop) on the stacks' recommended sizing, sanity-checked like any
    cell. The verdict itself stays judged on the main matrix, whose database is local (its
    round trip is the proxy's `direct_p50_ms`): no round trip is chosen for the headline, so
    the rows show how the figure moves with I/O latency and the report's *Latency sweep*
    section gives the crossover. `word` (the verdict engine's rules on one figure) adds the
    verdict each round trip would give, so a claim reads at every delay, not only locally."""
    section = (run.model_extra or {}).get("sweep")
    if not isinstance(section, dict) or scenario not in HTTP_SCENARIOS:
        return []
    mode = "open" if _judged_latency(claim, scenario) else "closed"
    found: dict[tuple[str, float], Cell] = {}
    for raw in section.get("cells") or []:
        if (raw.get("scenario") != scenario or raw.get("mode") != mode or raw.get("db_delay_ms") is None
                or (raw.get("variant") or "recommended") != "recommended"
                or raw.get("stack") not in (claim.baseline, claim.candidate)):
            continue
        try:  # a setup read after its server was gone has no processes: keep the cell, drop it
            cell = Cell.model_validate({k: v for k, v in raw.items() if k != "setup" or "processes" in (v or {})})
        except ValueError:
            continue
        found[(cell.stack, float(raw["db_delay_ms"]))] = cell
    rows = []
    for delay in sorted({d for _, d in found}):
        bcell, ccell = found.get((str(claim.baseline), delay)), found.get((str(claim.candidate), delay))
        if bcell is None or ccell is None:
            continue
        bad = [f"{c.id}: {sanity.check_cell(c, c.setup).summary()}" for c in (bcell, ccell)
               if not (c.ok and sanity.check_cell(c, c.setup).ok)]
        threshold = claim.kind == "threshold"
        est = None if bad else value_estimate(ccell.values(claim.metric)) if threshold else factor(
            claim.metric, bcell.values(claim.metric), ccell.values(claim.metric))
        unit = f" {METRICS[claim.metric].unit}" if threshold else "x"
        figure = f"excluded ({'; '.join(bad)})" if bad else format_estimate(est, unit)
        if est is not None and word is not None:
            figure += f" → {word(est)}"
        rows.append(f"sweep, {delay:g} ms injected DB round trip ({level_text(key(ccell), ccell)}): {figure}")
    return rows


def _runs_text(settings: dict[str, Any]) -> str:
    reps, window = settings.get("repetitions"), settings.get("duration_s")
    if isinstance(reps, int) and isinstance(window, int | float):
        return f" ({reps} repetitions of {window:g} s)"
    return ""


def _pair(run: Run, claim: Claim, scenario: str) -> Comparison:
    comp = Comparison(scenario, claim.metric, "—")
    base_cells = candidates(run, claim.baseline, scenario, claim)
    cand_cells = candidates(run, claim.candidate, scenario, claim)
    base = {key(c): c for c in base_cells if c.ok}
    cand = {key(c): c for c in cand_cells if c.ok}
    common = [k for k in base if k in cand and (k[1] != "open" or k[4])]
    if not common:
        comp.problem = _missing(run, claim, scenario, base_cells, cand_cells)
        if _judged_latency(claim, scenario):
            comp.sensitivity = queueing_rows(run, claim, scenario)
        return comp
    if claim.concurrency and not _judged_latency(claim, scenario) and claim.concurrency not in {k[2] for k in common}:
        comp.problem = (f"the document's level c{claim.concurrency} was not run for both stacks "
                        f"(common levels: {', '.join(sorted({level_text(k) for k in common}))})")
        comp.sensitivity = [_row(run, claim, base[k], cand[k], k) for k in sorted(common)]
        return comp
    chosen, why = default_level(run, claim, scenario, common)
    bcell, ccell = base[chosen], cand[chosen]
    comp.level, comp.driver, comp.mode = level_text(chosen, ccell), chosen[0], chosen[1]
    comp.notes.append(f"load level: {why}")
    comp.baseline = side(run, "baseline", bcell, claim.metric)
    comp.candidate = side(run, "candidate", ccell, claim.metric)
    comp.sensitivity = [_row(run, claim, base[k], cand[k], k) for k in sorted(common) if k != chosen]
    for s, cell in ((comp.baseline, bcell), (comp.candidate, ccell)):
        if s.sanity != "passed":
            comp.excluded.append((cell.id, s.sanity))
        if s.inferred_setup:
            comp.notes.append(f"{s.role} setup inferred from the stack description (schema 1)")
        comp.notes.extend(f"{s.role} cell flagged {f}" for f in cell.flags)
    bs, cs = run.setup_of(bcell), run.setup_of(ccell)
    comp.like_for_like = bool(bs and cs and bs.like_for_like(cs))
    if claim.metric in LATENCY_METRICS and chosen[1] == "closed":
        family = scenarios.family_of(scenario)
        if family == "session" and not (_thinks(bcell) and _pace_equal(bcell, ccell)):
            comp.problem = ("closed-loop latency without think time or at unequal throughput is "
                            "queueing, not response time")
        elif family == "streams":
            comp.notes.append(f"a closed loop of {chosen[2]} chat users, each waiting on the upstream: "
                              "latency includes queueing where a stack cannot serve them all at once")
    if claim.metric == "memory" and any(s.metric("memory") is not None and s.server_pss_bytes is None
                                        for c in (bcell, ccell) for s in c.samples):
        comp.notes.append("memory is peak RSS summed over processes (PSS not recorded)")
    if claim.kind != "threshold":
        comp.estimate = factor(claim.metric, bcell.values(claim.metric), ccell.values(claim.metric))
    else:
        comp.estimate = value_estimate(ccell.values(claim.metric))
    cvs = [s.cv for s in (comp.baseline, comp.candidate) if s.cv is not None]
    comp.cv = max(cvs) if cvs else None
    if comp.estimate is None and comp.problem is None and claim.metric != "error_rate":
        comp.problem = f"the cells lack {METRICS[claim.metric].reads}"
    return comp


def _thinks(cell: Cell) -> bool:
    return any(float(s.extra.get("think_s") or 0) > 0 for s in cell.samples)


def _row(run: Run, claim: Claim, bcell: Cell, ccell: Cell, k: Key) -> str:
    if claim.kind == "threshold":
        est = value_estimate(ccell.values(claim.metric))
    else:
        est = factor(claim.metric, bcell.values(claim.metric), ccell.values(claim.metric))
    unit = "x" if claim.kind != "threshold" else f" {METRICS[claim.metric].unit}"
    return f"at {level_text(k, ccell)}: {format_estimate(est, unit)}"


def queueing_rows(run: Run, claim: Claim, scenario: str) -> list[str]:
    """Closed-loop latency, shown for what it is (queueing at saturation), never judged."""
    rows = []
    base = {key(c): c for c in run.cells_for(claim.baseline, scenario) if c.ok and c.mode == "closed"}
    cand = {key(c): c for c in run.cells_for(claim.candidate, scenario) if c.ok and c.mode == "closed"}
    for k in sorted(set(base) & set(cand)):
        est = factor(claim.metric, base[k].values(claim.metric), cand[k].values(claim.metric))
        rows.append(f"queueing at saturation (closed loop {level_text(k)}, not response time): "
                    f"{format_estimate(est, 'x')}")
    return rows


def _missing(run: Run, claim: Claim, scenario: str, base: list[Cell], cand: list[Cell]) -> str:
    parts: list[str] = []
    if _judged_latency(claim, scenario):
        return ("no equal-offered-load open-loop cells (extra.load_group) for both stacks: "
                "closed-loop latency at saturation is queueing, shown as sensitivity only")
    for role, stack, cells in (("baseline", claim.baseline, base), ("candidate", claim.candidate, cand)):
        every = run.cells_for(stack, scenario)
        bad = [f"{c.id} ({c.status}{': ' + c.error if c.error else ''})" for c in every if not c.ok]
        if bad:
            parts.append(f"{role} cells not measured: {', '.join(bad)}")
        elif not cells:
            parts.append(f"no usable {scenario} cells for {role} {stack}")
    return "; ".join(parts) or "no common driver/mode/level between the two stacks"


def format_number(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"


def format_estimate(est: Estimate | None, unit: str = "x") -> str:
    if est is None:
        return "—"
    text = f"{format_number(est.point)}{unit}"
    if est.low is not None and est.high is not None:
        text += f" [{format_number(est.low)}, {format_number(est.high)}]"
    elif est.low is not None:
        text += f" [≥ {format_number(est.low)}, no upper bound]"
    elif est.high is not None:
        text += f" [≤ {format_number(est.high)}]"
    return text


# --- capacity ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Held:
    """A stack's capacity as an interval: held `lo`, failed at `hi` (None: never failed up to
    max_tried)."""

    stack: str
    lo: int
    hi: int | None
    max_tried: int
    n: int
    cells: tuple[str, ...]
    method: str
    searched: bool = True  # False: read from a grid of levels (schema 1)

    def text(self) -> str:
        if self.lo == 0 and self.hi is not None:
            return f"held < {self.hi}"
        if self.hi is None:
            return f"held ≥ {self.lo} (never failed up to {self.max_tried})"
        return f"held ≥ {self.lo}, failed at {self.hi}"


def capacity(run: Run, stack: str | None, scenario: str) -> Held | None:
    """From capacity searches (extra.capacity), conservatively over searches: the smallest
    held_lo and the largest failed_hi; schema-1 documents: from the grid of levels tried."""
    searches: list[tuple[Capacity, str]] = [(s.capacity, c.id) for c in run.cells_for(stack, scenario)
                                            if c.ok for s in c.samples if s.capacity is not None]
    if searches:
        caps = [cap for cap, _ in searches]
        his = [c.failed_hi for c in caps]
        return Held(str(stack), min(c.held_lo for c in caps), None if None in his else max(h for h in his if h is not None),
                    max(c.max_tried for c in caps), len(caps), tuple(dict.fromkeys(i for _, i in searches)),
                    f"capacity search ({caps[0].objective}; resolution {caps[0].resolution:g})")
    cells = [c for c in run.cells_for(stack, scenario) if c.ok and c.concurrency]
    if not cells:
        return None
    held: list[int] = []
    failed: list[int] = []
    for cell in cells:
        ok = all(_held(s.extra, s.errors_total, float(s.requests)) for s in cell.samples)
        (held if ok else failed).append(int(cell.concurrency or 0))
    lo = max(held, default=0)
    above = [f for f in failed if f > lo]
    runs = min(len(c.samples) for c in cells)
    return Held(str(stack), lo, min(above) if above else None, max(held + failed), runs,
                tuple(c.id for c in cells), "grid of levels tried (no search)", searched=False)


def _held(extra: dict[str, Any], errors: float, requests: float) -> bool:
    if extra.get("slo_met") is False:
        return False
    return errors <= 0.01 * max(requests, 1.0)


def capacity_factor(base: Held, cand: Held) -> Estimate | None:
    """candidate ÷ baseline as an interval from both intervals: low = cand.lo / base.hi, high =
    cand.hi / base.lo; an end that cannot be bounded is None (never an infinite ratio). None when the
    baseline's limit is unknown from above and below alike."""
    low = cand.lo / base.hi if base.hi else None
    high = cand.hi / base.lo if (cand.hi is not None and base.lo > 0) else None
    if low is None and high is None:
        return None
    point_parts = [x for x in (low, high) if x is not None]
    point = math.sqrt(low * high) if low is not None and high is not None and low > 0 else point_parts[0]
    return Estimate(point, low, high, f"bounds from both stacks' intervals ({base.method})",
                    (base.n, cand.n))
