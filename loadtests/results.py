"""The results JSON, schema version 2 (RESULTS_SCHEMA.md): build, validate, load, save.

A document is plain JSON data (dicts and lists) from start to end: the runner fills it cell by
cell and saves it after every cell, so an interrupted run still leaves a valid document. Its
types (and their validation) are loadtests/document.py's; `load_run` returns the typed `Run`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import document, stats
from loadtests.cell import CELL_STATUSES
from loadtests.cell import DRIVERS as DRIVERS

SCHEMA_VERSION = document.SCHEMA_VERSION
STATUSES = CELL_STATUSES
FLAGS = ("client-bound", "noisy", "errors", "writes-mismatch")
LATENCY_KEYS = ("p50", "p90", "p99", "p99_9", "max")
ERROR_KEYS = ("connect", "read", "write", "timeout", "status")


class InvalidResults(ValueError):
    """A document that does not follow the schema; `.problems` lists what is wrong."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid results document:\n  " + "\n  ".join(problems[:30]))
        self.problems = problems


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def make_run_id(commit: str | None, at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    return at.strftime("%Y%m%dT%H%M%SZ") + (f"-{commit[:7]}" if commit else "")


def new_document(*, run_id: str, profile: str, environment: dict[str, Any],
                 settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "profile": profile,
        "started_at": now_iso(),
        "finished_at": None,
        "environment": environment,
        "settings": settings,
        "driver_ceilings": [],
        "cells": [],
        "stacks": {},
    }


def cell_id(stack: str, scenario: str, driver: str, concurrency: int | None,
            target_rate: float | None = None) -> str:
    tail = f"c{concurrency}" if concurrency is not None else "c-"
    if target_rate is not None:
        tail += f"/r{target_rate:g}"
    return f"{stack}/{scenario}/{driver}/{tail}"


def new_cell(stack: str, scenario: str, driver: str, concurrency: int | None, *,
             mode: str = "closed", target_rate: float | None = None) -> dict[str, Any]:
    return {
        "id": cell_id(stack, scenario, driver, concurrency, target_rate),
        "stack": stack, "scenario": scenario, "driver": driver, "mode": mode,
        "concurrency": concurrency, "target_rate": target_rate,
        "status": "ok", "error": None, "samples": [], "summary": {}, "flags": [],
    }


def finish_cell(cell: dict[str, Any], ceiling_rps: float | None) -> dict[str, Any]:
    """Recompute summary and flags from the samples (after every repetition)."""
    cell["summary"] = stats.cell_summary(cell["samples"])
    kept = [f for f in cell.get("flags", []) if f not in FLAGS]  # scenario-specific flags stay
    cell["flags"] = stats.cell_flags(cell, ceiling_rps) + kept
    return cell


def refresh_ceiling(doc: dict[str, Any]) -> float | None:
    """The driver's ceiling is at least the fastest floor cell it drove in this run: record that
    cell when it beats the dedicated ceiling measurement, and re-flag every cell against it."""
    driver = doc.get("settings", {}).get("closed_loop_driver", "wrk")
    # the open loop's own ceilings (rows with "processes") do not judge closed-loop cells
    ceilings = [float(c["rps"]) for c in doc.get("driver_ceilings", [])
                if _is_num(c.get("rps")) and "processes" not in c]
    floors = [c for c in doc.get("cells", []) if c.get("status") == "ok" and c.get("driver") == driver
              and doc.get("stacks", {}).get(c.get("stack"), {}).get("kind") == "floor"
              and (c.get("summary") or {}).get("rps")]
    if floors:
        best = max(floors, key=lambda c: c["summary"]["rps"]["median"])
        rps = float(best["summary"]["rps"]["median"])
        if not ceilings or rps > max(ceilings):
            client = (best["summary"].get("client_cpu_pct") or {}).get("median")
            doc["driver_ceilings"].append({
                "driver": driver, "floor": best["stack"], "rps": rps, "client_cpu_pct": client,
                "concurrency": best.get("concurrency"), "cell": best["id"],
                "note": "the fastest floor cell of this run (median of its samples): the driver "
                        "reached at least this rate"})
            ceilings.append(rps)
    ceiling = max(ceilings) if ceilings else None
    for cell in doc.get("cells", []):
        finish_cell(cell, ceiling)
    return ceiling


def mark_complete(doc: dict[str, Any]) -> None:
    doc["status"], doc["finished_at"] = "complete", now_iso()


def mark_interrupted(doc: dict[str, Any], reason: str, in_flight: str | None) -> None:
    """A run stopped early: the run says why and where, `finished_at` stays null (it did not
    finish), and every cell it had begun but not completed is `interrupted` — the one in flight
    (samples kept: fewer than planned) and any still empty — so none reads as measured."""
    for cell in doc.get("cells", []):
        if cell.get("status") == "ok" and (cell.get("id") == in_flight or not cell.get("samples")):
            cell["status"] = "interrupted"
            cell["error"] = f"run interrupted ({reason}) while measuring" if cell.get("id") == in_flight \
                else f"run interrupted ({reason}) before this cell was measured"
    completed = sum(1 for c in doc.get("cells", []) if c.get("status") != "interrupted")
    doc["status"], doc["finished_at"] = "interrupted", None
    doc["interrupted"] = {"reason": reason[:2000], "at": now_iso(), "in_flight": in_flight,
                          "completed_cells": completed}


# --- validation ---------------------------------------------------------------------------
def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate(doc: Any) -> list[str]:
    """Every way `doc` departs from the schema (an empty list: valid): the typed model
    (loadtests/document.py) is built from it; schema-1 documents are upgraded first."""
    return document.problems(doc)


def check(doc: Any) -> dict[str, Any]:
    problems = validate(doc)
    if problems:
        raise InvalidResults(problems)
    return dict(doc)


# --- files ------------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def save(doc: Mapping[str, Any], path: Path) -> Path:
    """Write atomically (a reader never sees half a document)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(doc), indent=1, ensure_ascii=False))
    os.replace(tmp, path)
    return path


def load(path: Path | str, *, strict: bool = True) -> dict[str, Any]:
    """Read a results JSON (a run directory is accepted: its results.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    doc = json.loads(path.read_text())
    return check(doc) if strict else dict(doc)


def load_run(path: Path | str) -> document.Run:
    """A results JSON as the typed `Run` (schema 1 upgraded)."""
    return document.Run.from_json(load(path, strict=False))


def resummarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Recompute every cell's summary from its samples with the current statistics (a document
    written by an older version keeps its samples; its summaries are derived data)."""
    for cell in doc.get("cells", []):
        if isinstance(cell, dict):
            cell["summary"] = stats.cell_summary(cell.get("samples") or [])
    return doc
