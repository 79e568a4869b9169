"""Synthetic results documents (schema 2) for the verdict tests: each builder makes cells that
follow Little's law and cost little CPU unless told otherwise, so a test changes one thing."""

from __future__ import annotations

from typing import Any

WIGGLE = [1.0, 0.99, 1.01, 1.005, 0.995, 1.002, 0.998]


def setup(server: str = "uvicorn", processes: int = 1, cores: tuple[int, ...] = (0,),
          worker_class: str | None = None, threads: int | None = None) -> dict[str, Any]:
    return {"server": server, "worker_class": worker_class, "processes": processes,
            "master": processes > 1, "workers": processes, "threads_per_worker": threads,
            "cores": list(cores), "gc_policy": None}


def sample(rps: float, *, concurrency: int | None = 64, mean_ms: float | None = None,
           p50_ms: float | None = None, p99_ms: float | None = None, duration_s: float = 5.0,
           cpu_ms_per_request: float = 0.05, timeouts: int = 0, errors: int = 0,
           rss: int = 100 << 20, pss: int | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    requests = int(rps * duration_s)
    mean = mean_ms if mean_ms is not None else (1000.0 * concurrency / rps if concurrency else 5.0)
    p50 = p50_ms if p50_ms is not None else mean * 0.9
    out: dict[str, Any] = {
        "requests": requests, "duration_s": duration_s, "rps": rps,
        "latency_ms": {"p50": p50, "p90": p50 * 1.5, "p99": p99_ms or p50 * 3, "p99_9": p50 * 4,
                       "max": p50 * 5, "mean": mean},
        "errors": {"connect": 0, "read": 0, "write": 0, "timeout": timeouts, "status": errors},
        "server_cpu_pct": 90.0, "server_cpu_s": requests * cpu_ms_per_request / 1000.0,
        "server_peak_rss_bytes": rss, "server_processes": 1, "client_cpu_pct": 40.0,
        "extra": extra or {},
    }
    if concurrency:
        out["concurrency"] = concurrency
    if pss is not None:
        out["server_pss_bytes"] = pss
    return out


def cell(stack: str, scenario: str, samples: list[dict[str, Any]], *, driver: str = "wrk",
         mode: str = "closed", concurrency: int | None = 64, target_rate: float | None = None,
         status: str = "ok", stack_setup: dict[str, Any] | None = None,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    tail = f"c{concurrency}" if concurrency is not None else "c-"
    if target_rate is not None:
        tail += f"/r{target_rate:g}"
    return {"id": f"{stack}/{scenario}/{driver}/{tail}", "stack": stack, "scenario": scenario,
            "driver": driver, "mode": mode, "concurrency": concurrency, "target_rate": target_rate,
            "status": status, "error": None if status in ("ok", "skipped") else "it broke",
            "samples": samples, "summary": {}, "flags": [], "setup": stack_setup or setup(),
            "extra": extra or {}}


def rps_cell(stack: str, scenario: str, rps: float, n: int = 5, *, spread: float = 1.0,
             **kw: Any) -> dict[str, Any]:
    conc = kw.get("concurrency", 64)
    pick = {k: kw.pop(k) for k in list(kw) if k in ("cpu_ms_per_request", "timeouts", "rss", "pss", "errors")}
    samples = [sample(rps * (1 + (w - 1) * spread), concurrency=conc, **pick) for w in WIGGLE[:n]]
    return cell(stack, scenario, samples, **kw)


def open_cell(stack: str, scenario: str, rate: float, mean_ms: float, n: int = 5, *,
              fraction: float = 0.5, spread: float = 1.0, **kw: Any) -> dict[str, Any]:
    samples = [sample(rate, concurrency=None, mean_ms=mean_ms * (1 + (w - 1) * spread),
                      p50_ms=mean_ms * 0.9 * (1 + (w - 1) * spread)) for w in WIGGLE[:n]]
    return cell(stack, scenario, samples, driver="openloop", mode="open", concurrency=None,
                target_rate=rate, extra={"load_group": f"{scenario}-equal", "fraction_of_reference": fraction,
                                         "reference_rps": rate / fraction}, **kw)


def capacity_cell(stack: str, scenario: str, held_lo: int, failed_hi: int | None, n: int = 2,
                  max_tried: int = 10000) -> dict[str, Any]:
    cap = {"held_lo": held_lo, "failed_hi": failed_hi, "resolution": 0.15, "max_tried": max_tried,
           "objective": "every stream completed, TTFT p99 ≤ 2 × upstream", "probes": []}
    samples = [sample(100.0, concurrency=held_lo or 1, extra={"capacity": cap}) for _ in range(n)]
    return cell(stack, scenario, samples, driver="chat" if scenario == "chat" else "sse",
                mode="capacity", concurrency=None)


def doc(*cells: dict[str, Any], **top: Any) -> dict[str, Any]:
    stacks = {c["stack"]: {"impl": c["stack"].split("-")[0], "server": c["setup"]["server"], "kind": "app",
                           "workers": c["setup"]["workers"], "settings": {}, "command": []} for c in cells}
    return {
        "schema_version": 2, "run_id": "synthetic", "profile": "standard",
        "started_at": "2026-12-02T00:00:00Z", "finished_at": None,
        "environment": {"machine": {"cpu_model": "test", "cores": 2, "memory_bytes": 1, "kernel": "x"},
                        "python": "3.11", "packages": {}, "git": {}},
        "settings": {"primary_concurrency": 64, "server_cpus": [0]}, "driver_ceilings": [],
        "cells": list(cells), "stacks": stacks, **top,
    }
