"""Verdicts on the claims: `judge(claim, doc)` → `Verdict`, `judge_all(doc)` for the registry.

The facade of the verdict engine. The registry is loadtests/claims.py's, the choice of cells
and the estimates loadtests/evidence.py's, the status rules loadtests/rules.py's (their
docstrings are `rules_markdown()`), tables and the chart loadtests/verdict_render.py's.
`results_doc` is a results document (schema 1 or 2, as parsed JSON) or a `document.Run`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from loadtests import evidence, rules
from loadtests.claims import (  # noqa: F401 - re-exported
    METRICS,
    REGISTRY_PATH,
    SEEDS_ENV,
    Claim,
    Registry,
    RegistryError,
    Source,
    check_quotes,
    display_quote,
    known_stack,
    load_registry,
    seeds_dir,
    validate_registry_doc,
)
from loadtests.document import Run
from loadtests.rules import (  # noqa: F401 - re-exported
    ANALOGUE,
    CONTRADICTED,
    DECISIVE,
    INDICATIVE,
    NOT_MEASURED,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    PARTLY,
    STATUSES,
    SUPPORTED,
    UNSTABLE,
    Decision,
    rules_markdown,
)
from loadtests.stats import bootstrap_medians, percentile

MICRO_MAX_ROUNDS = 5000
MICRO_MIN_ROUNDS = 10
BOOTSTRAP_SEED = 20250115


@dataclass(frozen=True)
class Verdict:
    """One claim judged against one results document.

    measured: the headline figure — the improvement factor (> 1: the candidate is better), or
    the candidate's value in `unit` for threshold claims; ci95 its 95% interval (an end None:
    unbounded or absent), computed by `method`. label: overshoot/undershoot/why. leaning: for
    indicative and unstable results, the status the figures point to. what: both stacks with
    processes × threads and cores, scenario, driver, level and metric. parts: one verdict per
    scenario (or benchmark group) of a multi-part claim.
    """

    id: str
    status: str
    measured: float | None
    ci95: tuple[float | None, float | None] | None
    unit: str
    rule: str
    evidence_cells: tuple[str, ...]
    claimed: str = ""
    scenario: str | None = None
    method: str | None = None
    label: str | None = None
    leaning: str | None = None
    what: str | None = None
    level: str | None = None
    metric: str | None = None
    n: tuple[int, ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()
    sensitivity: tuple[str, ...] = ()
    absolutes: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    parts: tuple[Verdict, ...] = ()
    claimed_factor: float | None = None
    log_se: float | None = None
    df: float | None = None
    # Capacity claims: what each side held ("baseline held ≥ 10, failed at 100; candidate …"), the
    # headline instead of a ratio whose open end would read as unbounded.
    held: str | None = None

    def __post_init__(self) -> None:
        for x in (self.measured, *(self.ci95 or ())):
            if x is not None and (not math.isfinite(x) or x < 0):
                raise ValueError(f"{self.id}: figure {x!r} (no infinity, no negative bound)")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("log_se"), out.pop("df")
        out["parts"] = [p.to_dict() for p in self.parts]
        out["headline"] = headline(self)
        return json.loads(json.dumps(out, ensure_ascii=False))  # tuples as lists: JSON data


def _unit(claim: Claim) -> str:
    return METRICS[claim.metric].unit if claim.kind == "threshold" else "x"


def headline(v: Verdict) -> str:
    """The figure that decided, with its interval and method ('—' where none)."""
    if v.held:
        return v.held
    if v.parts and all(p.held for p in v.parts):
        return " · ".join(f"{p.scenario}: {p.held}" for p in v.parts)
    if v.measured is None:
        return "—"
    unit = "x" if v.unit == "x" else f" {v.unit}"
    lo, hi = v.ci95 or (None, None)
    est = evidence.Estimate(v.measured, lo, hi, v.method or "", v.n)
    return evidence.format_estimate(est, unit)


def format_measured(v: Verdict) -> str:
    return headline(v)


def _verdict(claim: Claim, d: Decision, scenario: str | None, comp: evidence.Comparison | None = None,
             est: evidence.Estimate | None = None, **extra: Any) -> Verdict:
    est = est if est is not None else (comp.estimate if comp else None)
    more = list(extra.pop("notes", []))
    if d.status in (NOT_MEASURED, NOT_TESTABLE) and est is not None and claim.metric != "capacity":
        more.append(f"figure not judged ({d.label}): {evidence.format_estimate(est, 'x' if _unit(claim) == 'x' else ' ' + _unit(claim))}")
        est = None
    notes = tuple(dict.fromkeys([*(comp.notes if comp else []), *more]))
    return Verdict(
        id=claim.id, status=d.status, measured=est.point if est else None,
        ci95=(est.low, est.high) if est and est.has_interval else None, unit=_unit(claim), rule=d.rule,
        evidence_cells=tuple(extra.pop("cells", comp.cells if comp else [])), claimed=claim.claimed_text,
        scenario=scenario, method=est.method if est else None, label=d.label, leaning=d.leaning,
        what=comp.what() if comp and comp.candidate else None, level=comp.level if comp else None,
        metric=claim.metric, n=est.n if est else (), excluded=tuple(comp.excluded) if comp else (),
        sensitivity=tuple(comp.sensitivity) if comp else (), notes=notes,
        claimed_factor=claim.claimed, log_se=est.log_se if est else None, df=est.df if est else None,
        absolutes=_absolutes(claim, comp), **extra)


def _absolutes(claim: Claim, comp: evidence.Comparison | None) -> dict[str, Any] | None:
    if comp is None or comp.candidate is None:
        return None
    return {"baseline": comp.baseline.median if comp.baseline else None, "candidate": comp.candidate.median,
            "unit": METRICS[claim.metric].unit, "baseline_stack": claim.baseline,
            "candidate_stack": claim.candidate, "claimed_baseline": claim.claimed_baseline,
            "claimed_candidate": claim.claimed_candidate}


def _high(claim: Claim) -> float:
    return claim.claimed_range[1] if claim.claimed_range else float(claim.claimed or 1.0)


def decide(claim: Claim, est: evidence.Estimate) -> Decision:
    """The status the figures give before the sample-size and stability rules."""
    if claim.kind == "threshold":
        assert claim.threshold_op is not None and claim.threshold is not None
        return rules.rule_threshold(claim.threshold_op, claim.threshold, est, METRICS[claim.metric].unit)
    if claim.kind == "qualitative":
        return rules.rule_direction(est)
    return rules.rule_factor(float(claim.claimed or 1.0), _high(claim), claim.at_least, est)


# --- one part ---------------------------------------------------------------------------------
def word(claim: Claim, est: evidence.Estimate) -> str:
    """The verdict one figure alone gives (figure, sample size; a sensitivity row's word)."""
    leaning = decide(claim, est)
    d = rules.rule_sample_size(est.n, leaning) or leaning
    return d.status + (f", leans {d.leaning}" if d.leaning else "") + (f" ({d.label})" if d.label else "")


def _judge_pair(claim: Claim, run: Run, scenario: str) -> Verdict:
    comp = evidence.pair(run, claim, scenario, lambda est: word(claim, est))
    for rule in (rules.rule_measured, rules.rule_sanity, rules.rule_like_for_like):
        d = rule(comp)
        if d is not None:
            return _verdict(claim, d, scenario, comp)
    est = comp.estimate
    if claim.metric == "error_rate":
        est_or_d = _error_rate(claim, run, comp)
        if isinstance(est_or_d, Decision):
            return _verdict(claim, est_or_d, scenario, comp)
        est = est_or_d
    assert est is not None
    leaning = decide(claim, est)
    d = rules.rule_sample_size(est.n, leaning) or rules.rule_stability(comp, leaning) or leaning
    return _verdict(claim, d, scenario, comp, est)


def _error_rate(claim: Claim, run: Run, comp: evidence.Comparison) -> evidence.Estimate | Decision:
    assert comp.baseline and comp.candidate
    bcell, ccell = run.cell(comp.baseline.cell), run.cell(comp.candidate.cell)
    berr = sum(s.errors_total for s in bcell.samples)
    d = rules.rule_error_premise(berr)
    if d is not None:
        return d
    cerr = sum(s.errors_total for s in ccell.samples)
    if cerr > 0 and comp.estimate is not None and comp.estimate.point > 0:
        return comp.estimate
    brate = berr / max(sum(float(s.requests) for s in bcell.samples), 1.0)
    crate_hi = 3.0 / max(sum(float(s.requests) for s in ccell.samples), 1.0)
    low = brate / crate_hi
    return evidence.Estimate(low, low, None, "rule of three on the candidate's zero errors",
                             (len(bcell.samples), len(ccell.samples)))


def _judge_capacity(claim: Claim, run: Run, scenario: str) -> Verdict:
    cand = evidence.capacity(run, claim.candidate, scenario)
    comp = evidence.Comparison(scenario, "capacity", "capacity search", mode="capacity")
    if cand is None:
        return _verdict(claim, Decision(NOT_MEASURED, f"no {scenario} cells for {claim.candidate}",
                                        rule="rule_measured"), scenario, comp)
    cells = list(cand.cells)
    if claim.kind == "threshold":
        assert claim.threshold_op is not None and claim.threshold is not None
        d = rules.rule_capacity_threshold(claim.threshold_op, claim.threshold, cand)
        held = evidence.Estimate(float(cand.lo), float(cand.lo), float(cand.hi) if cand.hi is not None else None,
                                 cand.method, (cand.n,))
        if d.status in DECISIVE:
            d = rules.rule_sample_size((cand.n,), d, _capacity_min(cand)) or d
        return _verdict(claim, d, scenario, comp, held, cells=cells, notes=[cand.method],
                        held=f"{claim.candidate} {cand.text()}")
    base = evidence.capacity(run, claim.baseline, scenario)
    if base is None:
        return _verdict(claim, Decision(NOT_MEASURED, f"no {scenario} cells for {claim.baseline}",
                                        rule="rule_measured"), scenario, comp, cells=cells)
    est = evidence.capacity_factor(base, cand)
    if claim.kind == "qualitative":
        d = rules.rule_capacity(1.0, 1.0, True, base, cand, est)
    else:
        d = rules.rule_capacity(float(claim.claimed or 1), _high(claim), claim.at_least, base, cand, est)
    if d.status in DECISIVE:
        d = rules.rule_sample_size((base.n, cand.n), d, max(_capacity_min(base), _capacity_min(cand))) or d
    return _verdict(claim, d, scenario, comp, est, cells=[*base.cells, *cells], notes=[base.method],
                    held=f"{claim.baseline} {base.text()}; {claim.candidate} {cand.text()}")


def _capacity_min(held: evidence.Held) -> int:
    return rules.MIN_SEARCHES if held.searched else rules.MIN_DECISIVE


def _judge_check(claim: Claim, scenario: str, checks: Mapping[str, Any] | None) -> Verdict:
    d = rules.rule_analogue((checks or {}).get(claim.check or ""))
    return _verdict(claim, d, scenario, cells=[f"check:{claim.check}"],
                    notes=[claim.notes] if claim.notes else [])


def _thin(values: Sequence[float], seed: int) -> list[float]:
    values = [float(v) for v in values]
    return values if len(values) <= MICRO_MAX_ROUNDS else random.Random(seed).sample(values, MICRO_MAX_ROUNDS)


def _judge_micro(claim: Claim, micro: Mapping[str, Any] | None) -> list[Verdict]:
    if micro is None:
        return [_verdict(claim, Decision(NOT_MEASURED, "no pytest-benchmark JSON given", rule="rule_measured"), "micro")]
    groups: dict[str, dict[str, Any]] = {}
    for bench in micro.get("benchmarks", []):
        group = str(bench.get("group") or bench.get("name"))
        role = (bench.get("extra_info") or {}).get("role")
        if role in ("baseline", "candidate") and any(fnmatch.fnmatchcase(group, p) for p in claim.micro_groups):
            groups.setdefault(group, {}).setdefault(role, bench)
    pairs = {g: p for g, p in sorted(groups.items()) if len(p) == 2}
    runs = [r for r in micro.get("runs", []) if isinstance(r, Mapping)]
    if not pairs:
        return [_verdict(claim, Decision(NOT_MEASURED, "no baseline/candidate benchmark pair in groups "
                                         + ", ".join(claim.micro_groups), rule="rule_measured"), "micro")]
    return [_judge_micro_group(claim, g, p, _run_medians(runs, g)) for g, p in pairs.items()]


def _run_medians(runs: Sequence[Mapping[str, Any]], group: str) -> tuple[list[float], list[float]]:
    """Per independent pytest-benchmark run (micro["runs"]): the group's two medians."""
    base: list[float] = []
    cand: list[float] = []
    for run in runs:
        for bench in run.get("benchmarks", []):
            if str(bench.get("group") or bench.get("name")) == group:
                role = (bench.get("extra_info") or {}).get("role")
                (base if role == "baseline" else cand if role == "candidate" else []).append(
                    float(bench["stats"]["median"]))
    return base, cand


def _judge_micro_group(claim: Claim, group: str, pair: Mapping[str, Any],
                       runs: tuple[list[float], list[float]] = ([], [])) -> Verdict:
    bstats, cstats = pair["baseline"]["stats"], pair["candidate"]["stats"]
    names = [str(pair[r].get("fullname") or pair[r].get("name")) for r in ("baseline", "candidate")]
    notes = ["micro-benchmark: the library call alone, not a request"]
    if runs[0] and runs[1]:
        ratio = evidence.factor("micro_time", runs[0], runs[1])
        if ratio is not None:
            ratio = replace(ratio, method=ratio.method + ", over independent benchmark runs")
            leaning = decide(claim, ratio)
            d = rules.rule_sample_size(ratio.n, leaning) or leaning
            return _verdict(claim, d, f"micro:{group}", est=ratio, cells=names, notes=notes)
    point = float(bstats["median"]) / float(cstats["median"])
    bdata = _thin(bstats.get("data") or [], BOOTSTRAP_SEED)
    cdata = _thin(cstats.get("data") or [], BOOTSTRAP_SEED + 1)
    n = (len(bdata) or int(bstats.get("rounds") or 1), len(cdata) or int(cstats.get("rounds") or 1))
    low = high = se = None
    method = "ratio of medians (no raw timings: no interval)"
    if min(len(bdata), len(cdata)) >= MICRO_MIN_ROUNDS:
        nums = bootstrap_medians(bdata, 2000, BOOTSTRAP_SEED)
        dens = bootstrap_medians(cdata, 2000, BOOTSTRAP_SEED + 1)
        ratios = sorted(a / b for a, b in zip(nums, dens, strict=True) if b > 0)
        low, high = percentile(ratios, 0.025), percentile(ratios, 0.975)
        se = (math.log(high) - math.log(low)) / (2 * 1.96) if low > 0 else None
        method = (f"percentile bootstrap of the ratio of medians over rounds (n ≥ {MICRO_MIN_ROUNDS}; "
                  "rounds of one process: within-run noise only)")
    est = evidence.Estimate(point, low, high, method, n, se, 1000.0 if se else None, math.log(point))
    leaning = decide(claim, est)
    # rounds of one process are one repetition: decisive only over independent runs
    d = Decision(INDICATIVE, f"one benchmark process (n = 1 run; {min(n)} rounds)", leaning.status,
                 rule="rule_sample_size")
    return _verdict(claim, d, f"micro:{group}", est=est, cells=names, notes=notes)


# --- combining parts ----------------------------------------------------------------------------
def _combine(claim: Claim, parts: list[Verdict]) -> Verdict:
    if len(parts) == 1:
        return parts[0]
    decisive = [p for p in parts if p.status in DECISIVE and p.measured is not None]
    left_out = [f"{p.scenario}: {p.status}" + (f" ({p.label})" if p.label else "") for p in parts if p not in decisive]
    cells = tuple(dict.fromkeys(c for p in parts for c in p.evidence_cells))
    base = dict(id=claim.id, unit=_unit(claim), evidence_cells=cells, claimed=claim.claimed_text,
                metric=claim.metric, parts=tuple(parts), claimed_factor=claim.claimed,
                excluded=tuple(e for p in parts for e in p.excluded))
    if not decisive:
        d = rules.rule_combine([Decision(p.status, p.label, p.leaning) for p in parts], None)
        shown = [p for p in parts if p.status == d.status and p.measured is not None and p.measured > 0]
        by_label: dict[str, list[str]] = {}
        for p in parts:
            if p.label:
                by_label.setdefault(p.label, []).append(str(p.scenario))
        label = "; ".join(f"{text} ({', '.join(where)})" for text, where in by_label.items())
        if not shown:
            return Verdict(status=d.status, measured=None, ci95=None, rule="rule_combine", leaning=d.leaning,
                           label=label or None, notes=tuple(left_out), **base)  # type: ignore[arg-type]
        shown_est = _joint(shown) if claim.kind != "threshold" else None
        if shown_est is None:
            head = max(shown, key=lambda p: p.measured or 0.0) if claim.threshold_op in ("<", "<=") \
                else min(shown, key=lambda p: p.measured or 0.0)
            return replace(head, parts=tuple(parts), rule="rule_combine", evidence_cells=cells, label=label or None,
                           notes=(f"figure: {head.scenario} (the least favourable part)", *left_out))
        return Verdict(status=d.status, measured=shown_est.point,
                       ci95=(shown_est.low, shown_est.high) if shown_est.has_interval else None,
                       rule="rule_combine", leaning=decide(claim, shown_est).status, label=label or None,
                       method=shown_est.method, n=shown_est.n, scenario="+".join(str(p.scenario) for p in shown),
                       notes=(f"figure: geometric mean over {', '.join(str(p.scenario) for p in shown)}",
                              *left_out), **base)  # type: ignore[arg-type]
    if claim.kind == "threshold":
        order = {CONTRADICTED: 0, NOT_SUPPORTED: 1, PARTLY: 2, SUPPORTED: 3}
        below = claim.threshold_op in ("<", "<=")
        head = min(decisive, key=lambda p: (order[p.status], -(p.measured or 0) if below else (p.measured or 0)))
        return replace(head, parts=tuple(parts), rule="rule_combine", evidence_cells=cells,
                       notes=(f"decided by {head.scenario} (the least favourable part)", *left_out),
                       excluded=base["excluded"])  # type: ignore[arg-type]
    est = _joint(decisive)
    d = decide(claim, est)
    return Verdict(status=d.status, measured=est.point, ci95=(est.low, est.high), rule="rule_combine",
                   label=d.label, method=est.method, n=est.n, scenario="+".join(str(p.scenario) for p in decisive),
                   notes=(f"geometric mean over {', '.join(str(p.scenario) for p in decisive)}", *left_out),
                   **base)  # type: ignore[arg-type]


def _joint(parts: Sequence[Verdict]) -> evidence.Estimate:
    k = len(parts)
    n = tuple(min(p.n[i] for p in parts if len(p.n) > i) for i in range(min(len(p.n) for p in parts)))
    if all(p.log_se is not None for p in parts):
        mean = sum(math.log(p.measured or 1.0) for p in parts) / k
        se = math.sqrt(sum((p.log_se or 0.0) ** 2 for p in parts)) / k
        from scipy import stats as sps

        df = max(1.0, min(p.df or 1.0 for p in parts))
        half = float(sps.t.ppf(0.975, df)) * se
        return evidence.Estimate(math.exp(mean), math.exp(mean - half), math.exp(mean + half),
                                 "geometric mean of the parts, joint t-interval on the logs", n, se, df, mean)
    lows = [p.ci95[0] if p.ci95 else None for p in parts]
    highs = [p.ci95[1] if p.ci95 else None for p in parts]
    point = math.exp(sum(math.log(max(p.measured or 1e-12, 1e-12)) for p in parts) / k)

    def gmean(xs: list[float | None]) -> float | None:
        if any(x is None or x <= 0 for x in xs):
            return None
        return math.exp(sum(math.log(x) for x in xs if x) / k)

    return evidence.Estimate(point, gmean(lows), gmean(highs),
                             "geometric mean of the parts and of their bounds", n)


# --- entry points --------------------------------------------------------------------------------
def _as_run(results_doc: Mapping[str, Any] | Run) -> Run:
    return results_doc if isinstance(results_doc, Run) else Run.from_json(results_doc)


def judge(claim: Claim, results_doc: Mapping[str, Any] | Run, *, micro: Mapping[str, Any] | None = None,
          checks: Mapping[str, Any] | None = None) -> Verdict:
    """Judge one claim against a results document (micro: a pytest-benchmark JSON; checks: a
    mapping check key → passed/failed/skipped, default the document's own `checks`)."""
    if not claim.testable:
        d = rules.rule_not_testable(claim.reason)
        return Verdict(claim.id, d.status, None, None, "", d.rule, (), claim.claimed_text, label=d.label,
                       notes=(claim.reason or "",))
    run = _as_run(results_doc)
    checks = run.checks if checks is None else checks
    micro = run.micro if micro is None else micro
    parts: list[Verdict] = []
    for scenario in claim.scenarios:
        if claim.metric == "check":
            parts.append(_judge_check(claim, scenario, checks))
        elif scenario == "micro":
            parts.extend(_judge_micro(claim, micro))
        elif claim.metric == "capacity":
            parts.append(_judge_capacity(claim, run, scenario))
        else:
            parts.append(_judge_pair(claim, run, scenario))
    return _combine(claim, parts)


def judge_all(results_doc: Mapping[str, Any] | Run, micro: Mapping[str, Any] | None = None,
              registry: Registry | None = None, *, checks: Mapping[str, Any] | None = None) -> list[Verdict]:
    """Every claim of the registry (default: loadtests/claims.toml), in registry order."""
    reg = registry or load_registry()
    run = _as_run(results_doc)
    return [judge(c, run, micro=micro, checks=checks) for c in reg.claims]


def verdicts_json(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """reports/<run>/verdicts.json: every verdict in full (parts, what was compared, excluded)."""
    return [v.to_dict() for v in verdicts]


def verdicts_markdown(verdicts: Sequence[Verdict], registry: Registry | None = None) -> str:
    from loadtests import verdict_render

    return verdict_render.verdicts_markdown(verdicts, registry or load_registry())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Judge the seed claims against a results JSON.")
    parser.add_argument("results", type=Path, nargs="?", help="results.json of a bench run")
    parser.add_argument("--micro", type=Path, help="pytest-benchmark JSON")
    parser.add_argument("--checks", type=Path, help="JSON mapping check key -> passed/failed")
    parser.add_argument("--json", action="store_true", help="print verdicts as JSON")
    parser.add_argument("--rules", action="store_true", help="print the rules and exit")
    args = parser.parse_args(argv)
    if args.rules or not args.results:
        print(rules_markdown())
        return 0
    registry = load_registry()
    doc = json.loads(args.results.read_text())
    micro = json.loads(args.micro.read_text()) if args.micro else None
    checks = json.loads(args.checks.read_text()) if args.checks else None
    found = judge_all(doc, micro, registry, checks=checks)
    if args.json:
        print(json.dumps(verdicts_json(found), indent=1, ensure_ascii=False))
    else:
        print(verdicts_markdown(found, registry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
