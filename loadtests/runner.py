"""`stackbench bench`: stacks × scenarios → one results JSON (RESULTS_SCHEMA.md) → the report.

The order of work, and why:

* The database is seeded once into a template; a write cell always starts from a fresh copy.
* The driver's ceiling (wrk against the fastest floor) is measured first, in the same run, so
  every cell can be flagged "client-bound" against it.
* Repetitions are interleaved (pyperf, asv): repetition r runs every stack once, in an order
  rotated by r, so slow drift of the machine spreads over all stacks instead of landing on one.
  Each repetition starts every server afresh: one server start + one load run is one sample.
* Within one server start, reads run before writes (they see the seeded data), then chat, then
  the fan-out scenarios on a one-worker server (the event bus lives in one process).
* A stack that answers wrongly is refused (not measured); a server that fails or dies fails its
  cells, and the run carries on with the next one. The document is saved after every cell.
* Ctrl-C, SIGTERM or a crash stops the servers and leaves the document marked `interrupted`
  (the run, and the cell in flight): a partial run never reads as a complete one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from flashcards.settings import Settings
from loadtests import capacity, environment, floors, measure, multicore, results, scenarios, setups
from loadtests.benchdb import BenchDatabase
from loadtests.interrupt import catch_stop_signals, reason_of, run_child
from loadtests.launcher import RunningServer, ServerError
from loadtests.profiles import PROFILES, Profile, claimed_cells
from loadtests.servers import REPO_ROOT, all_servers
from loadtests.setups import VARIANTS, refusal, variant_stack
from loadtests.stacks import CEILING_FLOOR, FLOORS, STACKS, Stack, select
from loadtests.wrk import wrk_available

OPENLOOP_CEILING_DRIVER = "openloop"  # driver_ceilings rows that are the open loop's own, not the closed loop's

REALTIME = tuple(s.name for s in scenarios.SCENARIOS.values() if s.family in ("chat", "fanout"))
DEFAULT_SCENARIOS = tuple(scenarios.SCENARIOS)
LATENCY_OBJECTIVE_MS = 100.0
# How long subscribers may take to connect before the level counts as not held.
CONNECT_TIMEOUT_S = {"smoke": 10.0, "quick": 10.0, "standard": 20.0, "full": 60.0}


def split_cpus(server_cpus: str | None = None, client_cpus: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Server on the first half of this process's CPUs, load generators on the rest; either given
    alone takes the rest for the other; CPUs that do not exist here are refused
    (`multicore.CpuRequestError`, before anything starts)."""
    return multicore.plan_cpus(server_cpus, client_cpus)


# What one step costs on the 2-core machine, for `Plan.estimate_s` (seconds; rough, from runs here).
COST_S = {
    "server_start_app": 4.0, "server_start_floor": 2.0, "sample_overhead": 1.5, "seed_standard": 40.0,
    "seed_small": 5.0, "checks": 90.0, "reliability": 150.0, "micro_run": 15.0, "chat_probe": 8.0,
    "fanout_probe": 15.0, "fanout_cell": 15.0, "chat_cell": 6.0,
}
MICRO_BENCHMARKS = 34  # timed benchmarks in benchmarks/test_micro.py, each run for max_time
CONFIRM_PROBES = 3  # a confirming capacity search: both ends of the bracket, and one spare


@dataclass
class Plan:
    profile: Profile
    stacks: list[Stack]
    scenarios: dict[str, list[str]]  # stack id → scenarios to run
    refused: dict[str, str] = field(default_factory=dict)  # stack id → why it cannot run here

    # --- which cells, how often ------------------------------------------------------------
    def claimed(self, stack: Stack, scenario: str) -> frozenset[int | None] | None:
        """The levels claims name for this cell (None inside: the primary level); None: no claim
        uses the cell (variants never carry a verdict: they are sensitivity rows)."""
        if stack.id in VARIANTS:
            return None
        return claimed_cells().get((stack.id, scenario))

    def concurrency(self, scenario: str, stack: Stack | None = None) -> tuple[int, ...]:
        """The primary level, every level a claim names for the cell, and the sweep for the
        profile's sweep scenarios on app stacks (floors anchor the framework overhead at the
        primary level only)."""
        profile = self.profile
        if stack is not None and stack.id in VARIANTS:
            return (VARIANTS[stack.id].concurrency or profile.primary_concurrency,)
        levels = {profile.primary_concurrency}
        sweep = stack is None or stack.kind == "app"
        if stack is not None and profile.trim_unclaimed:
            sweep = self.claimed(stack, scenario) is not None
        if scenario in profile.sweep_scenarios and sweep:
            levels.update(profile.concurrency)
        if stack is not None and profile.trim_unclaimed:
            levels.update(c for c in self.claimed(stack, scenario) or () if c is not None)
        return tuple(sorted(levels))

    def repetitions(self, stack: Stack, scenario: str, level: int | None = None) -> int:
        """How many repetitions a cell runs: all of them for a cell a verdict uses (at a level
        a claim names, or the primary level), `sensitivity_repetitions` for every other cell;
        realtime cells as the profile's realtime or capacity repetitions."""
        profile = self.profile
        if scenario in REALTIME:
            if scenario in profile.capacity:
                return min(profile.capacity_repetitions, profile.repetitions)
            return min(profile.realtime_repetitions, profile.repetitions)
        if scenario == "journey":
            return min(profile.realtime_repetitions, profile.repetitions)
        if not profile.trim_unclaimed:
            return profile.repetitions
        claimed = self.claimed(stack, scenario)
        if claimed is None:
            return profile.sensitivity_reps
        wanted = {profile.primary_concurrency if c is None else c for c in claimed}
        return profile.repetitions if level is None or level in wanted else profile.sensitivity_reps

    def duration_s(self, stack: Stack, scenario: str, level: int | None = None) -> float:
        """The measured window: `duration_s` for cells a verdict uses, the profile's (shorter)
        sensitivity window for the others."""
        profile = self.profile
        if self.repetitions(stack, scenario, level) >= profile.repetitions or profile.sensitivity_duration_s is None:
            return profile.duration_s
        return profile.sensitivity_duration_s

    def grid_repetitions(self, scenario: str) -> int:
        """Repetitions of the grid run beside a capacity search (profile.grid_with_capacity)."""
        p = self.profile
        if scenario in p.capacity and scenario in p.grid_with_capacity:
            return min(p.realtime_repetitions, p.repetitions)
        return 0

    def levels_in(self, stack: Stack, scenario: str, rep: int) -> tuple[int, ...]:
        return tuple(c for c in self.concurrency(scenario, stack) if rep < self.repetitions(stack, scenario, c))

    def measurements(self) -> int:
        """Progress steps: one per closed-loop sample, capacity search, equal-load sample."""
        total = 0
        profile = self.profile
        for stack in self.stacks:
            for scenario in self.scenarios[stack.id]:
                if scenario in profile.capacity:
                    total += self.repetitions(stack, scenario)
                    if scenario == "chat":
                        total += len(profile.chat_levels) * self.grid_repetitions(scenario)
                elif scenario in REALTIME:
                    levels = {"chat": profile.chat_levels, "sse-fanout": profile.fanout_levels,
                              "ws": profile.ws_levels}[scenario]
                    total += len(levels) * self.repetitions(stack, scenario)
                elif scenario == "journey":
                    total += self.repetitions(stack, scenario)
                else:
                    total += sum(self.repetitions(stack, scenario, c) for c in self.concurrency(scenario, stack))
            if self.open_loop(stack):
                total += len(profile.open_loop_fractions) + profile.sustainable_search
        total += sum(len(self.equal_load_scenarios(s)) * sum(profile.equal_load_repetitions)
                     for s in self.equal_load_stacks())
        return total

    def open_loop(self, stack: Stack) -> bool:
        return (stack.id in self.profile.featured and "card" in self.scenarios[stack.id]
                and bool(self.profile.open_loop_fractions or self.profile.sustainable_search))

    def equal_load_stacks(self) -> list[Stack]:
        """The featured stacks driven at equal offered load (latency claims)."""
        if not self.profile.equal_load_fractions:
            return []
        wanted = self.profile.equal_load_stacks or self.profile.featured
        return [s for s in self.stacks if s.id in wanted and self.equal_load_scenarios(s)]

    def equal_load_scenarios(self, stack: Stack) -> list[str]:
        return [s for s in self.profile.equal_load_scenarios if s in self.scenarios.get(stack.id, [])]

    # --- what it costs ---------------------------------------------------------------------
    def estimate_s(self, subset: bool = False) -> dict[str, float]:
        """The plan's expected wall time, by phase (seconds; `COST_S` holds the per-step costs on
        the 2-core machine): closed-loop samples are warm-up + window + overhead, each stack
        starts once per repetition it runs in, capacity searches are priced at their budget.
        A subset run (named stacks/scenarios, or a profile's own matrix such as `ci`) skips the
        micro-benchmarks and checks, so they are not priced."""
        p = self.profile

        def closed_sample(stack: Stack | None = None, scenario: str = "config", level: int | None = None) -> float:
            window = self.duration_s(stack, scenario, level) if stack is not None else p.duration_s
            return p.warmup_s + window + COST_S["sample_overhead"]

        phases = dict.fromkeys(("seed", "ceiling", "closed", "server_starts", "realtime", "journey",
                                "equal_load", "open_loop", "checks"), 0.0)
        phases["seed"] = COST_S["seed_standard"] if p.seed.cards_per_deck >= 1000 else COST_S["seed_small"]
        phases["ceiling"] = closed_sample() + COST_S["server_start_floor"]
        for stack in self.stacks:
            if stack.id in self.refused:
                continue
            start = COST_S["server_start_app" if stack.kind == "app" else "server_start_floor"]
            names = self.scenarios[stack.id]
            closed = [s for s in names if s in scenarios.WRK_SCENARIOS]
            reps_with_closed = max([self.repetitions(stack, s, c) for s in closed
                                    for c in self.concurrency(s, stack)] + [0])
            phases["server_starts"] += start * reps_with_closed
            for scenario in closed:
                phases["closed"] += sum(self.repetitions(stack, scenario, c) * closed_sample(stack, scenario, c)
                                        for c in self.concurrency(scenario, stack))
            for scenario in (s for s in names if s in REALTIME):
                reps = self.repetitions(stack, scenario)
                if scenario in p.capacity:
                    search = p.capacity[scenario]
                    probe = start + (COST_S["chat_probe"] if scenario == "chat" else COST_S["fanout_probe"])
                    first = min(search.budget_s + probe, search.max_probes * probe)
                    again = min(search.budget_s + probe, CONFIRM_PROBES * probe)  # capacity.confirming
                    phases["realtime"] += first + (reps - 1) * again if reps else 0.0
                    if scenario == "chat":  # the grid beside the search, in the main server start
                        phases["realtime"] += self.grid_repetitions(scenario) * len(p.chat_levels) * COST_S["chat_cell"]
                else:
                    levels = {"chat": p.chat_levels, "sse-fanout": p.fanout_levels, "ws": p.ws_levels}[scenario]
                    cell = COST_S["chat_cell"] if scenario == "chat" else COST_S["fanout_cell"]
                    phases["realtime"] += reps * (len(levels) * cell + (start if scenario != "chat" else 0))
            if "journey" in names:
                phases["journey"] += self.repetitions(stack, "journey") * (
                    journey_duration(p) + max(p.warmup_s, 3.0) + 4.0)
            if self.open_loop(stack):
                phases["open_loop"] += (len(p.open_loop_fractions) + 5 * p.sustainable_search) * (
                    p.warmup_s + p.duration_s + COST_S["sample_overhead"])
        per_equal = p.equal_load_warmup_s + p.equal_load_duration_s + COST_S["sample_overhead"]
        for stack in self.equal_load_stacks():
            starts = sum(p.equal_load_repetitions)
            phases["equal_load"] += starts * (COST_S["server_start_app"]
                                              + len(self.equal_load_scenarios(stack)) * per_equal)
        if not subset:
            if p.micro:
                phases["checks"] += p.micro_runs * (COST_S["micro_run"] + MICRO_BENCHMARKS * p.micro_max_time_s)
            phases["checks"] += COST_S["checks"] + COST_S["reliability"]
        phases["robustness"] = p.robustness.estimate_s(len(all_servers())) if p.robustness and not subset else 0.0
        phases["total"] = sum(phases.values())
        return {k: round(v, 1) for k, v in phases.items()}


def journey_duration(profile: Profile) -> float:
    return profile.journey_duration_s if profile.journey_duration_s is not None else 2 * profile.duration_s


def make_plan(profile: Profile, *, stack_ids: list[str] | None, impls: list[str] | None,
              servers: list[str] | None, only: list[str] | None,
              server_cpus: tuple[int, ...] = (), client_cpus: tuple[int, ...] = ()) -> Plan:
    variant_ids = [s for s in stack_ids or () if s in VARIANTS]
    chosen = select([s for s in stack_ids if s not in VARIANTS] if stack_ids else None, impls, servers) \
        if not (stack_ids and not set(stack_ids) - set(VARIANTS)) else []
    if not (stack_ids or impls or servers):
        chosen = [s for s in chosen if s.kind == "app" or profile.floors is None or s.id in profile.floors]
        variant_ids = list(profile.variants)
    top = max(multicore.CURVE_TOP, len(server_cpus))  # the curve to the cores a full run needs
    variant_ids += [v for v in setups.curve_ids(profile.scaling_stacks, top) if v not in variant_ids]
    chosen += [variant_stack(v) for v in variant_ids]
    if CEILING_FLOOR not in [s.id for s in chosen]:
        chosen.insert(0, STACKS[CEILING_FLOOR])  # the headroom proof is part of every run
    wanted = tuple(only) if only else DEFAULT_SCENARIOS
    unknown = set(wanted) - set(scenarios.SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {', '.join(scenarios.SCENARIOS)}")
    per_stack: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    plan = Plan(profile, [], per_stack, refused)
    for stack in chosen:
        names = [s for s in wanted if stack.supports(s)]
        if stack.kind == "floor" and stack.id == CEILING_FLOOR:
            names = ["config"]
        if stack.id in VARIANTS:
            names = [s for s in names if s in VARIANTS[stack.id].scenarios]
            why = refusal(stack.id, server_cpus, client_cpus)
            if why:
                refused[stack.id] = why
        if "journey" in names and (profile.journey_users == 0 or stack.id not in profile.featured):
            names.remove("journey")
        if profile.trim_unclaimed:  # scale runs no claim uses cost minutes each: not run
            names = [s for s in names if s not in (*REALTIME, "journey") or plan.claimed(stack, s) is not None]
            named = any(plan.claimed(stack, s) is not None for s in scenarios.SCENARIOS)
            if stack.kind == "app" and not named and stack.id not in VARIANTS:
                names = [s for s in names if s in profile.unclaimed_stack_scenarios]
        per_stack[stack.id] = names
    plan.stacks = [s for s in chosen if per_stack[s.id]]
    return plan


@dataclass
class Bench:
    """One run: its document, its database, its upstream, its servers."""

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

    # --- cells ---------------------------------------------------------------------------
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

    # --- servers -----------------------------------------------------------------------
    @contextlib.contextmanager
    def server(self, stack: Stack, workers: int | None = None) -> Iterator[RunningServer]:
        """Start `stack` (the main matrix: one worker per server core; a variant: its own rule;
        `workers` overrides both: fan-out runs on one worker) and read what it really runs."""
        cpus = setups.cpus_for(stack.id, self.server_cpus)
        spec = stack.spec(0, cpus, self.env, workers or setups.workers_for(stack, cpus))
        running = RunningServer(spec).start(timeout=60)
        self.setup = setups.read_setup(running.pid, spec.settings(), rule=setups.setup_rule(stack.id))
        info = self.doc["stacks"].setdefault(stack.id, {})
        described = spec.describe()
        described.pop("env", None)
        key = "fanout" if workers else "main"
        info.update({"impl": stack.impl, "kind": stack.kind, "api": stack.api, "setup_rule": setups.setup_rule(stack.id)})
        if stack.id in VARIANTS:
            info["variant_of"] = VARIANTS[stack.id].base
        if key == "main":
            info.update(described)
        else:
            info["fanout_server"] = described
        try:
            yield running
        finally:
            self.setup = None
            running.stop()

    # --- one stack, one repetition ---------------------------------------------------------
    def run_stack(self, stack: Stack, rep: int) -> None:
        self.rep = rep
        plan = self.plan
        if stack.id in plan.refused:
            if rep == 0:
                variant = VARIANTS[stack.id]
                described = stack.spec(0, self.server_cpus, {}, variant.workers).describe()  # not launched
                described.pop("env", None)
                self.doc["stacks"].setdefault(stack.id, {}).update({
                    **described, "impl": stack.impl, "kind": stack.kind, "api": stack.api,
                    "variant_of": variant.base, "setup_rule": variant.rule, "refused": plan.refused[stack.id]})
                for scenario in plan.scenarios[stack.id]:
                    for conc in plan.concurrency(scenario, stack):
                        self.refuse(self.cell(stack, scenario, _driver(scenario, stack, self.closed_driver), conc),
                                    plan.refused[stack.id])
            return
        names = [s for s in plan.scenarios[stack.id]
                 if (s in scenarios.WRK_SCENARIOS and plan.levels_in(stack, s, rep))
                 or (s not in scenarios.WRK_SCENARIOS and rep < plan.repetitions(stack, s))]
        wrote = False
        for scenario in [s for s in names if s in plan.profile.capacity]:
            wrote = True
            self._capacity(stack, scenario)
        grid = "chat" in plan.scenarios[stack.id] and rep < plan.grid_repetitions("chat")
        names = [s for s in names if s not in plan.profile.capacity] + (["chat"] if grid else [])
        closed = [s for s in names if s in scenarios.WRK_SCENARIOS]
        if closed or "chat" in names or "journey" in names:
            try:
                with self.server(stack) as running:
                    wrote |= self._closed_and_chat(stack, running, [*closed, *(s for s in ("chat", "journey") if s in names)])
                    if rep == 0 and self.plan.open_loop(stack):
                        self._open_loop(stack, running)
            except ServerError as exc:
                self._fail_all(stack, [*closed, "chat", "journey"], exc)
        for scenario in ("sse-fanout", "ws"):
            if scenario in names:
                wrote = True
                try:
                    with self.server(stack, workers=1) as running:
                        self._fanout(stack, running, scenario)
                except ServerError as exc:
                    self._fail_all(stack, [scenario], exc)
        if wrote:
            self.db.restore()

    def _user(self, stack: Stack, client: httpx.Client) -> scenarios.BenchUser | None:
        if stack.kind == "floor":  # a database floor has no login: a token signed as the app signs it
            return floors.bench_user(self.plan.profile.seed, self.env) if stack.api == "rest" else None
        username = "user00001"
        token = scenarios.login(client, stack.api, username)
        decks, cards = scenarios.owned_ids(self.plan.profile.seed, 1)
        return scenarios.BenchUser(username, token, decks, cards)

    def _closed_and_chat(self, stack: Stack, running: RunningServer, names: list[str]) -> bool:
        load = measure.Load(running.url, running.pid, self.client_cpus)
        floor_path = FLOORS[stack.impl].ready_path if stack.kind == "floor" and stack.api == "floor" else None
        wrote = False
        with httpx.Client(base_url=running.url, timeout=30) as client:
            try:
                user = self._user(stack, client)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError) as exc:
                for scenario in names:
                    self.refuse(self.cell(stack, scenario, _driver(scenario, stack, self.closed_driver), None), f"login failed: {exc}")
                return False
            for scenario in names:
                if scenario in scenarios.WRK_SCENARIOS:
                    wrote |= scenarios.get(scenario).writes
                    self._wrk_scenario(stack, client, load, scenario, user, floor_path)
                elif scenario == "chat":
                    assert user is not None
                    wrote = True
                    self._chat(stack, client, load, user)
                elif scenario == "journey":
                    wrote = True
                    self._journey(stack, load)
                if running.proc is not None and running.proc.poll() is not None:
                    raise ServerError(f"{stack.id}: the server exited ({running.proc.returncode}) during {scenario}")
        return wrote

    def _wrk_scenario(self, stack: Stack, client: httpx.Client, load: measure.Load, scenario: str,
                      user: scenarios.BenchUser | None, floor_path: str | None) -> None:
        levels = self.plan.levels_in(stack, scenario, self.rep)
        driver = self.closed_driver
        first = self.cell(stack, scenario, driver, levels[0])
        if first["status"] != "refused" and not first["samples"]:
            try:
                scenarios.verify(scenario, stack.api, client, user, floor_path)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError, ValueError) as exc:
                for c in levels:
                    self.refuse(self.cell(stack, scenario, driver, c), f"verification failed: {exc}")
        spec = scenarios.request_spec(scenario, stack.api, user, floor_path)
        count = self.db.count_reviews if scenarios.get(scenario).counts_writes else None
        for conc in levels:
            cell = self.cell(stack, scenario, driver, conc)
            self.advance(cell["id"])
            self.record(cell, partial(self._closed_loop, load, spec, conc, count,
                                      self.plan.duration_s(stack, scenario, conc), _wrk_threads(stack)))
            if cell["samples"] and cell["samples"][-1]["extra"].get("client_bound") and "client-bound" not in cell["flags"]:
                cell["flags"].append("client-bound")

    def _closed_loop(self, load: measure.Load, spec: scenarios.RequestSpec, connections: int,
                     count: Callable[[], int] | None, duration_s: float | None = None,
                     threads: int = 1) -> dict[str, Any]:
        profile = self.plan.profile
        window = profile.duration_s if duration_s is None else duration_s
        if self.closed_driver == "wrk":
            return measure.closed_loop(load, spec, connections, profile.warmup_s, window, count_rows=count,
                                       threads=threads)
        from loadtests.locust_closed import run_locust_closed

        return measure.closed_fields(measure.with_server_usage(load, partial(
            run_locust_closed, load.url, spec, users=connections, duration_s=window,
            warmup_s=profile.warmup_s, cpus=load.client_cpus, count_rows=count)), connections)

    def _chat(self, stack: Stack, client: httpx.Client, load: measure.Load, user: scenarios.BenchUser) -> None:
        first = self.cell(stack, "chat", "chat", self.plan.profile.chat_levels[0])
        if first["status"] != "refused" and not first["samples"]:
            try:
                scenarios.verify("chat", stack.api, client, user)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError) as exc:
                for n in self.plan.profile.chat_levels:
                    self.refuse(self.cell(stack, "chat", "chat", n), f"verification failed: {exc}")
        done: list[dict[str, Any]] = []
        sustained = 0
        levels = self.plan.profile.chat_levels
        for i, clients in enumerate(levels):
            cell = self.cell(stack, "chat", "chat", clients)
            self.advance(cell["id"])
            sample = self.record(cell, partial(measure.chat, load, user.token, stack.api, clients,
                                               timeout_s=60.0, upstream=self.upstream))
            if sample is None:
                self._skip_rest(stack, "chat", "chat", levels[i + 1:], "a lower level failed")
                break
            done.append(sample)
            if not sample["extra"]["slo_met"]:
                # "until a stack fails or latency doubles": higher levels are not tried
                self._skip_rest(stack, "chat", "chat", levels[i + 1:], f"{clients} streams not sustained")
                break
            sustained = clients
        for sample in done:
            sample["extra"]["max_sustained"] = sustained
            sample["extra"]["max_tried"] = levels[len(done) - 1] if done else 0
        self.save()

    def _capacity(self, stack: Stack, scenario: str) -> None:
        """Streams/subscribers/connections held, by geometric bisection (capacity.py): every probe
        on a freshly started server (fan-out on one worker: the event bus lives in one process),
        the same objective for every stack; one cell (mode "capacity") with the interval."""
        profile = self.plan.profile
        search = profile.capacity[scenario]
        driver = _driver(scenario, stack, self.closed_driver)
        cell = self.cell(stack, scenario, driver, None)
        cell["mode"] = "capacity"
        self.advance(cell["id"])
        transport = "sse" if scenario == "sse-fanout" and stack.api == "rest" else "ws"
        connect_timeout = CONNECT_TIMEOUT_S.get(profile.name, 60.0)

        def probe(level: int) -> dict[str, Any]:
            with self.server(stack, workers=1 if scenario != "chat" else None) as running:
                load = measure.Load(running.url, running.pid, self.client_cpus)
                with httpx.Client(base_url=running.url, timeout=30) as client:
                    user = self._user(stack, client)
                    assert user is not None
                    if scenario == "chat":  # checks the answer and warms the upstream client
                        scenarios.verify("chat", stack.api, client, user)
                if scenario == "chat":
                    sample = measure.chat(load, user.token, stack.api, level, timeout_s=min(60.0, search.budget_s / 2),
                                          upstream=self.upstream)
                else:
                    sample = measure.fanout(load, user.token, stack.api, transport, level, profile.fanout_events,
                                            profile.fanout_rate, connect_timeout)
                sample["extra"]["setup"] = dict(self.setup or {})
                self._note_setup(cell)
                return sample

        previous = [s["extra"]["capacity"] for s in cell["samples"] if (s.get("extra") or {}).get("capacity")]
        if previous:
            search = capacity.confirming(search, previous[-1])

        def run_search() -> dict[str, Any]:
            found = capacity.search_capacity(scenario, probe, search, upstream_ttft_ms=self.upstream["ttft_ms"],
                                             fatal=(scenarios.VerificationFailed,))
            if found is None:
                raise RuntimeError("no capacity probe ran (time budget or probe limit of 0)")
            self.console.print(f"{cell['id']}: {capacity.interval_text(found['extra']['capacity'])}")
            return found

        self.record(cell, run_search)

    def _journey(self, stack: Stack, load: measure.Load) -> None:
        from loadtests.journey import run_journey

        profile = self.plan.profile
        cell = self.cell(stack, "journey", "locust", profile.journey_users)
        self.advance(cell["id"])
        sample = self.record(cell, partial(measure.with_server_usage, load, partial(
            run_journey, load.url, api=stack.api, users=profile.journey_users, duration_s=journey_duration(profile),
            warmup_s=max(profile.warmup_s, 3.0), seed_users=profile.seed.users,
            decks_per_user=profile.seed.decks_per_user, think_s=profile.journey_think_s, cpus=self.client_cpus)))
        if sample is not None and sample["extra"].get("client_bound") and "client-bound" not in cell["flags"]:
            cell["flags"].append("client-bound")
            self.save()

    def _open_loop(self, stack: Stack, running: RunningServer) -> None:
        """Latency without coordinated omission on `card`: fixed rates at fractions of the stack's
        own wrk peak, then the highest rate whose p99 meets the latency objective."""
        from loadtests.ratesearch import find_sustainable_rate

        profile = self.plan.profile
        peak_cell = self.cell(stack, "card", self.closed_driver, profile.primary_concurrency)
        peak = (peak_cell["summary"].get("rps") or {}).get("median")
        if not peak:
            return
        load = measure.Load(running.url, running.pid, self.client_cpus)
        with httpx.Client(base_url=running.url, timeout=30) as client:
            user = self._user(stack, client)
        spec = scenarios.request_spec("card", stack.api, user)

        def at(rate: float) -> dict[str, Any]:
            sample = measure.with_server_usage(load, partial(
                self.open_loop_driver(), running.url, spec, rate, profile.duration_s, profile.warmup_s, cpus=self.client_cpus))
            sample["extra"]["fraction_of_peak"] = round(rate / peak, 3)
            return sample

        for fraction in profile.open_loop_fractions:
            rate = round(peak * fraction, 1)
            cell = self._open_cell(stack, rate)
            self.advance(cell["id"])
            self.record(cell, partial(at, rate))
            cell["flags"] += [f for f in cell["samples"][-1]["extra"].get("flags", []) if f not in cell["flags"]] if cell["samples"] else []
        if profile.sustainable_search:
            self.advance(f"{stack.id}/card/openloop sustainable rate")
            found = find_sustainable_rate(at, peak, LATENCY_OBJECTIVE_MS, probes=5)
            passing = [p for p in found["probes"] if p["ok"]]
            best = max(passing, key=lambda p: p["rate"]) if passing else None
            cell = self._open_cell(stack, None)
            cell["status"] = "ok" if best else "failed"
            if best:
                sample = best["sample"]
                sample["extra"].update({"sustainable_rate": found["rate"], "objective_p99_ms": LATENCY_OBJECTIVE_MS,
                                        "probes": [{k: p[k] for k in ("rate", "fraction", "ok", "reasons", "p99_ms", "rps")}
                                                   for p in found["probes"]]})
                cell["samples"].append(sample)
                cell["target_rate"] = found["rate"]
                cell["flags"].append("sustainable-rate")
            else:
                cell["error"] = f"no probed rate met p99 ≤ {LATENCY_OBJECTIVE_MS:g} ms: {found['probes']}"[:2000]
            results.finish_cell(cell, self.ceiling_rps)
            self.save()

    def _open_cell(self, stack: Stack, rate: float | None, scenario: str = "card") -> dict[str, Any]:
        cid = results.cell_id(stack.id, scenario, "openloop", None, rate)
        for existing in self.doc["cells"]:
            if existing["id"] == cid:
                return existing
        created = results.new_cell(stack.id, scenario, "openloop", None, mode="open", target_rate=rate)
        self.doc["cells"].append(created)
        return created

    # --- equal offered load (latency claims) -------------------------------------------------
    def equal_load_rates(self) -> dict[str, dict[str, Any]]:
        """Per scenario: the reference (the weakest equal-load stack's closed-loop peak at the
        primary level, median over its repetitions) and the rates every stack gets."""
        profile = self.plan.profile
        out: dict[str, dict[str, Any]] = {}
        for scenario in profile.equal_load_scenarios:
            peaks: dict[str, float] = {}
            for stack in self.plan.equal_load_stacks():
                if scenario not in self.plan.equal_load_scenarios(stack):
                    continue
                cell = self.cell(stack, scenario, self.closed_driver, profile.primary_concurrency)
                peak = (cell["summary"].get("rps") or {}).get("median") if cell["status"] == "ok" else None
                if peak:
                    peaks[stack.id] = float(peak)
            if peaks:
                weakest = min(peaks, key=lambda k: peaks[k])
                out[scenario] = {"reference_rps": peaks[weakest], "reference_stack": weakest, "peaks": peaks,
                                 "rates": {f: equal_rate(peaks[weakest], f) for f in profile.equal_load_fractions}}
        return out

    def equal_load(self) -> None:
        """Every equal-load stack at the SAME fixed arrival rates per scenario (fractions of the
        reference), open loop, each repetition × fraction on a freshly started server that then
        runs every scenario at its rate; interleaved: repetition r rotates the stacks by r."""
        profile = self.plan.profile
        rates = self.equal_load_rates()
        self.doc["settings"]["equal_load"] = {
            "fractions": list(profile.equal_load_fractions), "repetitions": list(profile.equal_load_repetitions),
            "warmup_s": profile.equal_load_warmup_s, "duration_s": profile.equal_load_duration_s,
            "stacks": [s.id for s in self.plan.equal_load_stacks()],
            "scenarios": {k: {**v, "rates": {str(f): r for f, r in v["rates"].items()}} for k, v in rates.items()},
            "note": "latency claims are judged here: the same offered rate for every stack, open loop (no "
                    "coordinated omission); closed-loop latency at saturation measures queueing",
        }
        stacks = self.plan.equal_load_stacks()
        reps = dict(zip(profile.equal_load_fractions, profile.equal_load_repetitions, strict=True))
        for rep in range(max(reps.values(), default=0)):
            order = stacks[rep % len(stacks):] + stacks[: rep % len(stacks)]
            for stack in order:
                for fraction in [f for f in profile.equal_load_fractions if rep < reps[f]]:
                    todo = [s for s in self.plan.equal_load_scenarios(stack) if s in rates]
                    if todo:
                        self._equal_load_once(stack, fraction, todo, rates)
                        if any(scenarios.get(s).writes for s in todo):
                            self.db.restore()

    def _equal_load_once(self, stack: Stack, fraction: float, names: list[str],
                         rates: dict[str, dict[str, Any]]) -> None:
        profile = self.plan.profile
        cells = {}
        for scenario in names:
            ref = rates[scenario]
            cell = self._open_cell(stack, ref["rates"][fraction], scenario)
            cell["extra"] = {"load_group": f"{scenario}-equal", "fraction_of_reference": fraction,
                             "reference_rps": ref["reference_rps"], "reference_stack": ref["reference_stack"]}
            cells[scenario] = cell
        try:
            with self.server(stack) as running:
                load = measure.Load(running.url, running.pid, self.client_cpus)
                with httpx.Client(base_url=running.url, timeout=30) as client:
                    user = self._user(stack, client)
                for scenario, cell in cells.items():
                    rate = float(cell["target_rate"])
                    spec = scenarios.request_spec(scenario, stack.api, user)
                    self.advance(cell["id"])

                    def once(spec: scenarios.RequestSpec = spec, rate: float = rate,
                             extra: dict[str, Any] = cell["extra"]) -> dict[str, Any]:
                        sample = measure.with_server_usage(load, partial(
                            self.open_loop_driver(), running.url, spec, rate, profile.equal_load_duration_s,
                            profile.equal_load_warmup_s, cpus=self.client_cpus))
                        sample["achieved_rps"] = sample["rps"]
                        sample["extra"].update(extra)
                        return sample

                    self.record(cell, once)
        except ServerError as exc:
            for cell in cells.values():
                if not cell["samples"]:
                    cell["status"], cell["error"] = "failed", str(exc)[:2000]
            self.save()

    def _fanout(self, stack: Stack, running: RunningServer, scenario: str) -> None:
        profile = self.plan.profile
        transport = "sse" if scenario == "sse-fanout" and stack.api == "rest" else "ws"
        driver = "sse" if transport == "sse" else "ws"
        levels = profile.fanout_levels if scenario == "sse-fanout" else profile.ws_levels
        load = measure.Load(running.url, running.pid, self.client_cpus)
        with httpx.Client(base_url=running.url, timeout=30) as client:
            user = self._user(stack, client)
        assert user is not None
        for i, n in enumerate(levels):
            cell = self.cell(stack, scenario, driver, n)
            self.advance(cell["id"])
            sample = self.record(cell, partial(
                measure.fanout, load, user.token, stack.api, transport, n, profile.fanout_events,
                profile.fanout_rate, CONNECT_TIMEOUT_S.get(profile.name, 60.0)))
            if sample is None or sample["extra"]["connected"] < n:
                self._skip_rest(stack, scenario, driver, levels[i + 1:], f"{n} subscribers not all held")
                break

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
            levels = self.plan.concurrency(scenario, stack) if scenario in scenarios.WRK_SCENARIOS else [None]
            for conc in levels:
                cell = self.cell(stack, scenario, _driver(scenario, stack, self.closed_driver), conc)
                if not cell["samples"]:
                    cell["status"], cell["error"] = "failed", str(exc)[:2000]
        self.save()

    # --- the driver's ceiling --------------------------------------------------------------
    def measure_ceiling(self) -> None:
        stack = STACKS[CEILING_FLOOR]
        profile = self.plan.profile
        with self.server(stack) as running:
            load = measure.Load(running.url, running.pid, self.client_cpus)
            spec = scenarios.request_spec("config", "floor", None, FLOORS[stack.impl].ready_path)
            sample = self._closed_loop(load, spec, profile.primary_concurrency, None)
            opened = [self._open_loop_ceiling(running, spec, n, sample["rps"]) for n in (1, 2)]
        self.ceiling_rps = sample["rps"]
        self.doc["driver_ceilings"] = [{
            "driver": self.closed_driver, "floor": stack.id, "rps": sample["rps"], "client_cpu_pct": sample["client_cpu_pct"],
            "server_cpu_pct": sample["server_cpu_pct"], "concurrency": profile.primary_concurrency,
            "threads": 1, "note": f"{self.closed_driver} on the client CPUs against the fastest floor; a "
                                  "cell above a third of this rate is flagged client-bound"}]
        self.doc["driver_ceilings"] += opened
        self.save()

    def open_loop_driver(self) -> Callable[..., dict[str, Any]]:
        """The open-loop driver over one process per client CPU (its ceiling grows with them);
        every sample says how many (`extra.processes`)."""
        from loadtests.openloop_split import run_open_loop_split

        return partial(run_open_loop_split, processes=max(1, len(self.client_cpus)))

    def _open_loop_ceiling(self, running: RunningServer, spec: scenarios.RequestSpec, processes: int,
                           offered: float) -> dict[str, Any]:
        """The open-loop driver split over `processes` (loadtests/openloop_split.py) offered the
        closed-loop ceiling against the same floor: what it achieves is its own ceiling."""
        from loadtests.openloop_split import run_open_loop_split

        profile = self.plan.profile
        sample = run_open_loop_split(running.url, spec, offered, min(profile.duration_s, 5.0),
                                     min(profile.warmup_s, 1.0), processes=processes, cpus=self.client_cpus)
        return {"driver": OPENLOOP_CEILING_DRIVER, "floor": CEILING_FLOOR, "rps": sample["rps"], "processes": processes,
                "client_cpu_pct": sample["client_cpu_pct"], "offered_rps": offered,
                "flags": sample["extra"]["flags"], "shared_cpus": sample["extra"].get("split", {}).get("shared_cpus"),
                "note": f"open loop over {processes} process(es) offered the closed-loop ceiling: the rate it "
                        "achieved is its ceiling on these client CPUs (not used for client-bound flags)"}


def equal_rate(reference_rps: float, fraction: float) -> float:
    """The offered rate at `fraction` of the reference, req/s to 0.1 (the same for every stack)."""
    return round(reference_rps * fraction, 1)


def _wrk_threads(stack: Stack) -> int:
    variant = VARIANTS.get(stack.id)
    return variant.wrk_threads if variant else 1


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


def _driver(scenario: str, stack: Stack, closed: str = "wrk") -> str:
    return scenarios.get(scenario).driver(stack.api, closed)


def plan_settings(plan: Plan, estimate: dict[str, float]) -> dict[str, Any]:
    """What the plan decided, for the results' settings: setups, repetitions, windows, searches."""
    p = plan.profile
    return {
        "estimated_wall_s": estimate,
        "setup_rule": setups.MAIN_RULE,
        "variants": {v: {"rule": VARIANTS[v].rule, "workers": VARIANTS[v].workers,
                         "wrk_threads": VARIANTS[v].wrk_threads, "refused": plan.refused.get(v)}
                     for v in (s.id for s in plan.stacks) if v in VARIANTS},
        "verdict_repetitions": p.repetitions, "sensitivity_repetitions": p.sensitivity_reps,
        "sensitivity_duration_s": p.sensitivity_duration_s or p.duration_s,
        "verdict_concurrency": p.primary_concurrency,
        "repetitions_by_cell": {f"{s.id}/{sc}": {str(c): plan.repetitions(s, sc, c) for c in plan.concurrency(sc, s)}
                                if sc in scenarios.WRK_SCENARIOS else plan.repetitions(s, sc)
                                for s in plan.stacks for sc in plan.scenarios[s.id]},
        "closed_loop_latency": "closed-loop latency at saturation is queueing (wrk keeps every connection "
                               "busy), not response time: latency claims use the equal-load open-loop cells",
        "p99_swing_limit": p.p99_swing_limit,
        "capacity_repetitions": p.capacity_repetitions,
        "grid_with_capacity": {s: {"levels": list(p.chat_levels), "repetitions": plan.grid_repetitions(s)}
                               for s in p.grid_with_capacity if s == "chat"},
        "micro": {"runs": p.micro_runs, "max_time_s": p.micro_max_time_s} if p.micro else None,
        "journey_think_s": p.journey_think_s,
        "capacity": {k: {"start": v.start, "max_level": v.max_level, "resolution": v.resolution,
                         "max_probes": v.max_probes, "budget_s": v.budget_s, "growth": v.growth,
                         "objective": capacity.objective_text(k, p.upstream_ttft_ms),
                         "open_files_limit": capacity.open_files_limit()}
                     for k, v in p.capacity.items()},
    }


def _run_checks(console: Console, run_dir: Path) -> dict[str, Any]:
    """The checks some claims rest on ("SM-2 results unchanged", "0 breaking changes"), run here so
    the report can cite them: the SM-2 vectors and properties, and the contract drift tests. A
    failed suite's pytest output is kept beside the results (check-KEY.txt, named in `logs`)."""
    suites = {"sm2-parity": ["tests/test_sm2.py"], "contract-parity": ["tests/contract/test_drift.py"]}
    outcome: dict[str, Any] = {}
    for key, paths in suites.items():
        if not all((REPO_ROOT / p).exists() for p in paths):
            outcome[key] = "skipped"
            continue
        proc = run_child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
                         cwd=REPO_ROOT, timeout=600)
        outcome[key] = "passed" if proc.returncode == 0 else "failed"
        console.print(f"check {key}: {outcome[key]}")
        if proc.returncode != 0:
            log = run_dir / f"check-{key}.txt"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(proc.stdout + proc.stderr)
            outcome.setdefault("logs", {})[key] = log.name
            for line in [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))][:5]:
                console.print(f"  [red]{line[:300]}[/red]")
            console.print(f"  full output: {log}")
    return outcome


def _run_reliability(console: Console, run_dir: Path) -> dict[str, Any]:
    """Faults injected, bad inputs tried, parity: the suites behind the report's reliability
    section, run now so the section describes this commit."""
    from loadtests.reliability import failure_lines, run_reliability_checks

    with console.status("reliability suites (faults, bad input, parity)…"):
        summary = run_reliability_checks(REPO_ROOT, keep_dir=run_dir)
    console.print(f"reliability: {summary.get('status')}")
    if summary.get("status") != "passed":
        for line in failure_lines(summary):
            console.print(f"  [red]{line[:300]}[/red]")
        kept = summary.get("junit") or summary.get("output")
        if kept:
            console.print(f"  details: {run_dir / kept}")
    return summary


def _run_micro(out_dir: Path, cpus: tuple[int, ...], console: Console, *, runs: int = 1,
               max_time_s: float = 0.25) -> dict[str, Any] | None:
    """pytest-benchmark over benchmarks/ (Pydantic v1 vs v2, json vs orjson, SM-2 step), `runs`
    times, each a fresh process: the first run's JSON in full, and every run's statistics under
    "runs" (rounds of one process are one repetition; verdicts compare the runs' medians)."""
    import json

    done: list[dict[str, Any]] = []
    for i in range(max(1, runs)):
        target = out_dir / f"micro-{i + 1}.json"
        argv = [sys.executable, "-m", "pytest", "benchmarks/test_micro.py", "-q", "-p", "no:cacheprovider",
                "--benchmark-only", f"--benchmark-json={target}", "--benchmark-min-rounds=50"]
        # the file's marker sets max_time (marker options win over --benchmark-max-time)
        env = {**os.environ, "STACKBENCH_MICRO_MAX_TIME_S": f"{max_time_s:g}"}
        proc = run_child(["taskset", "-c", ",".join(map(str, cpus)), *argv] if cpus else argv,
                         cwd=REPO_ROOT, timeout=900, env=env)
        if proc.returncode != 0 or not target.exists():
            console.print(f"[red]micro-benchmark run {i + 1} failed:[/red] {proc.stdout[-500:]}{proc.stderr[-500:]}")
            continue
        done.append(dict(json.loads(target.read_text())))
    if not done:
        return None
    first = dict(done[0])
    first["runs"] = [micro_run_summary(d) for d in done]
    return first


MICRO_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "rounds", "iterations")


def micro_run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """One pytest-benchmark run without its raw timings: what `verdicts._run_medians` reads."""
    return {"datetime": doc.get("datetime"), "benchmarks": [
        {"name": b.get("name"), "fullname": b.get("fullname"), "group": b.get("group"),
         "extra_info": b.get("extra_info") or {}, "params": b.get("params"),
         "stats": {k: (b.get("stats") or {}).get(k) for k in MICRO_STATS}}
        for b in doc.get("benchmarks", [])]}


@catch_stop_signals()
def main(*, profile: str, impls: list[str] | None, servers: list[str] | None, scenarios: list[str] | None,
         stacks: list[str] | None, dsn: str | None, out: Path, write_report: bool, console: Console,
         server_cpus: str | None = None, client_cpus: str | None = None, latest: bool | None = None,
         db_delays_ms: list[float] | None = None) -> Path:
    from stackbench.database import resolve_dsn
    from upstream_sim.server import start_subprocess

    chosen = PROFILES.get(profile)
    if chosen is None:
        raise SystemExit(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    closed_driver = "wrk" if wrk_available() else "locust"
    if closed_driver == "locust":
        console.print("[yellow]wrk is not installed (apt-get install -y wrk): closed-loop cells run on "
                      "locust, which is slower than most stacks here — expect client-bound flags[/yellow]")
    if chosen.stacks and not (stacks or impls or servers):  # the profile's own matrix (`ci`)
        stacks = list(chosen.stacks)
    scenarios = scenarios or list(chosen.scenarios) or None
    srv_cpus, cli_cpus = split_cpus(server_cpus, client_cpus)
    plan = make_plan(chosen, stack_ids=stacks, impls=impls, servers=servers, only=scenarios,
                     server_cpus=srv_cpus, client_cpus=cli_cpus)
    subset = bool(stacks or impls or servers or scenarios)
    estimate = plan.estimate_s(subset=subset)
    console.print(f"plan: {plan.measurements()} measurements, estimated wall time "
                  f"{estimate['total'] / 60:.0f} min ({', '.join(f'{k} {v / 60:.1f}' for k, v in estimate.items() if v and k != 'total')} min)"
                  + (f" + latency sweep {chosen.db_sweep.estimate_s() / 60:.1f} min" if chosen.db_sweep and not db_delays_ms else ""))
    base_dsn = resolve_dsn(dsn)
    env_doc = environment.capture(base_dsn)
    run_id = results.make_run_id((env_doc.get("git") or {}).get("commit"))
    run_dir = out / run_id
    db = BenchDatabase(base_dsn, chosen.seed)
    console.print(f"databases of this run: {db.working_name} and {db.template_name} (dropped at the end; "
                  "no other database is touched)")
    with console.status(f"seeding {chosen.seed}…"):
        seeded = db.prepare()
    console.print(f"seeded {seeded.cards} cards ({seeded.due_now} due) in {seeded.seconds:.1f} s")
    upstream: dict[str, Any] = {"ttft_ms": chosen.upstream_ttft_ms, "inter_token_ms": chosen.upstream_token_interval_ms,
                "tokens": chosen.upstream_tokens}
    sim = start_subprocess(port=0, cpus=cli_cpus, **upstream)
    app_settings = Settings()
    settings = {
        "server_cpus": list(srv_cpus), "client_cpus": list(cli_cpus), "latency_objective_ms": LATENCY_OBJECTIVE_MS,
        "warmup_s": chosen.warmup_s, "duration_s": chosen.duration_s, "repetitions": chosen.repetitions,
        "concurrency": list(chosen.concurrency), "primary_concurrency": chosen.primary_concurrency,
        "chat_levels": list(chosen.chat_levels), "fanout_levels": list(chosen.fanout_levels),
        "ws_levels": list(chosen.ws_levels), "fanout_events": chosen.fanout_events, "fanout_rate": chosen.fanout_rate,
        "upstream": {**upstream, "token_interval_ms": chosen.upstream_token_interval_ms, "url": sim.url},
        "database": db.describe(),
        "app": {"pool_size_per_worker": app_settings.pool_size, "pool_max_overflow": app_settings.pool_max_overflow,
                "pool_pre_ping": app_settings.pool_pre_ping,
                "password_hash": "argon2id t=3 m=64MiB p=4 (library defaults)", "environment": "production"},
        "subset": subset, "scenarios": plan.scenarios, "closed_loop_driver": closed_driver,
        "openloop_processes": max(1, len(cli_cpus)),  # one per client CPU (loadtests/openloop_split.py)
        "multicore": multicore.describe({s.id: s.server for s in plan.stacks if s.kind == "app"}, srv_cpus, cli_cpus),
        **plan_settings(plan, estimate),
    }
    doc = results.new_document(run_id=run_id, profile=chosen.name, environment=env_doc, settings=settings)
    env = {"STACKBENCH_DSN": db.dsn, "STACKBENCH_UPSTREAM_URL": sim.url, "STACKBENCH_ENVIRONMENT": "production",
           "STACKBENCH_JWT_SECRET": secrets.token_urlsafe(32),
           # the realtime cells hold every stream with ONE user's token: lift the per-user caps (issue 19)
           "STACKBENCH_MAX_STREAMS_PER_USER": "1000000", "STACKBENCH_MAX_CHATS_PER_USER": "1000000"}
    bench = Bench(plan, doc, run_dir / "results.json", db, env, srv_cpus, cli_cpus, upstream, console,
                  closed_driver=closed_driver)
    started = time.monotonic()
    stopped_by: BaseException | None = None
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("left ~"), TimeRemainingColumn(), console=console, transient=False) as progress:
            task = progress.add_task("driver ceiling", total=plan.measurements() + 1)
            bench.advance = lambda what: progress.update(task, advance=1, description=what)
            bench.measure_ceiling()
            progress.update(task, advance=1)
            for rep in range(0 if db_delays_ms else chosen.repetitions):  # --db-delay-ms: the sweep only
                order = plan.stacks[rep % len(plan.stacks):] + plan.stacks[: rep % len(plan.stacks)]
                for stack in order:
                    bench.run_stack(stack, rep)
            if plan.equal_load_stacks() and not db_delays_ms:
                bench.equal_load()
            if db_delays_ms or chosen.db_sweep is not None:  # the latency sweep (loadtests/sweep.py)
                from loadtests.sweep import run_from_profile

                chosen_apps = [s.id for s in plan.stacks if s.kind == "app"] if (stacks or impls or servers) else None
                run_from_profile(bench, chosen, db_delays_ms, chosen_apps, scenarios)
        results.refresh_ceiling(doc)
        bench.save()
        if chosen.robustness is not None and not subset:  # every server once (loadtests/robustness_matrix.py)
            from loadtests.robustness_matrix import for_bench

            doc["robustness"] = for_bench(bench, chosen.robustness)
            bench.save()
        if chosen.micro and not subset:
            with console.status(f"micro-benchmarks ({chosen.micro_runs} runs)…"):
                doc["micro"] = _run_micro(run_dir, srv_cpus, console, runs=chosen.micro_runs,
                                          max_time_s=chosen.micro_max_time_s)
        doc["checks"] = _run_checks(console, run_dir) if not subset else {}
        if not subset:
            doc["checks"]["reliability"] = _run_reliability(console, run_dir)
    except BaseException as exc:  # Ctrl-C, SIGTERM or a crash: what was measured stays, marked partial
        stopped_by = exc
        raise
    finally:
        sim.stop()
        try:
            db.drop()
        except Exception as exc:  # the results matter more than the clean-up
            console.print(f"[yellow]could not drop {db.working_name}/{db.template_name}: {exc}[/yellow]")
        if stopped_by is None:
            results.mark_complete(doc)
        else:
            results.mark_interrupted(doc, reason_of(stopped_by), bench.in_flight)
        doc["environment"]["machine"]["bench_wall_s"] = time.monotonic() - started
        bench.save()
        if stopped_by is not None:
            console.print(f"[yellow]run interrupted ({reason_of(stopped_by).splitlines()[0][:200]}): servers "
                          f"stopped; partial results ({doc['interrupted']['completed_cells']} cells) in "
                          f"{bench.path}\n  render them: stackbench report {bench.path}[/yellow]")
    console.print(f"results: {bench.path}")
    if write_report:
        from loadtests.report import write_report as write

        report_dir = write(bench.path, run_dir)
        if latest if latest is not None else (chosen.name == "standard" and not subset):
            write(bench.path, REPO_ROOT / "reports" / "latest")
            console.print("report copied to reports/latest/")
        console.print(verdict_summary(bench.path, report_dir / "report.html"))
    return bench.path


def verdict_summary(results_path: Path, report: Path | None = None) -> str:
    """The terminal's last words: claims per status and where the report is (the table itself
    is in the report, with what each verdict compared)."""
    import json

    from loadtests.report.verdict import judge
    from loadtests.verdict_render import terminal_summary

    found, _registry = judge(json.loads(Path(results_path).read_text()))
    return terminal_summary(found, report)
