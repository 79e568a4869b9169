"""One run's state and the bookkeeping of its cells: find or create a cell, record a sample into
it (a failure marks the cell, never ends the run), refuse, skip or fail cells, save the document
after every change. `bench.Bench` measures; this is what it writes into.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtests import results, scenarios, setups
from loadtests.benchdb import BenchDatabase
from loadtests.plan import Plan
from loadtests.stacks import Stack


@dataclass
class Ledger:
    """One run: its plan, its document, its database, its upstream, its CPUs; its cells."""

    plan: Plan
    doc: dict[str, Any]
    path: Path
    db: BenchDatabase
    env: dict[str, str]
    server_cpus: tuple[int, ...]
    client_cpus: tuple[int, ...]
    upstream: dict[str, Any]
    console: Console
    advance: Callable[[str], None] = lambda _: None
    ceiling_rps: float | None = None
    closed_driver: str = "wrk"  # "locust" where wrk is not installed (the report says so)
    rep: int = 0  # the repetition being run
    setup: dict[str, Any] | None = None  # what the server now running really runs (setups.py)
    in_flight: str | None = None  # the cell being measured (named if the run is interrupted)

    def cell(self, stack: Stack, scenario: str, driver: str, concurrency: int | None) -> dict[str, Any]:
        cid = results.cell_id(stack.id, scenario, driver, concurrency)
        for existing in self.doc["cells"]:
            if existing["id"] == cid:
                return existing
        created = results.new_cell(stack.id, scenario, driver, concurrency)
        self.doc["cells"].append(created)
        return created

    def record(self, cell: dict[str, Any], measure_once: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Add one sample to `cell`, or mark it failed; save the document either way."""
        if cell["status"] == "refused":
            return None
        self.in_flight = cell["id"]
        try:
            sample = measure_once()
        except Exception as exc:  # a failed cell must not end the run
            cell["status"] = "failed" if not cell["samples"] else cell["status"]
            cell["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            cell.setdefault("flags", [])
            self.console.print(f"[red]{cell['id']}: {cell['error'].splitlines()[0]}[/red]")
            sample = None
        else:
            cell["samples"].append(sample)
            self._note_setup(cell)
        self.in_flight = None
        results.finish_cell(cell, self.ceiling_rps)
        flag_p99_swing(cell, self.plan.profile.p99_swing_limit)
        self.save()
        return sample

    def _note_setup(self, cell: dict[str, Any]) -> None:
        """`cell["setup"]` from the launched server; a later repetition that ran otherwise is
        flagged (its setups are listed), never silently merged."""
        if self.setup is None:
            return
        if not cell.get("setup"):
            cell["setup"] = dict(self.setup)
        elif not setups.same_setup(cell["setup"], self.setup):
            cell.setdefault("setup_changes", []).append(dict(self.setup))
            if "setup-changed" not in cell["flags"]:
                cell["flags"].append("setup-changed")

    def refuse(self, cell: dict[str, Any], why: str) -> None:
        cell["status"], cell["error"] = "refused", why
        self.console.print(f"[yellow]{cell['id']} refused: {why}[/yellow]")
        self.save()

    def save(self) -> None:
        results.save(self.doc, self.path)

    def _open_cell(self, stack: Stack, rate: float | None, scenario: str | None = None) -> dict[str, Any]:
        scenario = scenario or scenarios.open_loop().name
        cid = results.cell_id(stack.id, scenario, "openloop", None, rate)
        for existing in self.doc["cells"]:
            if existing["id"] == cid:
                return existing
        created = results.new_cell(stack.id, scenario, "openloop", None, mode="open", target_rate=rate)
        self.doc["cells"].append(created)
        return created

    def _skip_rest(self, stack: Stack, scenario: str, driver: str, levels: Any, why: str) -> None:
        for n in levels:
            cell = self.cell(stack, scenario, driver, n)
            self.advance(cell["id"])
            if not cell["samples"] and cell["status"] == "ok":
                cell["status"], cell["error"] = "skipped", why
        self.save()

    def _fail_all(self, stack: Stack, names: list[str], exc: Exception) -> None:
        self.console.print(f"[red]{stack.id}: {str(exc).splitlines()[0]}[/red]")
        for scenario in names:
            if scenario not in self.plan.scenarios[stack.id]:
                continue
            known = scenarios.get(scenario)
            levels = (self.plan.concurrency(scenario, stack) if scenario in scenarios.WRK_SCENARIOS
                      else known.levels(self.plan.profile) if known.family == "connect" else [None])
            for conc in levels:
                cell = self.cell(stack, scenario, driver_for(scenario, stack, self.closed_driver), conc)
                if not cell["samples"]:
                    cell["status"], cell["error"] = "failed", str(exc)[:2000]
        self.save()


def flag_p99_swing(cell: dict[str, Any], limit: float) -> None:
    """Flag "p99-swing" on a cell whose p99 varies more than `limit` (max/min) between its
    repetitions, with the figures in `cell["p99_spread"]`: the p99 is judged on its own noise,
    not only on req/s's."""
    values = [float(v) for s in cell.get("samples", [])
              if isinstance(v := (s.get("latency_ms") or {}).get("p99"), int | float) and v > 0]
    flags = cell.setdefault("flags", [])
    if len(values) < 2:
        cell.pop("p99_spread", None)
        if "p99-swing" in flags:
            flags.remove("p99-swing")
        return
    ratio = max(values) / min(values)
    cell["p99_spread"] = {"min_ms": min(values), "max_ms": max(values), "max_over_min": round(ratio, 3),
                          "limit": limit, "n": len(values)}
    if ratio > limit and "p99-swing" not in flags:
        flags.append("p99-swing")
    elif ratio <= limit and "p99-swing" in flags:
        flags.remove("p99-swing")


def driver_for(scenario: str, stack: Stack, closed: str = "wrk") -> str:
    return scenarios.get(scenario).driver(stack.api, closed)
