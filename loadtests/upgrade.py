"""Schema 1 → 2: `upgrade_v1`, a pure function, and the `Setup` inferred from a stack's
description (also used for schema-2 cells that lack their own)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from loadtests.jsontypes import SCHEMA_VERSION, num


def setup_from_stack(info: Mapping[str, Any], sample: Mapping[str, Any] | None,
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
    rows = [(num(r.get("mean_ms")), num(r.get("requests"))) for r in by_name.values()
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
                mean = num(extra.get("latency_mean_ms"))
                if mean is None:
                    mean = _locust_mean(extra.get("requests_by_name"))
                if mean is not None:
                    latency["mean"] = mean
            server: dict[str, Any] = extra["server"] if isinstance(extra.get("server"), dict) else {}
            if sample.get("server_cpu_s") is None and num(server.get("cpu_s")) is not None:
                sample["server_cpu_s"] = server["cpu_s"]
            if sample.get("server_processes") is None and isinstance(server.get("max_processes"), int):
                sample["server_processes"] = server["max_processes"]
            if cell.get("mode") == "closed" and isinstance(cell.get("concurrency"), int):
                sample.setdefault("concurrency", cell["concurrency"])
        if "setup" not in cell and isinstance(stacks.get(cell.get("stack")), dict):
            cell["setup"] = setup_from_stack(stacks[cell["stack"]], samples[0] if samples else None,
                                              settings)
    return out
