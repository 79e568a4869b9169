"""The claims registry (claims.toml) and the verdict engine.

`load_registry()` reads and validates loadtests/claims.toml: one entry per quantitative claim
of the five migration documents, with the stacks and scenarios that reproduce the document's
setup. `judge(claim, results_doc)` turns one results document (RESULTS_SCHEMA.md) into a
`Verdict` for one claim; `judge_all()` does every claim; `rules_markdown()` returns the rules,
word for word as the code applies them, for the report.

Statistics: a percentile bootstrap of the ratio of medians (seeded, so a report is
reproducible; the resampling and percentile helpers are loadtests/stats.py's, with this module's
own seed). Another interval function (e.g. from loadtests/stats.py) can be passed as
`ratio_ci=` to `judge`/`judge_all`; it must take (numerator samples, denominator samples) and
return a 95% interval of median(numerator)/median(denominator), or None when it cannot.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadtests.stats import bootstrap_median_interval, bootstrap_medians, median, percentile

REGISTRY_PATH = Path(__file__).with_name("claims.toml")
REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_ENV = "STACKBENCH_SEEDS"

SUPPORTED = "supported"
PARTLY = "partly supported"
NOT_SUPPORTED = "not supported"
NOT_TESTABLE = "not testable"
NOT_MEASURED = "not measured"
STATUSES = (SUPPORTED, PARTLY, NOT_SUPPORTED, NOT_TESTABLE, NOT_MEASURED)

# Scenario names shared with the harness, plus three judged outside the load tests:
# micro (pytest-benchmark JSON), sm2 and contract (named test-suite checks).
LOAD_SCENARIOS = ("config", "card", "due", "review", "chat", "sse-fanout", "ws", "journey")
SCENARIOS = (*LOAD_SCENARIOS, "micro", "sm2", "contract")
CHECK_SCENARIOS = ("sm2", "contract")
KINDS = ("ratio", "absolute", "threshold", "qualitative")
THRESHOLD_OPS = ("<", "<=", ">", ">=")

STACKS = (
    "flask-gunicorn-sync",
    "flask-gunicorn-gthread",
    "flask-gunicorn-gevent",
    "flask-waitress",
    "flask-granian",
    "rest-uvicorn",
    "rest-uvicorn-h11",
    "rest-granian",
    "rest-gunicorn-uvicorn",
    "graphql-uvicorn",
    "graphql-granian",
    "hello-fastapi",
    "hello-flask",
    "hello-strawberry",
)
FLOOR_PREFIXES = ("raw-asgi-", "raw-wsgi-")

# Drivers tried first for each scenario (any other driver present is tried afterwards).
DEFAULT_DRIVERS: dict[str, tuple[str, ...]] = {
    "config": ("wrk", "openloop"),
    "card": ("wrk", "openloop"),
    "due": ("wrk", "openloop"),
    "review": ("wrk", "openloop"),
    "chat": ("chat",),
    "sse-fanout": ("sse",),
    "ws": ("ws",),
    "journey": ("locust",),
}

MIN_SAMPLES = 3  # fewer samples per side: no interval, point estimate only
NOISE_MARGIN = 0.05  # with no interval, "better" needs a factor >= 1 + this
SUSTAIN_MAX_ERROR_RATE = 0.01
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20250115
CLOSED_ONLY_METRICS = ("rps", "rps_per_core")
MICRO_MAX_ROUNDS = 5000  # micro-benchmark rounds per side fed to the bootstrap (seeded thinning)

RatioInterval = Callable[[Sequence[float], Sequence[float]], "tuple[float, float] | None"]


class RegistryError(ValueError):
    """The registry file is malformed; `.problems` lists every problem found."""

    def __init__(self, problems: list[str]):
        super().__init__("claims registry invalid:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    reads: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("rps", "req/s", True, "samples[].rps"),
        Metric("p50_ms", "ms", False, "samples[].latency_ms.p50"),
        Metric("p90_ms", "ms", False, "samples[].latency_ms.p90"),
        Metric("p99_ms", "ms", False, "samples[].latency_ms.p99"),
        Metric(
            "mean_ms",
            "ms",
            False,
            "samples[].latency_ms.mean; where a driver records no mean, latency_ms.p50 "
            "stands in (said in the verdict)",
        ),
        Metric("ttft_p50_ms", "ms", False, "samples[].extra.ttft_ms.p50 (time to first token)"),
        Metric(
            "peak_rss", "bytes", False, "samples[].server_peak_rss_bytes (all server processes)"
        ),
        Metric(
            "rps_per_core",
            "req/s per core",
            True,
            "samples[].rps / (samples[].server_cpu_pct / 100)",
        ),
        Metric(
            "error_rate",
            "errors per request",
            False,
            "sum(samples[].errors.*) / samples[].requests",
        ),
        Metric("connects_per_s", "connections/s", True, "samples[].extra.connects_per_s"),
        Metric(
            "max_sustained",
            "users",
            True,
            "samples[].extra.max_sustained, else derived from the cells (see rules)",
        ),
        Metric("micro_time", "s per call", False, "pytest-benchmark benchmarks[].stats"),
        Metric("check", "", True, "checks[<key>] = passed | failed | skipped"),
        Metric("none", "", True, "nothing (claim not testable)"),
    )
}


@dataclass(frozen=True)
class Source:
    file: str
    title: str
    documented_setup: str
    baseline: str
    candidate: str
    scaling: str


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    source_title: str
    quote: str
    metric: str
    scenarios: tuple[str, ...]
    kind: str
    claimed_text: str
    testable: bool
    also_quoted: tuple[str, ...] = ()
    baseline: str | None = None
    candidate: str | None = None
    claimed: float | None = None
    claimed_range: tuple[float, float] | None = None
    claimed_baseline: str | None = None
    claimed_candidate: str | None = None
    threshold_op: str | None = None
    threshold: float | None = None
    concurrency: int | None = None
    driver: str | None = None
    mode: str | None = None
    micro_groups: tuple[str, ...] = ()
    check: str | None = None
    reason: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Registry:
    sources: dict[str, Source]
    claims: tuple[Claim, ...]

    def by_id(self, claim_id: str) -> Claim:
        for claim in self.claims:
            if claim.id == claim_id:
                return claim
        raise KeyError(claim_id)


@dataclass(frozen=True)
class Verdict:
    """One claim judged against one results document.

    measured: the improvement factor (> 1: the candidate is better) for ratio, absolute and
    qualitative claims; the candidate's own value (in `unit`) for threshold claims.
    ci95: its 95% interval, None where fewer than MIN_SAMPLES samples per side exist.
    absolutes: medians of both stacks in the metric's unit (they do not carry across machines).
    parts: one verdict per scenario when a claim spans several.
    """

    id: str
    status: str
    measured: float | None
    ci95: tuple[float, float] | None
    unit: str
    rule: str
    evidence_cells: tuple[str, ...]
    claimed: str = ""
    scenario: str | None = None
    absolutes: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    parts: tuple[Verdict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return "inf" if value > 0 else "-inf"
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- rules (as data)
RULES: dict[str, str] = {
    "ratio": (
        "Measured factor = ratio of the two stacks' medians, oriented so > 1 means the candidate "
        "is better (candidate/baseline for req/s, users, connections/s; baseline/candidate for "
        "latency, memory, errors). **supported**: the 95% interval's lower bound ≥ the claimed "
        "factor (a range such as 3-5x is judged by its low end). **partly supported**: the lower "
        "bound > 1 (the candidate is better) but below the claim. **not supported**: the interval "
        "includes 1 or lies below it."
    ),
    "absolute": (
        "Stated as absolutes (e.g. 200 ms → 50 ms): judged exactly like a ratio claim on the "
        "factor the absolutes imply; both stacks' measured absolutes are shown beside the "
        "claimed ones, but absolutes depend on the machine and are not judged."
    ),
    "threshold": (
        "One stack (the candidate) against a fixed value. For '< T': **supported** when the "
        "interval's upper bound < T; **partly supported** when the median < T but the interval "
        "reaches T; **not supported** when the median ≥ T. For '≥ T' mirrored on the lower bound. "
        "For a sustained-users threshold, **not measured** when the harness never tried a level "
        "≥ T and the candidate held every level it tried. Absolute thresholds hold for this "
        "machine only."
    ),
    "qualitative": (
        'Direction only ("lower memory", "more efficient"). **supported**: the factor\'s 95% '
        "interval lies above 1; **not supported** otherwise (no difference shown, or the "
        "candidate is worse). Check claims (sm2, contract): **supported** when the named test "
        "check passed, **not supported** when it failed, **not measured** when absent."
    ),
}

GENERAL_RULES = f"""\
- Statuses: {", ".join(STATUSES)}. *not testable*: the registry says why (no Redis, no vector
  database, no ML model, a property of the authors' own code base). *not measured*: testable,
  but the results document lacks the cells (a quick profile, a skipped or failed stack).
- **Ratios, not absolute numbers, carry across machines.** Every verdict is decided on a
  ratio between two stacks measured in the same run on the same machine (or, for thresholds,
  on a value stated as machine-bound). Absolute req/s and milliseconds from the documents and
  from this 2-core machine are printed side by side for orientation only.
- Worker counts: every stack runs 1 worker on one pinned server core, the load generator on
  the other; a document's setup (e.g. gunicorn gevent 2 workers → uvicorn 4 workers) is
  scaled to one worker each, i.e. compared per core. Each source's scaling note says how.
- Samples: one fresh server start + one load run is one sample. Interval: 95% percentile
  bootstrap ({BOOTSTRAP_RESAMPLES} resamples, fixed seed) of the ratio of medians, resampling
  each stack's samples independently. With fewer than {MIN_SAMPLES} samples on either side
  there is no interval: the point estimate decides, and "better" then needs a factor
  ≥ {1 + NOISE_MARGIN:.2f} (a {NOISE_MARGIN:.0%} noise margin); the verdict says so.
- Cells compared: status "ok" cells of the baseline and candidate stacks for the scenario,
  with the same driver, mode, concurrency and target rate. Driver order: the claim's, then
  {", ".join(f"{k}: {'/'.join(v)}" for k, v in DEFAULT_DRIVERS.items())}; mode: the claim's,
  then closed, then open (req/s claims: closed only, an open-loop cell's req/s being its target
  rate). Concurrency: the common level nearest the claim's (the document's
  setup, e.g. wrk -c100 or 100 locust users); otherwise the highest level both stacks served.
  Flags on those cells (client-bound, noisy, errors, writes-mismatch) are repeated in the
  verdict; a client-bound candidate makes its factor a lower bound.
- Claims spanning several scenarios are judged per scenario; the claim is **supported** when
  every measured scenario is, **not supported** when none is supported or partly, otherwise
  **partly supported**. The headline figure is the least favourable scenario's.
- Sustained users/connections (metric max_sustained): the median of samples[].extra
  .max_sustained of the stack's cell for the scenario (the driver's largest N held within
  the latency objective without errors; extra.max_tried, if present, the largest N tried;
  with several such cells, the one with the largest median).
  Without that key: the largest concurrency among the stack's "ok" cells whose error rate is
  ≤ {SUSTAIN_MAX_ERROR_RATE:.0%}, that carry no "errors" flag and whose extra.slo_met (if
  present) is true; no interval then. A stack that held the largest level tried has a lower
  bound only; if both did, the ratio is **not measured**.
- Error-rate claims: if neither stack had errors there is nothing to reduce: **not
  supported** (the premise, a failing baseline, was not reproduced).
- Conversions: "N% less / faster / reduction" of a time or size = factor 1/(1 − N/100)
  (the documents' own arithmetic: 150 → 100 ms is their "33% faster"); "N% more" = 1 + N/100.
"""

MICRO_RULES = f"""\
- Micro claims read a pytest-benchmark JSON (`pytest benchmarks --benchmark-json=FILE`, see
  benchmarks/test_micro.py). The claim names benchmark groups (`micro_groups`, fnmatch
  patterns such as `validate-dict-*`); in each group the member with
  `extra_info["role"] == "baseline"` (pydantic.v1 twin, stdlib json) is compared with the one
  tagged `"candidate"` (pydantic v2, orjson). Each group is one part, combined like scenarios.
  Factor = baseline median / candidate median time per call. Interval: the same bootstrap over
  `stats.data` (per-round timings; at most {MICRO_MAX_ROUNDS} rounds per side, seeded
  thinning); without raw data no interval, the point rule applies and the verdict quotes the
  IQR bracket [q1_base/q3_cand, q3_base/q1_cand]. Rounds of one process are not independent
  runs: the interval covers within-run noise only.
- Check claims read `checks` (argument of judge_all, or results_doc["checks"]): a mapping
  from check key to "passed" / "failed" / "skipped" (or true/false). Keys: `sm2-parity`
  (SM-2 parity and property tests), `contract-parity` (Flask and FastAPI satisfy one
  OpenAPI contract).
"""


def rules_markdown() -> str:
    """The verdict rules as Markdown, for the report."""
    kinds = "\n".join(f"- **{kind}**: {text}" for kind, text in RULES.items())
    metrics = "\n".join(
        f"- `{m.name}` ({'higher' if m.higher_is_better else 'lower'} is better"
        f"{', ' + m.unit if m.unit else ''}): {m.reads}"
        for m in METRICS.values()
        if m.name not in ("check", "none")
    )
    return (
        "## How claims are judged\n\n"
        f"{GENERAL_RULES}\n### By kind of claim\n\n{kinds}\n\n"
        f"### Metrics read from the results document\n\n{metrics}\n\n"
        f"### Micro-benchmarks and checks\n\n{MICRO_RULES}"
    )


# --------------------------------------------------------------------------- registry
_REQUIRED = ("id", "source", "quote", "metric", "scenarios", "kind", "claimed_text", "testable")
_CLAIM_FIELDS = {f for f in Claim.__dataclass_fields__ if f != "source_title"}
_SOURCE_FIELDS = set(Source.__dataclass_fields__)
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def known_stack(stack: str) -> bool:
    return stack in STACKS or any(
        stack.startswith(p) and len(stack) > len(p) for p in FLOOR_PREFIXES
    )


def validate_registry_doc(doc: Mapping[str, Any]) -> list[str]:
    """Every problem in a parsed claims.toml (empty list: valid)."""
    problems: list[str] = []
    if doc.get("schema") != 1:
        problems.append("schema must be 1")
    files: set[str] = set()
    for i, src in enumerate(doc.get("source", [])):
        where = f"source[{i}]"
        extra = set(src) - _SOURCE_FIELDS
        if extra:
            problems.append(f"{where}: unknown fields {sorted(extra)}")
        for key in _SOURCE_FIELDS:
            if not isinstance(src.get(key), str) or not src.get(key):
                problems.append(f"{where}: missing {key}")
        if src.get("file") in files:
            problems.append(f"{where}: duplicate file {src.get('file')}")
        files.add(src.get("file", ""))
        for key in ("baseline", "candidate"):
            if isinstance(src.get(key), str) and not known_stack(src[key]):
                problems.append(f"{where}: unknown stack {src[key]!r}")
    ids: set[str] = set()
    claims = doc.get("claim", [])
    if not claims:
        problems.append("no [[claim]] entries")
    for i, raw in enumerate(claims):
        cid = raw.get("id", f"#{i}")
        where = f"claim {cid}"
        extra = set(raw) - _CLAIM_FIELDS
        if extra:
            problems.append(f"{where}: unknown fields {sorted(extra)}")
        for key in _REQUIRED:
            if key not in raw:
                problems.append(f"{where}: missing {key}")
        if not isinstance(cid, str) or not _SLUG.match(cid):
            problems.append(f"{where}: id must be a lowercase slug")
        if cid in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(cid)
        if raw.get("source") not in files:
            problems.append(f"{where}: unknown source {raw.get('source')!r}")
        if not isinstance(raw.get("quote"), str) or not raw.get("quote", "").strip():
            problems.append(f"{where}: empty quote")
        kind, metric = raw.get("kind"), raw.get("metric")
        if kind not in KINDS:
            problems.append(f"{where}: kind {kind!r} not in {KINDS}")
        if metric not in METRICS:
            problems.append(f"{where}: metric {metric!r} not in {sorted(METRICS)}")
        scenarios = raw.get("scenarios", [])
        if not isinstance(scenarios, list):
            problems.append(f"{where}: scenarios must be a list")
            scenarios = []
        for scenario in scenarios:
            if scenario not in SCENARIOS:
                problems.append(f"{where}: unknown scenario {scenario!r}")
        if raw.get("testable") is False:
            if not str(raw.get("reason", "")).strip():
                problems.append(f"{where}: testable = false needs a reason")
            continue
        if raw.get("testable") is not True:
            problems.append(f"{where}: testable must be true or false")
            continue
        problems.extend(_validate_testable(where, raw, kind, metric, scenarios))
    return problems


def _validate_testable(
    where: str, raw: Mapping[str, Any], kind: Any, metric: Any, scenarios: list[Any]
) -> list[str]:
    problems: list[str] = []
    if not scenarios:
        problems.append(f"{where}: a testable claim needs scenarios")
    if metric == "none":
        problems.append(f"{where}: a testable claim needs a metric")
    if metric == "check":
        if not raw.get("check"):
            problems.append(f"{where}: metric check needs a check key")
        if any(s not in CHECK_SCENARIOS for s in scenarios):
            problems.append(f"{where}: metric check only with scenarios {CHECK_SCENARIOS}")
    elif "micro" in scenarios:
        if scenarios != ["micro"] or metric != "micro_time":
            problems.append(f"{where}: micro claims use scenarios = ['micro'], metric micro_time")
        groups = raw.get("micro_groups")
        if (
            not isinstance(groups, list)
            or not groups
            or not all(isinstance(g, str) and g for g in groups)
        ):
            problems.append(f"{where}: micro claims need micro_groups (a list of patterns)")
    else:
        if any(s in CHECK_SCENARIOS for s in scenarios):
            problems.append(f"{where}: scenarios {CHECK_SCENARIOS} need metric check")
        for key in ("baseline", "candidate"):
            stack = raw.get(key)
            if not isinstance(stack, str) or not known_stack(stack):
                problems.append(f"{where}: {key} {stack!r} is not a known stack id")
    if kind in ("ratio", "absolute", "qualitative") and metric != "check":
        claimed = raw.get("claimed")
        if not isinstance(claimed, int | float) or claimed <= 0:
            problems.append(f"{where}: claimed must be a positive number")
        elif kind == "qualitative" and claimed != 1:
            problems.append(f"{where}: qualitative claims have claimed = 1")
    if kind == "absolute" and not (raw.get("claimed_baseline") and raw.get("claimed_candidate")):
        problems.append(f"{where}: absolute claims need claimed_baseline and claimed_candidate")
    if kind == "threshold":
        if raw.get("threshold_op") not in THRESHOLD_OPS:
            problems.append(f"{where}: threshold_op must be one of {THRESHOLD_OPS}")
        if not isinstance(raw.get("threshold"), int | float):
            problems.append(f"{where}: threshold must be a number")
    rng = raw.get("claimed_range")
    if rng is not None and (
        not isinstance(rng, list)
        or len(rng) != 2
        or not all(isinstance(x, int | float) for x in rng)
        or rng[0] > rng[1]
        or not rng[0] * (1 - 1e-3) <= float(raw.get("claimed", rng[0])) <= rng[1] * (1 + 1e-3)
    ):
        problems.append(f"{where}: claimed_range must be [low, high] around claimed")
    if raw.get("mode") not in (None, "closed", "open"):
        problems.append(f"{where}: mode must be closed or open")
    return problems


def load_registry(path: Path | str | None = None) -> Registry:
    """Read and validate claims.toml; raise RegistryError listing every problem."""
    doc = tomllib.loads(Path(path or REGISTRY_PATH).read_text(encoding="utf-8"))
    problems = validate_registry_doc(doc)
    if problems:
        raise RegistryError(problems)
    sources = {s["file"]: Source(**s) for s in doc["source"]}
    claims = []
    for raw in doc["claim"]:
        values = dict(raw)
        values["scenarios"] = tuple(values.get("scenarios", ()))
        values["also_quoted"] = tuple(values.get("also_quoted", ()))
        values["micro_groups"] = tuple(values.get("micro_groups", ()))
        if "claimed_range" in values:
            values["claimed_range"] = tuple(float(x) for x in values["claimed_range"])
        for key in ("claimed", "threshold"):
            if key in values:
                values[key] = float(values[key])
        claims.append(Claim(source_title=sources[raw["source"]].title, **values))
    return Registry(sources=sources, claims=tuple(claims))


def seeds_dir() -> Path:
    """Where the seed documents live: $STACKBENCH_SEEDS, else ../shared/seeds from the repo."""
    env = os.environ.get(SEEDS_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "seeds"


def check_quotes(registry: Registry, seeds: Path | None = None) -> list[str]:
    """Quotes (and repeated quotes) that do not occur verbatim in their seed file."""
    folder = seeds or seeds_dir()
    problems: list[str] = []
    texts: dict[str, str] = {}
    for claim in registry.claims:
        if claim.source not in texts:
            path = folder / claim.source
            if not path.is_file():
                problems.append(f"{claim.id}: seed file {path} missing")
                texts[claim.source] = ""
                continue
            texts[claim.source] = path.read_text(encoding="utf-8")
        text = texts[claim.source]
        if not text:
            continue
        for quote in (claim.quote, *claim.also_quoted):
            if quote not in text:
                problems.append(f"{claim.id}: not verbatim in {claim.source}: {quote!r}")
    return problems


def display_quote(text: str) -> str:
    """Repair UTF-8 text that was decoded as Mac Roman or cp1252 ("‚Üí", "â†’" → "→").

    Returns the text unchanged when it is not such mojibake (plain ASCII, or real Unicode)."""
    for codec in ("mac_roman", "cp1252"):
        try:
            fixed = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != text:
            return fixed
    return text


# --------------------------------------------------------------------------- statistics
def bootstrap_ratio_ci(
    numerator: Sequence[float],
    denominator: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of median(numerator) / median(denominator), each side
    resampled independently; None with fewer than MIN_SAMPLES values on a side."""
    if len(numerator) < MIN_SAMPLES or len(denominator) < MIN_SAMPLES:
        return None
    nums = bootstrap_medians(numerator, resamples, seed)
    dens = bootstrap_medians(denominator, resamples, seed + 1)
    ratios = sorted(n / d for n, d in zip(nums, dens, strict=True) if d > 0)
    if len(ratios) < resamples // 2:
        return None
    return (percentile(ratios, 0.025), percentile(ratios, 0.975))


def bootstrap_median_ci(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of the median."""
    if len(values) < MIN_SAMPLES:
        return None
    return bootstrap_median_interval(values, resamples, seed)


# --------------------------------------------------------------------------- reading cells
Cell = Mapping[str, Any]


def _cells(doc: Mapping[str, Any], stack: str | None, scenario: str) -> list[Cell]:
    return [
        c for c in doc.get("cells", []) if c.get("stack") == stack and c.get("scenario") == scenario
    ]


def _ok(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if c.get("status") == "ok" and c.get("samples")]


def _key(cell: Cell) -> tuple[str, str, int, float]:
    return (
        str(cell.get("driver")),
        str(cell.get("mode") or "closed"),
        int(cell.get("concurrency") or 0),
        float(cell.get("target_rate") or 0.0),
    )


def _pick(
    keys: Iterable[tuple[str, str, int, float]], claim: Claim, scenario: str
) -> tuple[str, str, int, float] | None:
    keys = list(keys)
    if not keys:
        return None
    drivers = [d for d in (claim.driver, *DEFAULT_DRIVERS.get(scenario, ())) if d]
    drivers += sorted({k[0] for k in keys} - set(drivers))
    modes = [m for m in (claim.mode, "closed", "open") if m]
    if claim.metric in CLOSED_ONLY_METRICS:
        modes = ["closed"]  # an open-loop cell's req/s is its target rate, not a capacity
    for driver in drivers:
        for mode in modes:
            group = [k for k in keys if k[0] == driver and k[1] == mode]
            if not group:
                continue
            if claim.concurrency:
                want = claim.concurrency
                return min(group, key=lambda k: (abs(k[2] - want), -k[2], -k[3]))
            return max(group, key=lambda k: (k[2], k[3]))
    return None


def _errors_total(sample: Mapping[str, Any]) -> float:
    errors = sample.get("errors") or {}
    return float(sum(v for v in errors.values() if isinstance(v, int | float)))


def _sample_value(metric: str, sample: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """One sample's value for `metric`, and a note when a stand-in was used."""
    latency = sample.get("latency_ms") or {}
    extra = sample.get("extra") or {}
    if metric == "rps":
        return _num(sample.get("rps")), None
    if metric in ("p50_ms", "p90_ms", "p99_ms"):
        return _num(latency.get(metric.removesuffix("_ms"))), None
    if metric == "mean_ms":
        if _num(latency.get("mean")) is not None:
            return _num(latency.get("mean")), None
        return _num(latency.get("p50")), "no mean latency recorded: p50 stands in for the mean"
    if metric == "ttft_p50_ms":
        ttft = extra.get("ttft_ms") or {}
        return _num(ttft.get("p50") if isinstance(ttft, Mapping) else None), None
    if metric == "peak_rss":
        return _num(sample.get("server_peak_rss_bytes")), None
    if metric == "rps_per_core":
        rps, cpu = _num(sample.get("rps")), _num(sample.get("server_cpu_pct"))
        return (rps / (cpu / 100.0) if rps is not None and cpu else None), None
    if metric == "error_rate":
        requests = _num(sample.get("requests"))
        if requests is None:
            return None, None
        return _errors_total(sample) / max(requests, 1.0), None
    if metric == "connects_per_s":
        return _num(extra.get("connects_per_s")), None
    raise ValueError(f"metric {metric} is not read per sample")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _values(metric: str, cell: Cell) -> tuple[list[float], list[str]]:
    values, notes = [], set()
    for sample in cell.get("samples", []):
        value, note = _sample_value(metric, sample)
        if value is not None:
            values.append(value)
        if note:
            notes.add(note)
    return values, sorted(notes)


@dataclass
class _Sustained:
    value: float | None
    samples: list[float]
    lower_bound: bool
    max_tried: float
    cells: list[str] = field(default_factory=list)
    derived: bool = False


def _sustained(doc: Mapping[str, Any], stack: str | None, scenario: str) -> _Sustained:
    cells = _cells(doc, stack, scenario)
    tried = max((float(c.get("concurrency") or 0) for c in cells), default=0.0)
    reported: list[tuple[float, list[float], float, str]] = []
    for cell in cells:
        found = [
            s["extra"]["max_sustained"]
            for s in cell.get("samples", [])
            if _num((s.get("extra") or {}).get("max_sustained")) is not None
        ]
        if found:
            max_tried = max(
                (
                    float((s.get("extra") or {}).get("max_tried") or 0)
                    for s in cell.get("samples", [])
                ),
                default=0.0,
            )
            reported.append(
                (median(found), [float(x) for x in found], max_tried or tried, str(cell.get("id")))
            )
    if reported:
        value, samples, max_tried, cid = max(reported, key=lambda r: r[0])
        return _Sustained(value, samples, value >= max_tried > 0, max_tried, [cid])
    held = []
    for cell in _ok(cells):
        samples = cell.get("samples", [])
        rates = [_errors_total(s) / max(float(s.get("requests") or 0), 1.0) for s in samples]
        slo = [(s.get("extra") or {}).get("slo_met") for s in samples]
        if (
            "errors" in (cell.get("flags") or [])
            or median(rates) > SUSTAIN_MAX_ERROR_RATE
            or any(v is False for v in slo)
        ):
            continue
        held.append((float(cell.get("concurrency") or 0), str(cell.get("id"))))
    if not cells:
        return _Sustained(None, [], False, 0.0)
    if not held:
        return _Sustained(0.0, [], False, tried, [str(c.get("id")) for c in cells], True)
    value, cid = max(held)
    return _Sustained(value, [], value >= tried, tried, [cid], True)


# --------------------------------------------------------------------------- status rules
def _ratio_status(claimed: float, factor: float, ci: tuple[float, float] | None) -> str:
    low = ci[0] if ci else factor
    if low >= claimed:
        return SUPPORTED
    if (ci and ci[0] > 1.0) or (ci is None and factor >= 1.0 + NOISE_MARGIN):
        return PARTLY
    return NOT_SUPPORTED


def _qualitative_status(factor: float, ci: tuple[float, float] | None) -> str:
    if ci is not None:
        return SUPPORTED if ci[0] > 1.0 else NOT_SUPPORTED
    return SUPPORTED if factor >= 1.0 + NOISE_MARGIN else NOT_SUPPORTED


def _threshold_status(
    op: str, threshold: float, value: float, ci: tuple[float, float] | None
) -> str:
    def meets(x: float) -> bool:
        return {"<": x < threshold, "<=": x <= threshold, ">": x > threshold, ">=": x >= threshold}[
            op
        ]

    if not meets(value):
        return NOT_SUPPORTED
    if ci is None:
        return SUPPORTED
    edge = ci[1] if op in ("<", "<=") else ci[0]
    return SUPPORTED if meets(edge) else PARTLY


def _status_for(claim: Claim, factor: float, ci: tuple[float, float] | None) -> str:
    if claim.kind == "qualitative":
        return _qualitative_status(factor, ci)
    assert claim.claimed is not None
    return _ratio_status(claim.claimed, factor, ci)


def _unit(claim: Claim) -> str:
    return METRICS[claim.metric].unit if claim.kind == "threshold" else "x"


def _verdict(
    claim: Claim,
    status: str,
    scenario: str | None,
    *,
    measured: float | None = None,
    ci: tuple[float, float] | None = None,
    cells: Iterable[str] = (),
    absolutes: dict[str, Any] | None = None,
    notes: Iterable[str] = (),
) -> Verdict:
    return Verdict(
        id=claim.id,
        status=status,
        measured=measured,
        ci95=ci,
        unit=_unit(claim),
        rule=RULES[claim.kind],
        evidence_cells=tuple(cells),
        claimed=claim.claimed_text,
        scenario=scenario,
        absolutes=absolutes,
        notes=tuple(dict.fromkeys(notes)),
    )


def _flag_notes(role: str, cell: Cell) -> list[str]:
    notes = [f"{role} cell {cell.get('id')} flagged {flag}" for flag in cell.get("flags") or []]
    if role == "candidate" and "client-bound" in (cell.get("flags") or []):
        notes.append("the candidate was client-bound: its factor is a lower bound")
    return notes


def _absolutes(claim: Claim, base: float | None, cand: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "baseline": base,
        "candidate": cand,
        "unit": METRICS[claim.metric].unit,
        "baseline_stack": claim.baseline,
        "candidate_stack": claim.candidate,
    }
    if claim.claimed_baseline or claim.claimed_candidate:
        out["claimed_baseline"] = claim.claimed_baseline
        out["claimed_candidate"] = claim.claimed_candidate
    return out


ABSOLUTE_CAVEAT = (
    "absolutes are this machine's (one server core) and the document's own: only "
    "the ratio carries across machines"
)


# --------------------------------------------------------------------------- judging
def _judge_sustained(
    claim: Claim, doc: Mapping[str, Any], scenario: str, ratio_ci: RatioInterval
) -> Verdict:
    cand = _sustained(doc, claim.candidate, scenario)
    notes: list[str] = []
    if claim.kind == "threshold":
        if cand.value is None:
            return _verdict(
                claim, NOT_MEASURED, scenario, notes=[f"no {scenario} cells for {claim.candidate}"]
            )
        assert claim.threshold_op is not None and claim.threshold is not None
        ci = bootstrap_median_ci(cand.samples)
        status = _threshold_status(claim.threshold_op, claim.threshold, cand.value, ci)
        if cand.derived:
            notes.append("derived from the cells' concurrency levels (no extra.max_sustained)")
        if status == NOT_SUPPORTED and cand.lower_bound:
            status = NOT_MEASURED
            notes.append(
                f"the candidate held every level tried (up to {cand.max_tried:g}); "
                f"no level ≥ {claim.threshold:g} was tried"
            )
        return _verdict(
            claim,
            status,
            scenario,
            measured=cand.value,
            ci=ci,
            cells=cand.cells,
            absolutes=_absolutes(claim, None, cand.value),
            notes=notes,
        )
    base = _sustained(doc, claim.baseline, scenario)
    if base.value is None or cand.value is None:
        missing = [
            s for s, v in ((claim.baseline, base), (claim.candidate, cand)) if v.value is None
        ]
        return _verdict(
            claim,
            NOT_MEASURED,
            scenario,
            notes=[f"no {scenario} cells for {', '.join(map(str, missing))}"],
        )
    cells = [*base.cells, *cand.cells]
    absolutes = _absolutes(claim, base.value, cand.value)
    if base.lower_bound and cand.lower_bound:
        return _verdict(
            claim,
            NOT_MEASURED,
            scenario,
            cells=cells,
            absolutes=absolutes,
            notes=[
                f"both stacks held every level tried (up to {cand.max_tried:g}): "
                "no ratio can be read"
            ],
        )
    if base.derived or cand.derived:
        notes.append("derived from the cells' concurrency levels (no extra.max_sustained)")
    if cand.lower_bound:
        notes.append("the candidate held every level tried: its factor is a lower bound")
    if base.value == 0:
        factor = math.inf if cand.value > 0 else 1.0
        ci = None
        notes.append("the baseline held no level tried")
    else:
        factor = cand.value / base.value
        ci = ratio_ci(cand.samples, base.samples) if base.samples and cand.samples else None
    status = _status_for(claim, factor, ci)
    if claim.kind == "absolute":
        notes.append(ABSOLUTE_CAVEAT)
    return _verdict(
        claim,
        status,
        scenario,
        measured=factor,
        ci=ci,
        cells=cells,
        absolutes=absolutes,
        notes=notes,
    )


def _judge_threshold_cell(claim: Claim, doc: Mapping[str, Any], scenario: str) -> Verdict:
    cells = {_key(c): c for c in _ok(_cells(doc, claim.candidate, scenario))}
    key = _pick(cells, claim, scenario)
    if key is None:
        return _verdict(
            claim, NOT_MEASURED, scenario, notes=[f"no ok {scenario} cell for {claim.candidate}"]
        )
    cell = cells[key]
    values, notes = _values(claim.metric, cell)
    if not values:
        return _verdict(
            claim,
            NOT_MEASURED,
            scenario,
            cells=[str(cell.get("id"))],
            notes=[f"cell {cell.get('id')} lacks {METRICS[claim.metric].reads}"],
        )
    assert claim.threshold_op is not None and claim.threshold is not None
    value, ci = median(values), bootstrap_median_ci(values)
    status = _threshold_status(claim.threshold_op, claim.threshold, value, ci)
    notes += _flag_notes("candidate", cell)
    if ci is None:
        notes.append(f"n={len(values)}: no interval, the median decides")
    notes.append(
        f"{claim.threshold_op} {claim.threshold:g} {METRICS[claim.metric].unit} "
        "is judged on this machine only"
    )
    return _verdict(
        claim,
        status,
        scenario,
        measured=value,
        ci=ci,
        cells=[str(cell.get("id"))],
        absolutes=_absolutes(claim, None, value),
        notes=notes,
    )


def _judge_pair(
    claim: Claim, doc: Mapping[str, Any], scenario: str, ratio_ci: RatioInterval
) -> Verdict:
    base_all = _cells(doc, claim.baseline, scenario)
    cand_all = _cells(doc, claim.candidate, scenario)
    base = {_key(c): c for c in _ok(base_all)}
    cand = {_key(c): c for c in _ok(cand_all)}
    key = _pick(set(base) & set(cand), claim, scenario)
    if key is None:
        notes = []
        for role, stack, every in (
            ("baseline", claim.baseline, base_all),
            ("candidate", claim.candidate, cand_all),
        ):
            bad = [
                f"{c.get('id')} ({c.get('status')}"
                + (f": {c['error']})" if c.get("error") else ")")
                for c in every
                if c.get("status") != "ok"
            ]
            if not every:
                notes.append(f"no {scenario} cells for {role} {stack}")
            elif bad:
                notes.append(f"{role} cells not ok: {', '.join(bad)}")
        if base_all and cand_all and not notes:
            notes.append("no common driver/mode/concurrency between the two stacks")
        return _verdict(claim, NOT_MEASURED, scenario, notes=notes)
    bcell, ccell = base[key], cand[key]
    ids = [str(bcell.get("id")), str(ccell.get("id"))]
    bvals, bnotes = _values(claim.metric, bcell)
    cvals, cnotes = _values(claim.metric, ccell)
    if not bvals or not cvals:
        return _verdict(
            claim,
            NOT_MEASURED,
            scenario,
            cells=ids,
            notes=[f"cells lack {METRICS[claim.metric].reads}"],
        )
    notes = [*bnotes, *cnotes, *_flag_notes("baseline", bcell), *_flag_notes("candidate", ccell)]
    bmed, cmed = median(bvals), median(cvals)
    higher = METRICS[claim.metric].higher_is_better
    num, den = (cvals, bvals) if higher else (bvals, cvals)
    nmed, dmed = (cmed, bmed) if higher else (bmed, cmed)
    absolutes = _absolutes(claim, bmed, cmed)
    if claim.metric == "error_rate" and bmed == 0 and cmed == 0:
        return _verdict(
            claim,
            NOT_SUPPORTED,
            scenario,
            measured=1.0,
            cells=ids,
            absolutes=absolutes,
            notes=[*notes, "neither stack had errors: nothing to reduce"],
        )
    if dmed <= 0:
        factor, ci = (math.inf if nmed > 0 else 1.0), None
        notes.append("zero denominator: no interval")
    else:
        factor, ci = nmed / dmed, ratio_ci(num, den)
    if ci is None and dmed > 0:
        notes.append(
            f"n={len(bvals)}/{len(cvals)} samples: no interval, point estimate with a "
            f"{NOISE_MARGIN:.0%} noise margin"
        )
    if claim.kind == "absolute":
        notes.append(ABSOLUTE_CAVEAT)
    notes.append(
        f"cells: driver {key[0]}, {key[1]} loop, concurrency {key[2]}"
        + (f", target {key[3]:g}/s" if key[3] else "")
    )
    status = _status_for(claim, factor, ci)
    return _verdict(
        claim, status, scenario, measured=factor, ci=ci, cells=ids, absolutes=absolutes, notes=notes
    )


def _micro_pairs(micro: Mapping[str, Any], patterns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{group: {"baseline": bench, "candidate": bench}} for groups matching any pattern."""
    groups: dict[str, dict[str, Any]] = {}
    for bench in micro.get("benchmarks", []):
        group = str(bench.get("group") or bench.get("name"))
        role = (bench.get("extra_info") or {}).get("role")
        if role in ("baseline", "candidate") and any(
            fnmatch.fnmatchcase(group, p) for p in patterns
        ):
            groups.setdefault(group, {}).setdefault(role, bench)
    return {g: pair for g, pair in sorted(groups.items()) if len(pair) == 2}


def _thin(values: Sequence[float], seed: int) -> list[float]:
    values = [float(v) for v in values]
    if len(values) <= MICRO_MAX_ROUNDS:
        return values
    return random.Random(seed).sample(values, MICRO_MAX_ROUNDS)


def _judge_micro_group(
    claim: Claim, group: str, pair: Mapping[str, Any], ratio_ci: RatioInterval
) -> Verdict:
    bstats, cstats = pair["baseline"]["stats"], pair["candidate"]["stats"]
    factor = float(bstats["median"]) / float(cstats["median"])
    bdata = _thin(bstats.get("data") or [], BOOTSTRAP_SEED)
    cdata = _thin(cstats.get("data") or [], BOOTSTRAP_SEED + 1)
    ci = ratio_ci(bdata, cdata) if bdata and cdata else None
    notes = ["micro-benchmark: the library call alone, not a request"]
    if ci is None:
        try:
            low, high = bstats["q1"] / cstats["q3"], bstats["q3"] / cstats["q1"]
            notes.append(f"no raw timings: IQR bracket {low:.2f}-{high:.2f}x (not a 95% interval)")
        except (KeyError, TypeError, ZeroDivisionError):
            notes.append("no raw timings: point estimate only")
    names = [str(pair[r].get("fullname") or pair[r].get("name")) for r in ("baseline", "candidate")]
    absolutes = {
        "baseline": float(bstats["median"]),
        "candidate": float(cstats["median"]),
        "unit": METRICS["micro_time"].unit,
        "baseline_stack": claim.baseline,
        "candidate_stack": claim.candidate,
    }
    return _verdict(
        claim,
        _status_for(claim, factor, ci),
        f"micro:{group}",
        measured=factor,
        ci=ci,
        cells=names,
        absolutes=absolutes,
        notes=notes,
    )


def _judge_micro(
    claim: Claim, micro: Mapping[str, Any] | None, ratio_ci: RatioInterval
) -> list[Verdict]:
    if micro is None:
        return [_verdict(claim, NOT_MEASURED, "micro", notes=["no pytest-benchmark JSON given"])]
    pairs = _micro_pairs(micro, claim.micro_groups)
    if not pairs:
        return [
            _verdict(
                claim,
                NOT_MEASURED,
                "micro",
                notes=[
                    f"no baseline/candidate benchmark pair in groups "
                    f"{', '.join(claim.micro_groups)}"
                ],
            )
        ]
    return [_judge_micro_group(claim, g, pair, ratio_ci) for g, pair in pairs.items()]


def _judge_check(claim: Claim, scenario: str, checks: Mapping[str, Any] | None) -> Verdict:
    outcome = (checks or {}).get(claim.check or "")
    if outcome is None or outcome == "skipped":
        return _verdict(
            claim,
            NOT_MEASURED,
            scenario,
            notes=[
                f"check {claim.check!r} not reported"
                + (" (skipped)" if outcome == "skipped" else "")
            ],
        )
    passed = outcome is True or outcome == "passed"
    return _verdict(
        claim,
        SUPPORTED if passed else NOT_SUPPORTED,
        scenario,
        cells=[f"check:{claim.check}"],
        notes=[f"check {claim.check}: {outcome}"],
    )


def _favourability(claim: Claim, verdict: Verdict) -> float:
    value = verdict.measured if verdict.measured is not None else 0.0
    return -value if claim.kind == "threshold" and claim.threshold_op in ("<", "<=") else value


_RANK = {NOT_SUPPORTED: 0, PARTLY: 1, SUPPORTED: 2}


def _combine(claim: Claim, parts: list[Verdict]) -> Verdict:
    if len(parts) == 1:
        return parts[0]
    measured = [p for p in parts if p.status in _RANK]
    cells = tuple(dict.fromkeys(c for p in parts for c in p.evidence_cells))
    notes = [f"{p.scenario}: {p.status}" for p in parts]
    if not measured:
        return Verdict(
            claim.id,
            NOT_MEASURED,
            None,
            None,
            _unit(claim),
            RULES[claim.kind],
            cells,
            claim.claimed_text,
            None,
            None,
            tuple(notes),
            tuple(parts),
        )
    statuses = {p.status for p in measured}
    status = (
        SUPPORTED
        if statuses == {SUPPORTED}
        else NOT_SUPPORTED
        if statuses == {NOT_SUPPORTED}
        else PARTLY
    )
    head = min(measured, key=lambda p: (_RANK[p.status], _favourability(claim, p)))
    notes.insert(0, f"headline figure: {head.scenario} (least favourable scenario)")
    return Verdict(
        claim.id,
        status,
        head.measured,
        head.ci95,
        _unit(claim),
        RULES[claim.kind],
        cells,
        claim.claimed_text,
        head.scenario,
        head.absolutes,
        tuple(notes),
        tuple(parts),
    )


def judge(
    claim: Claim,
    results_doc: Mapping[str, Any],
    *,
    micro: Mapping[str, Any] | None = None,
    checks: Mapping[str, Any] | None = None,
    ratio_ci: RatioInterval | None = None,
) -> Verdict:
    """Judge one claim against a results document (and a pytest-benchmark JSON for micro
    claims, a checks mapping for sm2/contract claims; results_doc["checks"] is used when
    `checks` is None)."""
    if not claim.testable:
        return Verdict(
            claim.id,
            NOT_TESTABLE,
            None,
            None,
            "",
            "registry: testable = false",
            (),
            claim.claimed_text,
            None,
            None,
            (claim.reason or "",),
        )
    interval = ratio_ci or bootstrap_ratio_ci
    if checks is None:
        checks = results_doc.get("checks")
    parts = []
    for scenario in claim.scenarios:
        if claim.metric == "check":
            parts.append(_judge_check(claim, scenario, checks))
        elif scenario == "micro":
            parts.extend(_judge_micro(claim, micro, interval))
        elif claim.metric == "max_sustained":
            parts.append(_judge_sustained(claim, results_doc, scenario, interval))
        elif claim.kind == "threshold":
            parts.append(_judge_threshold_cell(claim, results_doc, scenario))
        else:
            parts.append(_judge_pair(claim, results_doc, scenario, interval))
    return _combine(claim, parts)


def judge_all(
    results_doc: Mapping[str, Any],
    micro: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    *,
    checks: Mapping[str, Any] | None = None,
    ratio_ci: RatioInterval | None = None,
) -> list[Verdict]:
    """Every claim of the registry (default: loadtests/claims.toml), in registry order."""
    reg = registry or load_registry()
    return [
        judge(c, results_doc, micro=micro, checks=checks, ratio_ci=ratio_ci) for c in reg.claims
    ]


# --------------------------------------------------------------------------- presentation
def format_measured(verdict: Verdict) -> str:
    if verdict.measured is None:
        return "—"

    def fmt(x: float) -> str:
        return "∞" if math.isinf(x) else f"{x:.3g}"

    unit = "x" if verdict.unit == "x" else f" {verdict.unit}"
    text = f"{fmt(verdict.measured)}{unit}"
    if verdict.ci95:
        text += f" [{fmt(verdict.ci95[0])}, {fmt(verdict.ci95[1])}]"
    return text


def verdicts_markdown(verdicts: Sequence[Verdict], registry: Registry | None = None) -> str:
    """A Markdown table: claim, source, quote, claimed, measured [95% interval], verdict."""
    reg = registry or load_registry()
    rows = [
        "| claim | source | quote | claimed | measured [95% CI] | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        claim = reg.by_id(v.id)
        quote = display_quote(claim.quote).replace("**", "").replace("|", "\\|")
        rows.append(
            f"| `{v.id}` | {claim.source_title} | “{quote}” | {claim.claimed_text} | "
            f"{format_measured(v)} | **{v.status}** |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Judge the seed claims against a results JSON.")
    parser.add_argument("results", type=Path, nargs="?", help="results.json of a bench run")
    parser.add_argument("--micro", type=Path, help="pytest-benchmark JSON")
    parser.add_argument("--checks", type=Path, help="JSON mapping check key -> passed/failed")
    parser.add_argument("--json", action="store_true", help="print verdicts as JSON")
    parser.add_argument("--rules", action="store_true", help="print the rules and exit")
    args = parser.parse_args(argv)
    if args.rules:
        print(rules_markdown())
        return 0
    registry = load_registry()
    doc = json.loads(args.results.read_text()) if args.results else {"cells": []}
    micro = json.loads(args.micro.read_text()) if args.micro else None
    checks = json.loads(args.checks.read_text()) if args.checks else None
    verdicts = judge_all(doc, micro, registry, checks=checks)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2, ensure_ascii=False))
    else:
        print(verdicts_markdown(verdicts, registry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
