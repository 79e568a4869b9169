"""The results JSON, schema version 1 (RESULTS_SCHEMA.md): build, validate, load, save.

A document is plain JSON data (dicts and lists) from start to end: the runner fills it cell by
cell and saves it after every cell, so an interrupted run still leaves a valid document.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import stats

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "refused", "skipped")
FLAGS = ("client-bound", "noisy", "errors", "writes-mismatch")
DRIVERS = ("wrk", "openloop", "locust", "chat", "sse", "ws")
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
    ceilings = [float(c["rps"]) for c in doc.get("driver_ceilings", []) if _is_num(c.get("rps"))]
    driver = doc.get("settings", {}).get("closed_loop_driver", "wrk")
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


# --- validation ---------------------------------------------------------------------------
def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_sample(where: str, sample: Any, problems: list[str]) -> None:
    if not isinstance(sample, Mapping):
        problems.append(f"{where}: not an object")
        return
    for key in ("requests", "duration_s", "rps"):
        if not _is_num(sample.get(key)):
            problems.append(f"{where}.{key}: not a number ({sample.get(key)!r})")
    latency = sample.get("latency_ms")
    if not isinstance(latency, Mapping):
        problems.append(f"{where}.latency_ms: missing")
    else:
        for key in LATENCY_KEYS:
            if key in latency and latency[key] is not None and not _is_num(latency[key]):
                problems.append(f"{where}.latency_ms.{key}: not a number")
    errors = sample.get("errors")
    if not isinstance(errors, Mapping) or not all(_is_num(v) for v in errors.values()):
        problems.append(f"{where}.errors: must map kinds to counts")
    for key in ("server_cpu_pct", "server_peak_rss_bytes", "client_cpu_pct"):
        if sample.get(key) is not None and not _is_num(sample[key]):
            problems.append(f"{where}.{key}: not a number")
    writes = sample.get("writes")
    if writes is not None and (not isinstance(writes, Mapping) or "acknowledged" not in writes or "stored" not in writes):
        problems.append(f"{where}.writes: needs acknowledged and stored")
    if not isinstance(sample.get("extra", {}), Mapping):
        problems.append(f"{where}.extra: not an object")


def validate(doc: Any) -> list[str]:
    """Every way `doc` departs from schema version 1 (an empty list: valid)."""
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        return ["document: not a JSON object"]
    if doc.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version: {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    for key, kind in (("run_id", str), ("profile", str), ("started_at", str), ("environment", dict),
                      ("settings", dict), ("driver_ceilings", list), ("cells", list), ("stacks", dict)):
        if not isinstance(doc.get(key), kind):
            problems.append(f"{key}: missing or not a {kind.__name__}")
    if problems:
        return problems
    machine = doc["environment"].get("machine") or {}
    for key in ("cpu_model", "cores", "memory_bytes", "kernel"):
        if key not in machine:
            problems.append(f"environment.machine.{key}: missing")
    for key in ("python", "packages", "git"):
        if key not in doc["environment"]:
            problems.append(f"environment.{key}: missing")
    for i, ceiling in enumerate(doc["driver_ceilings"]):
        if not isinstance(ceiling, Mapping) or not _is_num(ceiling.get("rps")):
            problems.append(f"driver_ceilings[{i}]: needs a numeric rps")
    seen: set[str] = set()
    for i, cell in enumerate(doc["cells"]):
        where = f"cells[{i}]"
        if not isinstance(cell, Mapping):
            problems.append(f"{where}: not an object")
            continue
        where = f"cells[{cell.get('id', i)}]"
        for key in ("id", "stack", "scenario", "driver", "mode", "status", "samples", "summary", "flags"):
            if key not in cell:
                problems.append(f"{where}.{key}: missing")
        if cell.get("id") in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(str(cell.get("id")))
        if cell.get("status") not in STATUSES:
            problems.append(f"{where}.status: {cell.get('status')!r} not in {STATUSES}")
        if cell.get("driver") not in DRIVERS:
            problems.append(f"{where}.driver: {cell.get('driver')!r} not in {DRIVERS}")
        if cell.get("mode") not in ("closed", "open"):
            problems.append(f"{where}.mode: {cell.get('mode')!r}")
        if cell.get("stack") not in doc["stacks"]:
            problems.append(f"{where}.stack: {cell.get('stack')!r} not described in stacks")
        if cell.get("status") == "ok" and not cell.get("samples"):
            problems.append(f"{where}: status ok without samples")
        if cell.get("status") in ("failed", "refused") and not cell.get("error"):
            problems.append(f"{where}: status {cell.get('status')} without an error message")
        for j, sample in enumerate(cell.get("samples") or []):
            _check_sample(f"{where}.samples[{j}]", sample, problems)
        for key, summary in (cell.get("summary") or {}).items():
            if not isinstance(summary, Mapping) or not {"median", "ci95", "cv", "n"} <= summary.keys():
                problems.append(f"{where}.summary.{key}: needs median, ci95, cv, n")
    for sid, info in doc["stacks"].items():
        if not isinstance(info, Mapping) or not {"impl", "server", "kind", "workers", "settings", "command"} <= info.keys():
            problems.append(f"stacks.{sid}: needs impl, server, kind, workers, settings, command")
    return problems


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
