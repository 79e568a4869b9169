"""The claims registry: loadtests/claims.toml as types, with its checks.

`load_registry()` reads and validates claims.toml: one entry per quantitative claim of the
five migration documents, with the stacks, scenarios and load level that reproduce the
document's setup. `check_quotes()` proves every quote is verbatim in its seed document. The
rules that turn a claim and a results document into a verdict are loadtests/rules.py's.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests import scenarios
from loadtests.metrics import METRICS as SAMPLE_METRICS

REGISTRY_PATH = Path(__file__).with_name("claims.toml")
REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_ENV = "STACKBENCH_SEEDS"

# Scenario names shared with the harness, plus three judged outside the load tests:
# micro (pytest-benchmark JSON), sm2 and contract (named test-suite checks).
LOAD_SCENARIOS = tuple(scenarios.SCENARIOS)
HTTP_SCENARIOS = tuple(s.name for s in scenarios.closed_loop())
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


class RegistryError(ValueError):
    """The registry file is malformed; `.problems` lists every problem found."""

    def __init__(self, problems: list[str]):
        super().__init__("claims registry invalid:\n  " + "\n  ".join(problems))
        self.problems = problems




@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    higher_is_better: bool
    reads: str


# The per-sample metrics (loadtests/metrics.py) and the ones judged from elsewhere.
METRICS: dict[str, MetricInfo] = {
    **{m.name: MetricInfo(m.name, m.unit, m.higher_is_better, m.reads) for m in SAMPLE_METRICS.values()},
    "capacity": MetricInfo("capacity", "users", True,
                           "samples[].extra.capacity (a search: held_lo, failed_hi); schema-1 "
                           "documents: the grid of chat/sse/ws cells and their slo_met"),
    "micro_time": MetricInfo("micro_time", "s per call", False, "pytest-benchmark benchmarks[].stats"),
    "check": MetricInfo("check", "", True, "checks[<key>] = passed | failed | skipped"),
    "none": MetricInfo("none", "", True, "nothing (claim not testable)"),
}
LATENCY_METRICS = tuple(m.name for m in SAMPLE_METRICS.values() if m.latency)
LIKE_FOR_LIKE_METRICS = ("rps_per_core", "memory", "peak_rss", "cpu_ms_per_request")


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
    level_note: str | None = None
    at_least: bool = False
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


