"""Compare two results documents cell by cell (``stackbench compare A.json B.json``).

For every cell id in both runs, each chosen metric (``rps`` and ``p99_ms`` by default; any name
in `loadtests.metrics.METRICS`) is compared: the ratio of the medians (B / A), a two-sided
Mann–Whitney U p-value (n ≥ 4 a side) and a Welch t p-value (n ≥ 2 a side) from
`loadtests.stats`. As asv does, a change is called only when it is both significant and large
enough: p < ``alpha`` (the Mann–Whitney p where it exists, else Welch's) AND
|ratio − 1| ≥ ``min_change`` (5% by default). With a single sample on either side nothing is
judged ("n too small"): one fresh server start and one load run is one sample, and one sample
has no spread to test against.

Cells found in one document only are listed as such; a cell that did not run ("failed",
"refused", "skipped") is listed with its status and not judged — but a cell that ran in A and
failed in B is a regression for the gate ("broken").

The gate (`gate`) turns rows into an exit status: 1 when a cell is worse (or, with
``fail_on="change"``, changed either way), else 0. `fingerprint_differences` names what differs
between the machines/software of two runs (CPU model, cores, Python, package versions, profile,
CPU pinning): the CLI warns, or with ``--strict`` refuses (exit 2), when it is not empty.
Rendering is in `loadtests.compare_render`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from loadtests import stats
from loadtests.metrics import METRICS
from loadtests.sample import Sample

MIN_CHANGE = 0.05
ALPHA = 0.05
DEFAULT_METRICS = ("rps", "p99_ms")
# Short names a user types: `--metric p99` is `p99_ms`.
ALIASES = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "mean": "mean_ms", "latency": "p99_ms",
           "throughput": "rps", "cpu": "cpu_ms_per_request", "rss": "peak_rss"}

Verdict = Literal["better", "worse", "no change", "n too small", "no data"]
Presence = Literal["both", "only A", "only B"]
FailOn = Literal["worse", "change", "never"]


def metric_name(name: str) -> str:
    """The model's metric name for what a user typed (`p99` → `p99_ms`); KeyError if unknown."""
    key = ALIASES.get(name, name)
    if key not in METRICS:
        known = ", ".join([*ALIASES, *METRICS])
        raise KeyError(f"unknown metric {name!r}; known: {known}")
    return key


@dataclass(frozen=True)
class MetricChange:
    """One metric of one cell, A against B."""

    metric: str  # a name in METRICS ("rps": higher is better, "p99_ms": lower is better)
    a: tuple[float, ...]
    b: tuple[float, ...]
    median_a: float | None
    median_b: float | None
    ratio: float | None  # median_b / median_a
    mann_whitney_p: float | None
    welch_p: float | None
    p: float | None  # the p-value the verdict used (Mann–Whitney where defined, else Welch)
    test: str | None  # "mann-whitney" | "welch" | None
    significant: bool
    verdict: Verdict

    @property
    def n_a(self) -> int:
        return len(self.a)

    @property
    def n_b(self) -> int:
        return len(self.b)

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "n_a": self.n_a, "n_b": self.n_b, "median_a": self.median_a,
                "median_b": self.median_b, "ratio": self.ratio, "p": self.p, "test": self.test,
                "mann_whitney_p": self.mann_whitney_p, "welch_p": self.welch_p,
                "significant": self.significant, "verdict": self.verdict,
                "a": list(self.a), "b": list(self.b)}


@dataclass(frozen=True)
class CompareRow:
    cell_id: str
    presence: Presence
    status_a: str | None
    status_b: str | None
    metrics: tuple[MetricChange, ...] = ()
    flags_a: tuple[str, ...] = ()
    flags_b: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def metric(self, name: str) -> MetricChange | None:
        return next((m for m in self.metrics if m.metric == name), None)

    @property
    def rps(self) -> MetricChange | None:
        return self.metric("rps")

    @property
    def p99(self) -> MetricChange | None:
        return self.metric("p99_ms")

    @property
    def significant(self) -> bool:
        return any(m.significant for m in self.metrics)

    @property
    def broken(self) -> bool:
        """Ran in A, did not run in B (crashed, refused): a regression nothing can measure."""
        return self.presence == "both" and self.status_a == "ok" and self.status_b != "ok"

    @property
    def verdict(self) -> str:
        """One word for the cell: the first significant metric's verdict, else the first one's."""
        if self.presence != "both":
            return self.presence
        if self.broken:
            return "broken"
        for metric in self.metrics:
            if metric.significant:
                return metric.verdict
        return self.metrics[0].verdict if self.metrics else "no data"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.cell_id, "presence": self.presence, "status_a": self.status_a,
                "status_b": self.status_b, "verdict": self.verdict, "broken": self.broken,
                "flags_a": list(self.flags_a), "flags_b": list(self.flags_b), "notes": list(self.notes),
                "metrics": {m.metric: m.as_json() for m in self.metrics}}


def _values(cell: Mapping[str, Any], metric: str) -> tuple[float, ...]:
    read = METRICS[metric].read
    out = []
    for raw in cell.get("samples") or []:
        try:
            value = read(Sample.model_validate(raw))
        except ValueError:  # a sample the model refuses is not a number to compare
            value = None
        if value is not None and math.isfinite(value):
            out.append(float(value))
    return tuple(out)


def compare_metric(metric: str, a: Sequence[float], b: Sequence[float], *,
                   higher_is_better: bool, min_change: float = MIN_CHANGE,
                   alpha: float = ALPHA) -> MetricChange:
    """Judge one metric's samples: ratio of medians, both tests, the verdict."""
    a, b = tuple(float(x) for x in a), tuple(float(x) for x in b)
    median_a = stats.median(a) if a else None
    median_b = stats.median(b) if b else None
    ratio = (median_b / median_a) if median_a and median_b is not None else None
    mw = stats.mann_whitney_p(a, b)
    welch = stats.welch_p(a, b)
    if mw is not None:
        p, test = mw, "mann-whitney"
    elif welch is not None and not math.isnan(welch):
        p, test = welch, "welch"
    else:
        p, test = None, None
    verdict: Verdict
    significant = False
    if not a or not b or ratio is None:
        verdict = "no data"
    elif len(a) < 2 or len(b) < 2 or p is None:
        verdict = "n too small"
    else:
        significant = p < alpha and abs(ratio - 1.0) >= min_change
        if not significant:
            verdict = "no change"
        else:
            improved = ratio > 1.0 if higher_is_better else ratio < 1.0
            verdict = "better" if improved else "worse"
    return MetricChange(metric, a, b, median_a, median_b, ratio, mw, welch, p, test,
                        significant, verdict)


def compare(a: Mapping[str, Any], b: Mapping[str, Any], *, metrics: Sequence[str] = DEFAULT_METRICS,
            min_change: float = MIN_CHANGE, alpha: float = ALPHA) -> list[CompareRow]:
    """Rows for every cell of ``a`` and ``b`` (two results documents): cells in both first, in
    A's order, then those only in A, then those only in B."""
    names = [metric_name(m) for m in metrics]
    cells_a = {c["id"]: c for c in a.get("cells") or []}
    cells_b = {c["id"]: c for c in b.get("cells") or []}
    rows: list[CompareRow] = []
    for cid, ca in cells_a.items():
        cb = cells_b.get(cid)
        if cb is None:
            continue
        notes: list[str] = []
        for side, cell in (("A", ca), ("B", cb)):
            if cell.get("status") != "ok":
                notes.append(f"{side} {cell.get('status')}: {cell.get('error') or ''}".strip())
            if "client-bound" in (cell.get("flags") or []):
                notes.append(f"{side} client-bound")
        changes = tuple(
            compare_metric(name, _values(ca, name), _values(cb, name),
                           higher_is_better=METRICS[name].higher_is_better,
                           min_change=min_change, alpha=alpha)
            for name in names)
        rows.append(CompareRow(
            cell_id=cid, presence="both", status_a=ca.get("status"), status_b=cb.get("status"),
            metrics=changes, flags_a=tuple(ca.get("flags") or ()), flags_b=tuple(cb.get("flags") or ()),
            notes=tuple(notes),
        ))
    for cid, ca in cells_a.items():
        if cid not in cells_b:
            rows.append(CompareRow(cid, "only A", ca.get("status"), None,
                                   flags_a=tuple(ca.get("flags") or ())))
    for cid, cb in cells_b.items():
        if cid not in cells_a:
            rows.append(CompareRow(cid, "only B", None, cb.get("status"),
                                   flags_b=tuple(cb.get("flags") or ())))
    return rows


# -- environment fingerprint -------------------------------------------------------------------

def fingerprint(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What must match for two runs' numbers to be comparable: the machine, the software, the
    profile and the CPU pinning (not the git commit: that is what a comparison is about)."""
    env = doc.get("environment") or {}
    machine = env.get("machine") or {}
    settings = doc.get("settings") or {}
    out: dict[str, Any] = {
        "cpu model": machine.get("cpu_model"), "cores": machine.get("cores"),
        "python": env.get("python"), "profile": doc.get("profile"),
        "server cpus": settings.get("server_cpus"), "client cpus": settings.get("client_cpus"),
    }
    for name, version in sorted((env.get("packages") or {}).items()):
        out[f"package {name}"] = version
    return out


def fingerprint_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """One line per fingerprint entry that differs (`python: 3.11.7 → 3.12.1`)."""
    fa, fb = fingerprint(a), fingerprint(b)
    return [f"{key}: {fa.get(key)} → {fb.get(key)}" for key in [*fa, *(k for k in fb if k not in fa)]
            if fa.get(key) != fb.get(key)]


# -- the gate ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GateResult:
    exit_code: int  # 0 pass, 1 regression, 2 refused
    status: Literal["pass", "fail", "refused"]
    failing: tuple[str, ...]  # cell ids (with the metric) that fail the gate
    judged: int  # metric comparisons that had enough samples to be judged
    not_judged: int  # comparisons with "n too small"
    fingerprint: tuple[str, ...]
    reasons: tuple[str, ...]


def control_stacks(doc: Mapping[str, Any]) -> set[str]:
    """Stacks with no app code (floors: the raw servers): what they measure is the machine."""
    return {sid for sid, info in (doc.get("stacks") or {}).items() if (info or {}).get("kind") == "floor"}


def gate(rows: Sequence[CompareRow], *, fail_on: FailOn = "worse",
         fingerprint_diff: Sequence[str] = (), strict: bool = False,
         control: Collection[str] = ()) -> GateResult:
    """The exit status of `stackbench compare --fail-on …`. Strict refuses (2) when the runs'
    fingerprints differ, when a control cell moved (`control`: stacks with no app code, such
    as the raw-server floor every run measures — when it changes, the machine did, and the
    other verdicts are suspect) or when not one comparison could be judged (a gate that cannot
    judge must not pass silently). Control cells never fail the gate themselves."""
    failing: list[str] = []
    moved: list[str] = []
    judged = not_judged = 0
    for row in rows:
        if row.presence != "both":
            continue
        if row.cell_id.split("/", 1)[0] in control:
            moved += [f"{row.cell_id} {m.metric} ×{m.ratio:.3f}" for m in row.metrics if m.significant]
            continue
        if row.broken and fail_on != "never":
            failing.append(f"{row.cell_id} (B {row.status_b})")
        for m in row.metrics:
            if m.verdict == "n too small":
                not_judged += 1
            elif m.verdict != "no data":
                judged += 1
            bad = m.verdict == "worse" or (fail_on == "change" and m.verdict == "better")
            if bad and fail_on != "never":
                failing.append(f"{row.cell_id} {m.metric} {m.verdict} ×{m.ratio:.3f}")
    reasons: list[str] = []
    if fingerprint_diff:
        reasons.append(f"the runs' environments differ ({len(fingerprint_diff)}: "
                       + "; ".join(fingerprint_diff[:5]) + ("; …" if len(fingerprint_diff) > 5 else "") + ")")
    if moved:
        reasons.append("a control cell (no app code) changed: the machine, not the code, moved between "
                       "the runs; rerun before trusting a verdict (" + "; ".join(moved) + ")")
    if judged == 0:
        reasons.append(f"no comparison could be judged ({not_judged} with fewer than 2 samples a side: "
                       "run a profile with repetitions ≥ 2, ≥ 4 for the rank test, e.g. `--profile ci`)")
    if strict and reasons:
        return GateResult(2, "refused", tuple(failing), judged, not_judged, tuple(fingerprint_diff),
                          tuple(reasons))
    if failing:
        return GateResult(1, "fail", tuple(failing), judged, not_judged, tuple(fingerprint_diff),
                          tuple(reasons))
    return GateResult(0, "pass", (), judged, not_judged, tuple(fingerprint_diff), tuple(reasons))


def diff_document(a: Mapping[str, Any], b: Mapping[str, Any], rows: Sequence[CompareRow],
                  result: GateResult, *, metrics: Sequence[str], min_change: float, alpha: float,
                  fail_on: str) -> dict[str, Any]:
    """What `--json diff.json` writes: settings, both runs, every row, the gate's outcome."""
    def run(doc: Mapping[str, Any]) -> dict[str, Any]:
        git = (doc.get("environment") or {}).get("git") or {}
        return {"run_id": doc.get("run_id"), "profile": doc.get("profile"),
                "commit": git.get("commit"), "dirty": git.get("dirty"), "fingerprint": fingerprint(doc)}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return {
        "kind": "stackbench-compare", "version": 1, "a": run(a), "b": run(b),
        "settings": {"metrics": [metric_name(m) for m in metrics], "min_change": min_change,
                     "alpha": alpha, "fail_on": fail_on},
        "fingerprint_differences": list(result.fingerprint),
        "gate": {"status": result.status, "exit_code": result.exit_code, "failing": list(result.failing),
                 "judged": result.judged, "not_judged": result.not_judged, "reasons": list(result.reasons)},
        "verdicts": counts, "cells": [row.as_json() for row in rows],
    }


def parse_change(text: str) -> float:
    """`5%` or `0.05` → 0.05."""
    text = text.strip()
    value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    if not 0 <= value < 10:
        raise ValueError(f"minimum change {text!r} out of range")
    return value
