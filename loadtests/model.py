"""The results document as types: `Run` ⊃ `Cell` ⊃ `Sample` (RESULTS_SCHEMA.md, schema 2).

Each class validates itself on construction (pydantic) and owns its JSON: `Run.from_json(doc)`
reads a parsed document of schema version 1 or 2 (version 1 is upgraded first by
`upgrade_v1`, a pure function), `run.to_json()` gives plain JSON data back. Metrics are read
through one accessor each: `sample.metric("p99_ms")`, `cell.values("p99_ms")`; `METRICS` lists
them with their unit, direction and where in a sample they are read. Fields the model does not
name are kept (forward compatibility): a document round-trips through the model unchanged.

`python -m loadtests.model --schema` prints the JSON Schema of the document, generated from
these classes; it is committed as loadtests/results.schema.json (a test keeps them in step).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
CELL_STATUSES = ("ok", "failed", "refused", "skipped", "interrupted")
RUN_STATUSES = ("complete", "interrupted")
DRIVERS = ("wrk", "openloop", "locust", "chat", "sse", "ws")
MODES = ("closed", "open", "capacity")
LATENCY_KEYS = ("p50", "p90", "p99", "p99_9", "max", "mean")

# A finite JSON number (booleans and strings refused); an int stays an int.
Num = Annotated[int, Strict()] | Annotated[float, Strict(), Field(allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=False)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


# --- pieces of a sample ----------------------------------------------------------------------
class Latency(_Model):
    """Milliseconds; `mean` where the driver records it (wrk, locust, openloop)."""

    p50: Num | None = None
    p90: Num | None = None
    p99: Num | None = None
    p99_9: Num | None = None
    max: Num | None = None
    mean: Num | None = None

    @model_validator(mode="after")
    def _not_negative(self) -> Latency:
        for key in LATENCY_KEYS:
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ValueError(f"latency {key} is negative ({value})")
        return self


class Writes(_Model):
    acknowledged: Num
    stored: Num


class Probe(_Model):
    level: Count
    held: bool
    reasons: list[str] = Field(default_factory=list)


class Capacity(_Model):
    """A capacity search's outcome: held_lo met the objective, failed_hi (None: never failed
    up to max_tried) did not; the true capacity lies in [held_lo, failed_hi)."""

    held_lo: Count
    failed_hi: Count | None
    resolution: Num
    max_tried: Count
    objective: str
    probes: list[Probe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> Capacity:
        if self.failed_hi is not None and self.failed_hi <= self.held_lo:
            raise ValueError(f"failed_hi {self.failed_hi} <= held_lo {self.held_lo}")
        return self


class Sample(_Model):
    """One fresh server start + one load run."""

    requests: Num
    duration_s: Num
    rps: Num
    latency_ms: Latency
    errors: dict[str, Num]
    server_cpu_pct: Num | None = None
    server_cpu_s: Num | None = None
    server_peak_rss_bytes: Num | None = None
    server_pss_bytes: Num | None = None
    server_uss_bytes: Num | None = None
    server_processes: Count | None = None
    client_cpu_pct: Num | None = None
    concurrency: Count | None = None
    achieved_rps: Num | None = None
    writes: Writes | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """This sample's value of metric `name` (see METRICS); None where not recorded."""
        return METRICS[name].read(self)

    @property
    def errors_total(self) -> float:
        return float(sum(self.errors.values()))

    @property
    def timeouts(self) -> float:
        return float(self.errors.get("timeout", 0))

    @property
    def capacity(self) -> Capacity | None:
        raw = self.extra.get("capacity")
        return Capacity.model_validate(raw) if isinstance(raw, Mapping) else None

    @model_validator(mode="after")
    def _capacity_valid(self) -> Sample:
        self.capacity  # noqa: B018 - validates extra.capacity when present
        return self


class Summary(_Model):
    median: Num
    ci95: list[Num] | None
    cv: Num | None
    n: Count
    ci_method: str | None = None


class Setup(_Model):
    """What the server of a cell really ran (read from the launched processes; `inferred`
    when upgraded from a schema-1 document's stack description)."""

    server: str
    worker_class: str | None = None
    processes: Annotated[int, Strict(), Field(ge=1)]
    master: bool = False
    workers: Count
    threads_per_worker: Count | None = None
    cores: list[Count] = Field(default_factory=list)
    gc_policy: str | None = None
    # The app's serving knobs in force (loadtests/setups.py APP_TUNING): pool sizes, stream limits.
    app: dict[str, Any] | None = None
    inferred: bool = False

    def describe(self) -> str:
        threads = f" × {self.threads_per_worker} threads" if self.threads_per_worker else ""
        kind = f" {self.worker_class}" if self.worker_class else ""
        cores = ",".join(map(str, self.cores)) if self.cores else "?"
        gc = f", GC {self.gc_policy}" if self.gc_policy else ""
        return (f"{self.server}{kind}: {self.processes} process{'es' if self.processes != 1 else ''}"
                f"{threads} on core{'s' if len(self.cores) != 1 else ''} {cores}{gc}"
                + (" (from the stack description)" if self.inferred else ""))

    def tuning(self) -> str:
        """The app knobs as ``name=value`` pairs ('' when not recorded)."""
        return ", ".join(f"{k}={v}" for k, v in sorted((self.app or {}).items()))

    def like_for_like(self, other: Setup) -> bool:
        """Same number of serving processes on the same number of cores."""
        return self.processes == other.processes and len(self.cores) == len(other.cores)


class Cell(_Model):
    id: str
    stack: str
    scenario: str
    driver: Literal[DRIVERS]  # type: ignore[valid-type]
    mode: Literal[MODES]  # type: ignore[valid-type]
    concurrency: Count | None = None
    target_rate: Num | None = None
    status: Literal[CELL_STATUSES]  # type: ignore[valid-type]
    error: str | None = None
    samples: list[Sample]
    summary: dict[str, Summary]
    flags: list[str]
    setup: Setup | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Cell:
        if self.status == "ok" and not self.samples:
            raise ValueError("status ok without samples")
        if self.status in ("failed", "refused") and not self.error:
            raise ValueError(f"status {self.status} without an error message")
        return self

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    def values(self, metric: str) -> list[float]:
        """Every sample's value of `metric` (samples that lack it are left out)."""
        return [v for v in (s.metric(metric) for s in self.samples) if v is not None]

    def extra_value(self, key: str) -> Any:
        """extra[key] of the cell, else of its first sample that has it."""
        if key in self.extra:
            return self.extra[key]
        return next((s.extra[key] for s in self.samples if key in s.extra), None)

    @property
    def load_group(self) -> str | None:
        group = self.extra_value("load_group")
        return str(group) if group else None


class Machine(_Model):
    cpu_model: str
    cores: Count
    memory_bytes: Num
    kernel: str


class Environment(_Model):
    machine: Machine
    python: str
    packages: dict[str, Any]
    git: dict[str, Any]


class Ceiling(_Model):
    rps: Num


class StackInfo(_Model):
    impl: str
    server: str
    kind: str
    workers: Any
    settings: dict[str, Any]
    command: Any


class Interruption(_Model):
    """Why and where a run stopped early."""

    reason: str  # "SIGINT", "SIGTERM" or "crash: <exception>"
    at: str
    in_flight: str | None = None  # the cell (or step) being measured when it stopped
    completed_cells: Count


# --- the robustness matrix (issue 19; loadtests/robustness_matrix.py) ---------------------------
ROBUSTNESS_PROBES = ("slowloris", "oversized_header", "slow_body", "idle_keepalive", "abandon_streams")


class ProbeTally(_Model):
    """The normal requests sent beside an attack: served = a 200 within the probe timeout."""

    sent: Count
    served: Count
    p50_ms: Num | None = None
    max_ms: Num | None = None

    @model_validator(mode="after")
    def _at_most_sent(self) -> ProbeTally:
        if self.served > self.sent:
            raise ValueError(f"served {self.served} > sent {self.sent}")
        return self


class RobustnessProbe(_Model):
    """One probe's outcome on one server; the fields beyond these depend on the probe."""

    error: str | None = None  # the probe did not finish (its hard timeout)
    wall_s: Num | None = None
    probes: ProbeTally | None = None
    closed_by_server: Count | None = None
    recovery_ms: Num | None = None  # None: no probe served within the settings' recover_s


class RobustnessServer(_Model):
    stack: str
    app: str
    error: str | None = None  # the server did not start
    wall_s: Num | None = None
    # None for a probe the server has nothing for (no stream route)
    probes: dict[Literal[ROBUSTNESS_PROBES], RobustnessProbe | None] = Field(default_factory=dict)  # type: ignore[valid-type]


class Robustness(_Model):
    """The server-robustness matrix: its sizes, the CPUs, one entry per server."""

    settings: dict[str, Any]
    server_cpus: list[Count]
    client_cpus: list[Count]
    servers: dict[str, RobustnessServer]


class Run(_Model):
    """One results document (one `stackbench bench` run)."""

    schema_version: Literal[2]
    run_id: str
    profile: str
    started_at: str
    finished_at: str | None = None
    environment: Environment
    settings: dict[str, Any]
    driver_ceilings: list[Ceiling]
    cells: list[Cell]
    stacks: dict[str, StackInfo]
    micro: dict[str, Any] | None = None
    checks: dict[str, Any] | None = None
    # absent in documents written before issue 19's robustness matrix (still schema 2: optional)
    robustness: Robustness | None = None
    # "interrupted": stopped by SIGINT/SIGTERM or a crash; `interrupted` says when and in what
    # (absent in documents written before issue 20: they read as complete)
    status: Literal[RUN_STATUSES] | None = None  # type: ignore[valid-type]
    interrupted: Interruption | None = None

    @property
    def partial(self) -> bool:
        return self.status == "interrupted"

    @model_validator(mode="after")
    def _cells_known(self) -> Run:
        seen: set[str] = set()
        problems = []
        for cell in self.cells:
            if cell.id in seen:
                problems.append(f"cells[{cell.id}]: duplicate id")
            seen.add(cell.id)
            if cell.stack not in self.stacks:
                problems.append(f"cells[{cell.id}].stack: {cell.stack!r} not described in stacks")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Run:
        """A parsed document of schema 1 or 2 (1 is upgraded); raises pydantic's
        ValidationError (see `problems`) when it does not follow the schema."""
        if isinstance(doc, Mapping) and doc.get("schema_version") == 1:
            doc = upgrade_v1(doc)
        return cls.model_validate(doc)

    def cell(self, cell_id: str) -> Cell:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        raise KeyError(cell_id)

    def cells_for(self, stack: str | None, scenario: str) -> list[Cell]:
        return [c for c in self.cells if c.stack == stack and c.scenario == scenario]

    def setup_of(self, cell: Cell) -> Setup | None:
        """The cell's own setup, else one inferred from the stack's description."""
        if cell.setup is not None:
            return cell.setup
        info = self.stacks.get(cell.stack)
        raw = _setup_from_stack(info.model_dump() if info else {}, None, self.settings)
        return Setup.model_validate(raw) if raw else None


# --- metrics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    reads: str
    read: Callable[[Sample], float | None]
    latency: bool = False


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _lat(key: str) -> Callable[[Sample], float | None]:
    return lambda s: _num(getattr(s.latency_ms, key))


def _rps_per_core(s: Sample) -> float | None:
    rps, cpu = _num(s.rps), _num(s.server_cpu_pct)
    return rps / (cpu / 100.0) if rps is not None and cpu else None


def _memory(s: Sample) -> float | None:
    return _num(s.server_pss_bytes) if s.server_pss_bytes is not None else _num(s.server_peak_rss_bytes)


def _ttft_p50(s: Sample) -> float | None:
    ttft = s.extra.get("ttft_ms")
    return _num(ttft.get("p50")) if isinstance(ttft, Mapping) else None


def _cpu_ms_per_request(s: Sample) -> float | None:
    cpu = _num(s.server_cpu_s)
    if cpu is None and s.server_cpu_pct is not None:
        cpu = float(s.server_cpu_pct) / 100.0 * float(s.duration_s)
    return 1000.0 * cpu / float(s.requests) if cpu is not None and s.requests else None


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("rps", "req/s", True, "samples[].rps", lambda s: _num(s.rps)),
    Metric("achieved_rps", "req/s", True, "samples[].achieved_rps, else rps",
           lambda s: _num(s.achieved_rps) if s.achieved_rps is not None else _num(s.rps)),
    Metric("p50_ms", "ms", False, "samples[].latency_ms.p50", _lat("p50"), True),
    Metric("p90_ms", "ms", False, "samples[].latency_ms.p90", _lat("p90"), True),
    Metric("p99_ms", "ms", False, "samples[].latency_ms.p99", _lat("p99"), True),
    Metric("mean_ms", "ms", False, "samples[].latency_ms.mean (never p50 in its place)",
           _lat("mean"), True),
    Metric("ttft_p50_ms", "ms", False, "samples[].extra.ttft_ms.p50 (time to first token)",
           _ttft_p50, True),
    Metric("memory", "bytes", False, "samples[].server_pss_bytes (PSS of all server processes); "
           "where absent server_peak_rss_bytes, labelled peak RSS", _memory),
    Metric("peak_rss", "bytes", False, "samples[].server_peak_rss_bytes (all server processes)",
           lambda s: _num(s.server_peak_rss_bytes)),
    Metric("rps_per_core", "req/s per core", True, "samples[].rps / (server_cpu_pct / 100)",
           _rps_per_core),
    Metric("cpu_ms_per_request", "ms CPU", False, "server_cpu_s / requests × 1000",
           _cpu_ms_per_request),
    Metric("error_rate", "errors per request", False, "sum(samples[].errors) / requests",
           lambda s: s.errors_total / max(float(s.requests), 1.0)),
    Metric("timeouts", "count", False, "samples[].errors.timeout", lambda s: s.timeouts),
    Metric("connects_per_s", "connections/s", True, "samples[].extra.connects_per_s",
           lambda s: _num(s.extra.get("connects_per_s"))),
    Metric("server_cpu_pct", "% of a core", False, "samples[].server_cpu_pct",
           lambda s: _num(s.server_cpu_pct)),
    Metric("client_cpu_pct", "% of a core", False, "samples[].client_cpu_pct",
           lambda s: _num(s.client_cpu_pct)),
)}


def summarize_values(values: Sequence[float]) -> dict[str, float | None]:
    """Median and CV of some values (CV None below two values)."""
    if not values:
        return {"median": None, "cv": None}
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / abs(mean) if len(values) > 1 and mean else None
    return {"median": float(statistics.median(values)), "cv": cv}


# --- schema 1 → 2 ----------------------------------------------------------------------------
def _setup_from_stack(info: Mapping[str, Any], sample: Mapping[str, Any] | None,
                      settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Setup (as JSON) inferred from a stack description (and a sample's process count)."""
    if not info:
        return None
    conf = info.get("settings") or {}
    server = str(info.get("server") or conf.get("server") or "?")
    workers = info.get("workers")
    workers = int(workers) if isinstance(workers, int) and not isinstance(workers, bool) else 1
    # gunicorn and granian serve from worker processes under a main process
    master = server.startswith(("gunicorn", "granian")) or conf.get("package") in ("gunicorn", "granian")
    seen = ((sample or {}).get("extra") or {}).get("server") or {}
    processes = workers
    if isinstance(seen.get("max_processes"), int) and seen["max_processes"] > 0:
        processes = max(1, seen["max_processes"] - (1 if master else 0))
    threads = conf.get("threads")
    cores = conf.get("cpus") or info.get("cpus") or settings.get("server_cpus") or []
    return {"server": server, "worker_class": conf.get("worker_class"), "processes": max(1, processes),
            "master": master, "workers": max(0, workers),
            "threads_per_worker": threads if isinstance(threads, int) else None,
            "cores": [int(c) for c in cores], "gc_policy": None, "inferred": True}


def _locust_mean(by_name: Any) -> float | None:
    """The request-weighted mean of locust's per-endpoint means (schema 1 kept only those)."""
    if not isinstance(by_name, Mapping):
        return None
    rows = [(_num(r.get("mean_ms")), _num(r.get("requests"))) for r in by_name.values()
            if isinstance(r, Mapping)]
    total = sum(n for m, n in rows if m is not None and n)
    return sum(m * n for m, n in rows if m is not None and n) / total if total else None


def upgrade_v1(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-1 document as schema 2 (a new document; the input is not changed).

    Moves what version 1 kept elsewhere to the version-2 fields: the mean latency (wrk's
    extra.latency_mean_ms, locust's per-endpoint means weighted by requests → latency_ms.mean), the server's CPU seconds and process count
    (extra.server.cpu_s / max_processes), the closed loop's concurrency onto each sample, and a
    cell `setup` inferred from the stack's description (setup.inferred = true: schema 1 did not
    record what was launched). PSS was not measured in version 1 and stays absent."""
    out = copy.deepcopy(dict(doc))
    out["schema_version"] = SCHEMA_VERSION
    stacks = out.get("stacks") or {}
    settings = out.get("settings") or {}
    for cell in out.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        samples = [s for s in cell.get("samples") or [] if isinstance(s, dict)]
        for sample in samples:
            extra: dict[str, Any] = sample["extra"] if isinstance(sample.get("extra"), dict) else {}
            latency = sample.get("latency_ms")
            if isinstance(latency, dict) and latency.get("mean") is None:
                mean = _num(extra.get("latency_mean_ms"))
                if mean is None:
                    mean = _locust_mean(extra.get("requests_by_name"))
                if mean is not None:
                    latency["mean"] = mean
            server: dict[str, Any] = extra["server"] if isinstance(extra.get("server"), dict) else {}
            if sample.get("server_cpu_s") is None and _num(server.get("cpu_s")) is not None:
                sample["server_cpu_s"] = server["cpu_s"]
            if sample.get("server_processes") is None and isinstance(server.get("max_processes"), int):
                sample["server_processes"] = server["max_processes"]
            if cell.get("mode") == "closed" and isinstance(cell.get("concurrency"), int):
                sample.setdefault("concurrency", cell["concurrency"])
        if "setup" not in cell and isinstance(stacks.get(cell.get("stack")), dict):
            cell["setup"] = _setup_from_stack(stacks[cell["stack"]], samples[0] if samples else None,
                                              settings)
    return out


# --- validation and schema -------------------------------------------------------------------
def problems(doc: Any) -> list[str]:
    """Every way `doc` departs from the schema (version 1 is upgraded first); [] when valid."""
    if not isinstance(doc, Mapping):
        return ["document: not a JSON object"]
    if doc.get("schema_version") not in (1, SCHEMA_VERSION):
        return [f"schema_version: {doc.get('schema_version')!r}, expected 1 or {SCHEMA_VERSION}"]
    try:
        Run.from_json(doc)
    except ValidationError as exc:
        return [_where(err) for err in exc.errors()]
    return []


def _where(err: Mapping[str, Any]) -> str:
    path = ""
    for part in err.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{path or 'document'}: {err.get('msg')}"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a schema-2 document, generated from `Run`."""
    schema = Run.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "stackbench results document"
    return schema


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The results document model.")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema")
    parser.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_PATH.name}")
    parser.add_argument("--check", type=Path, help="validate a results.json, print problems")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(json.loads(Path(args.check).read_text()))
        print("\n".join(found) or "valid")
        return 1 if found else 0
    text = json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"
    if args.write:
        SCHEMA_PATH.write_text(text)
    if args.schema or not args.write:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
