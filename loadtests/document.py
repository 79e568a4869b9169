"""The results document as types: `Run` ⊃ `Cell` ⊃ `Sample` (RESULTS_SCHEMA.md, schema 2).

Each class validates itself on construction (pydantic) and owns its JSON: `Run.from_json(doc)`
reads a parsed document of schema version 1 or 2 (version 1 is upgraded first by
`upgrade_v1`, a pure function), `run.to_json()` gives plain JSON data back. Metrics are read
through one accessor each: `sample.metric("p99_ms")`, `cell.values("p99_ms")`; `METRICS` lists
them with their unit, direction and where in a sample they are read. Fields the model does not
name are kept (forward compatibility): a document round-trips through the model unchanged.

`python -m loadtests.document --schema` prints the JSON Schema of the document, generated from
these classes; it is committed as loadtests/results.schema.json (a test keeps them in step).

The parts are flat modules, one noun each: jsontypes (number types, base model), sample, metrics,
cell, robustness_result, upgrade (schema 1 → 2) and this one, the document (`Run`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from loadtests.cell import Cell, Setup
from loadtests.jsontypes import SCHEMA_VERSION, Count, JsonModel, Num
from loadtests.robustness_result import Robustness
from loadtests.upgrade import setup_from_stack, upgrade_v1

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
RUN_STATUSES = ("complete", "interrupted")


class Machine(JsonModel):
    cpu_model: str
    cores: Count
    memory_bytes: Num
    kernel: str


class Environment(JsonModel):
    machine: Machine
    python: str
    packages: dict[str, Any]
    git: dict[str, Any]


class Ceiling(JsonModel):
    rps: Num


class StackInfo(JsonModel):
    impl: str
    server: str
    kind: str
    workers: Any
    settings: dict[str, Any]
    command: Any


class Interruption(JsonModel):
    """Why and where a run stopped early."""

    reason: str  # "SIGINT", "SIGTERM" or "crash: <exception>"
    at: str
    in_flight: str | None = None  # the cell (or step) being measured when it stopped
    completed_cells: Count



class FanoutAcrossWorkers(JsonModel):
    """One fan-out-across-workers entry (loadtests/fanout_workers.py, issue 16): SSE subscribers
    on a server with `workers` workers, delivery through the PostgreSQL feed. `sample` is the
    sse-fanout sample (measure.fanout) with `extra.worker_split` (pid → ESTABLISHED connections
    held on the server port), `extra.workers_holding` and `extra.spread`."""

    stack: str
    workers: Count
    subscribers: Count
    transport: str
    status: Literal["ok", "refused", "failed"]
    error: str | None = None
    setup: dict[str, Any] | None = None
    sample: dict[str, Any] | None = None
    server_cpus: list[Count] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class Run(JsonModel):
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
    # fan-out across server workers through the PostgreSQL feed (issue 16; absent before it)
    fanout_workers: list[FanoutAcrossWorkers] | None = None
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
        raw = setup_from_stack(info.model_dump() if info else {}, None, self.settings)
        return Setup.model_validate(raw) if raw else None



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
