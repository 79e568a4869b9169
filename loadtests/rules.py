"""The status rules. Each rule is one function; its docstring is the rule, word for word as the
report prints it (`rules_markdown()` assembles them, with the constants filled in).

A rule returns a `Decision` (a status, a label such as "overshoot", and for indicative and
unstable results the status the figures lean to) or None when it does not decide.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtests import evidence, sanity, stats
from loadtests.claims import LIKE_FOR_LIKE_METRICS, METRICS

SUPPORTED = "supported"
PARTLY = "partly supported"
NOT_SUPPORTED = "not supported"
CONTRADICTED = "contradicted"
UNSTABLE = "unstable"
INDICATIVE = "indicative"
NOT_MEASURED = "not measured"
NOT_TESTABLE = "not testable"
ANALOGUE = "analogue"
STATUSES = (SUPPORTED, PARTLY, NOT_SUPPORTED, CONTRADICTED, UNSTABLE, INDICATIVE, NOT_MEASURED,
            NOT_TESTABLE, ANALOGUE)
DECISIVE = (SUPPORTED, PARTLY, NOT_SUPPORTED, CONTRADICTED)

MIN_DECISIVE = 5  # samples a side for a decisive status
MIN_SEARCHES = 2  # capacity searches a side for a decisive status
UNSTABLE_CV = 0.15
OVERSHOOT = 2.0

CONSTANTS = {
    "MIN_DECISIVE": MIN_DECISIVE, "MIN_SEARCHES": MIN_SEARCHES, "UNSTABLE_CV": f"{UNSTABLE_CV:.0%}",
    "NOISY_CV": f"{stats.NOISY_CV:.0%}", "OVERSHOOT": f"{OVERSHOOT:g}",
    "LITTLE_FACTOR": f"{sanity.LITTLE_FACTOR:g}", "OPEN_FRACTION": f"{evidence.OPEN_FRACTION:.0%}",
    "EQUAL_PACE": f"{evidence.EQUAL_PACE:.0%}", "LIKE_FOR_LIKE": ", ".join(LIKE_FOR_LIKE_METRICS),
}


@dataclass(frozen=True)
class Decision:
    status: str
    label: str | None = None
    leaning: str | None = None
    rule: str = ""


def _fmt(x: float) -> str:
    return evidence.format_number(x)


def rule_not_testable(reason: str | None) -> Decision:
    """**not testable**: the registry says why (no Redis, no vector database, no ML model, a
    property of the authors' own code base); no figure is shown."""
    return Decision(NOT_TESTABLE, reason, rule="rule_not_testable")


def rule_analogue(outcome: object) -> Decision:
    """**analogue**: a claim about the authors' own migration (no breaking changes, feature
    parity, identical SM-2 schedules) is answered by this project's own parity or contract
    tests, which stand in for the authors' result: passed → analogue (never "supported": it is
    our code, not theirs); failed → not supported; absent or skipped → not measured."""
    if outcome is None or outcome == "skipped":
        return Decision(NOT_MEASURED, "check not reported" + (" (skipped)" if outcome else ""),
                        rule="rule_analogue")
    passed = outcome is True or outcome == "passed"
    return Decision(ANALOGUE if passed else NOT_SUPPORTED,
                    "our parity tests passed" if passed else "our parity tests failed", rule="rule_analogue")


def rule_measured(comp: evidence.Comparison) -> Decision | None:
    """**not measured**: the cells a claim needs are missing, failed, refused or skipped (a
    premise level skipped, a quick profile, a stack that did not start), or exist only at
    another load level; the row says which and lists the levels that were run."""
    if comp.problem:
        return Decision(NOT_MEASURED, comp.problem, rule="rule_measured")
    return None


def rule_sanity(comp: evidence.Comparison) -> Decision | None:
    """**Sanity first**: every cell a verdict uses passes the sanity checks (Little's law
    within ×/÷ {LITTLE_FACTOR} for closed loops, no timeouts, p50 ≥ the CPU cost of a request;
    see *Sanity checks*). A failing cell is shown with its reason and excluded: the part is
    **not measured**."""
    if comp.excluded:
        return Decision(NOT_MEASURED, "excluded: " + "; ".join(f"{c}: {r}" for c, r in comp.excluded),
                        rule="rule_sanity")
    return None


def rule_like_for_like(comp: evidence.Comparison) -> Decision | None:
    """**Like for like**: per-core and memory claims (metrics {LIKE_FOR_LIKE}) are judged only
    where both sides ran the same number of serving processes on the same number of cores, as
    read from each cell's setup (schema-1 documents: inferred from the stack description and
    the processes seen). Otherwise the row prints both setups and the part is **not measured**:
    three gunicorn workers against one uvicorn process measure the worker count, not the
    framework."""
    if comp.metric in LIKE_FOR_LIKE_METRICS and comp.like_for_like is False:
        sides = " vs ".join(s.setup for s in (comp.baseline, comp.candidate) if s)
        return Decision(NOT_MEASURED, f"setups not like for like ({sides})", rule="rule_like_for_like")
    return None


def rule_stability(comp: evidence.Comparison, leaning: Decision) -> Decision | None:
    """**unstable**: the judged metric's coefficient of variation (not req/s's: the metric the
    verdict reads) is above {UNSTABLE_CV} on either side: no verdict, the figure is shown with
    the status it leans to. A CV above {NOISY_CV} is reported as noise in the row."""
    if comp.cv is not None and comp.cv > UNSTABLE_CV:
        return Decision(UNSTABLE, f"{comp.metric} CV {comp.cv:.0%} > {UNSTABLE_CV:.0%}",
                        leaning.status, rule="rule_stability")
    return None


def rule_sample_size(n: Sequence[int], leaning: Decision, minimum: int = MIN_DECISIVE) -> Decision | None:
    """**indicative**: fewer than {MIN_DECISIVE} samples on a side can never make a claim
    supported or contradicted, whatever the margin: the row shows the figure, its interval
    where n ≥ 2, and the status it leans to. Capacity needs {MIN_SEARCHES} searches a side
    (each search brackets the limit with probes on fresh servers), or {MIN_DECISIVE} samples
    per level of a grid. Micro-benchmark rounds of one process are one repetition: micro
    verdicts are decisive only over {MIN_DECISIVE} independent benchmark runs (micro.runs).
    The quick profile (one repetition) therefore yields only indicative results."""
    if min(n) < minimum:
        return Decision(INDICATIVE, f"n = {'/'.join(map(str, n))} < {minimum}", leaning.status,
                        rule="rule_sample_size")
    return None


def rule_factor(claimed: float, claimed_high: float, at_least: bool, est: evidence.Estimate) -> Decision:
    """**Factor claims** ("3-5x", "20% less" = 1.25x, "2k → 10k req/s" = 5x; > 1 means the
    candidate is better). With the 95% interval [low, high] of the measured factor:
    **contradicted** when high < 1 (a real effect the other way); **not supported** when the
    interval contains 1 (no effect distinguishable from noise); **supported** when low reaches
    the claimed factor (a range's low end); **partly supported** when 1 < low < the claim (a
    real effect in the claimed direction, smaller), labelled *undershoot* with both figures,
    or *not shown at the claimed size* when the point estimate reaches the claim but the
    interval's low end does not (too few or too noisy samples to say it is that large).
    A claimed figure is a claim of at least that effect, so exceeding it supports it; when low
    exceeds {OVERSHOOT}× the claim's upper end the row is labelled *overshoot* ("11x measured
    against 4x claimed"): the direction and the minimum hold, the claimed size does not (look
    at the setups). The headline figure is the one inside this interval, so the word and the
    figure always point the same way."""
    low = est.low if est.low is not None else est.point
    high = est.high if est.high is not None else (math.inf if est.low is not None else est.point)
    measured = f"{_fmt(est.point)}x measured against {_fmt(claimed)}x claimed"
    if high < 1:
        return Decision(CONTRADICTED, measured, rule="rule_factor")
    if low <= 1:
        return Decision(NOT_SUPPORTED, None, rule="rule_factor")
    if low >= claimed * (1 - 1e-9):
        over = not at_least and low > OVERSHOOT * claimed_high
        return Decision(SUPPORTED, f"overshoot: {measured}" if over else None, rule="rule_factor")
    if est.point >= claimed:
        return Decision(PARTLY, f"not shown at the claimed size: {measured}, the interval's low end "
                                f"{_fmt(low)}x", rule="rule_factor")
    return Decision(PARTLY, f"undershoot: {measured}", rule="rule_factor")


def rule_direction(est: evidence.Estimate) -> Decision:
    """**Direction claims** ("lower memory", "more efficient", claimed = 1): **supported** when
    the interval lies above 1, **contradicted** when it lies below 1, **not supported** when it
    contains 1."""
    d = rule_factor(1.0, 1.0, True, est)
    return Decision(d.status, None, rule="rule_direction")


def rule_threshold(op: str, threshold: float, est: evidence.Estimate, unit: str) -> Decision:
    """**Threshold claims** (one stack against a fixed value, "< 200 ms"): judged on the
    candidate's value with its interval (geometric mean, t-interval on the logs). For "< T":
    **supported** when the interval's upper end < T, **contradicted** when its lower end ≥ T,
    **not supported** when it straddles T; "≥ T" mirrored. Absolute thresholds hold for this
    machine only."""
    low = est.low if est.low is not None else est.point
    high = est.high if est.high is not None else est.point
    below = op in ("<", "<=")
    good, bad = (high < threshold, low >= threshold) if below else (low >= threshold, high < threshold)
    status = SUPPORTED if good else CONTRADICTED if bad else NOT_SUPPORTED
    return Decision(status, f"{_fmt(est.point)} {unit} against {op} {_fmt(threshold)} {unit}", rule="rule_threshold")


def rule_capacity(claimed: float, claimed_high: float, at_least: bool, base: evidence.Held,
                  cand: evidence.Held, est: evidence.Estimate | None) -> Decision:
    """**Capacity claims** (users, subscribers, connections held): each stack's capacity is an
    interval from a search (held at `held_lo`, failed at `failed_hi`; schema-1 documents: the
    grid of levels tried), and the factor's interval is [candidate held ÷ baseline failed,
    candidate failed ÷ baseline held]. An end that cannot be bounded is printed as
    such ("baseline held < 10, candidate ≥ 100"). **supported** only when the lower end reaches
    the claim; **contradicted** when the candidate failed at or below what the baseline held;
    **not measured** when the baseline's limit was not found (it held every level tried), since
    then the factor has no lower bound; otherwise the factor rule on the interval."""
    label = f"baseline {base.text()}, candidate {cand.text()}"
    if cand.hi is not None and cand.hi <= base.lo:
        return Decision(CONTRADICTED, label, rule="rule_capacity")
    if base.hi is None or est is None:
        return Decision(NOT_MEASURED, f"{label}: the baseline's limit was not found, no lower bound "
                                      "on the factor", rule="rule_capacity")
    d = rule_factor(claimed, claimed_high, at_least, est)
    return Decision(d.status, f"{label}" + (f"; {d.label}" if d.label else ""), rule="rule_capacity")


def rule_capacity_threshold(op: str, threshold: float, held: evidence.Held) -> Decision:
    """**Capacity thresholds** ("1000+ concurrent users"): **supported** when the candidate held
    ≥ T; **contradicted** when it failed at a level ≤ T; **not measured** when it never failed
    and no level ≥ T was tried; **not supported** when T lies between what it held and where it
    failed (the search's resolution cannot tell)."""
    text = held.text()
    if held.lo >= threshold:
        return Decision(SUPPORTED, text, rule="rule_capacity_threshold")
    if held.hi is not None and held.hi <= threshold:
        return Decision(CONTRADICTED, text, rule="rule_capacity_threshold")
    if held.hi is None and held.max_tried < threshold:
        return Decision(NOT_MEASURED, f"{text}: no level ≥ {_fmt(threshold)} tried", rule="rule_capacity_threshold")
    return Decision(NOT_SUPPORTED, text, rule="rule_capacity_threshold")


def rule_error_premise(base_errors: float) -> Decision | None:
    """**Error-rate claims** need their premise, a baseline that fails: with no baseline errors
    there is nothing to reduce and the claim is **not measured** (premise not reproduced), not
    "not supported". Where the candidate had no errors its rate is bounded by the rule of three
    (< 3 ÷ requests at 95%), which bounds the factor from below; it has no upper bound."""
    if base_errors <= 0:
        return Decision(NOT_MEASURED, "premise not reproduced: the baseline had no errors",
                        rule="rule_error_premise")
    return None


def rule_combine(parts: Sequence[Decision], joint: Decision | None) -> Decision:
    """**Multi-part claims** (one claim over several scenarios or benchmark groups): the decisive
    parts (supported, partly, not supported, contradicted) are combined into one factor, the
    geometric mean of the parts' factors with a joint interval (mean of the log ratios, standard
    error √(Σ se²)/k, t with the smallest part's degrees of freedom), and the factor rule is
    applied to it: the headline figure is that combined figure, the one that decided. Threshold
    claims hold only if every decisive part holds: the least favourable part decides and is the
    headline. Parts that are not decisive (not measured, unstable, indicative) are listed and
    left out; with no decisive part the claim is indicative if any part is, else unstable if
    any part is, else not measured."""
    if joint is not None:
        return joint
    statuses = [p.status for p in parts]
    for status in (INDICATIVE, UNSTABLE):
        if status in statuses:
            leaning = [p.leaning for p in parts if p.status == status and p.leaning]
            return Decision(status, None, leaning[0] if leaning else None, rule="rule_combine")
    return Decision(NOT_MEASURED, None, rule="rule_combine")


# The rules in the order they apply, then the functions whose docstrings state the method.
RULES: tuple[Callable[..., object], ...] = (
    rule_not_testable, rule_analogue, rule_measured, rule_sanity, rule_like_for_like,
    rule_sample_size, rule_stability, rule_factor, rule_direction, rule_threshold,
    rule_capacity, rule_capacity_threshold, rule_error_premise, rule_combine,
)
METHOD: tuple[Callable[..., object], ...] = (
    evidence.candidates, evidence.default_level, evidence.factor, evidence.value_estimate,
    evidence.capacity, evidence.capacity_factor, evidence.sweep_rows,
)


def _doc(fn: Callable[..., object]) -> str:
    text = inspect.cleandoc(fn.__doc__ or "")
    for name, value in CONSTANTS.items():
        text = text.replace("{" + name + "}", str(value))
    return " ".join(text.split())


def rules_markdown() -> str:
    """The rules as Markdown, generated from the rule functions' docstrings."""
    rules = "\n".join(f"{i}. {_doc(fn)}" for i, fn in enumerate(RULES, 1))
    method = "\n".join(f"- `{fn.__name__}`: {_doc(fn)}" for fn in METHOD)
    metrics = "\n".join(f"- `{m.name}` ({'higher' if m.higher_is_better else 'lower'} is better"
                        f"{', ' + m.unit if m.unit else ''}): {m.reads}"
                        for m in METRICS.values() if m.name not in ("check", "none"))
    sanity_doc = " ".join(inspect.cleandoc(sanity.__doc__ or "").split("\n\n", 1)[-1].split())
    return (
        "## How claims are judged\n\n"
        f"Statuses: {', '.join(STATUSES)}. Ratios, not absolute numbers, carry across machines: "
        "every verdict is decided on a ratio between two stacks measured in the same run (or, "
        "for thresholds, on a value stated as machine-bound).\n\n"
        f"### The rules, in the order they apply\n\n{rules}\n\n"
        f"### Which cells, which level, which statistics\n\n{method}\n\n"
        f"### Sanity checks\n\n{sanity_doc}\n\n"
        f"### Metrics read from the results document\n\n{metrics}\n"
    )
