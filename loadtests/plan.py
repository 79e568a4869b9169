"""The plan of a run: which stacks run which scenarios, at which levels, how often and how long
(from the profile and the claims that use each cell), what that costs in wall time, and the
settings that record it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loadtests import capacity, multicore, scenarios, setups
from loadtests.profiles import Profile, claimed_cells
from loadtests.servers import all_servers
from loadtests.setups import VARIANTS, refusal, variant_stack
from loadtests.stacks import CEILING_FLOOR, STACKS, Stack, select

REALTIME = scenarios.names("streams", "fanout")
JOURNEYS = scenarios.names("session")
# families whose grid of levels (profile.grid_with_capacity) can run beside their capacity search
GRID_BESIDE_SEARCH = ("streams", "session")
# Closed loops of WebSocket sessions (ws-connect): verdict cells with `repetitions` like wrk's,
# at the profile's one fixed client count, but not wrk cells (no concurrency sweep).
CONNECT = scenarios.names("connect")
DEFAULT_SCENARIOS = tuple(scenarios.SCENARIOS)


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
    "driver_start": 1.0,  # a Python driver's interpreter start (ws-connect runs its warm-up apart)
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
        if scenario in CONNECT:  # one fixed client count for every stack: like for like
            return scenarios.get(scenario).levels(profile)
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
        if scenario in (*REALTIME, *JOURNEYS):
            if scenario in profile.capacity:
                return min(profile.capacity_repetitions, profile.repetitions)
            return min(profile.realtime_repetitions, profile.repetitions)
        if scenario in CONNECT:  # a verdict cell at its one level when a claim uses it
            unclaimed = profile.trim_unclaimed and self.claimed(stack, scenario) is None
            return profile.sensitivity_reps if unclaimed else profile.repetitions
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
        if scenario in CONNECT and profile.ws_connect_duration_s is not None:
            return profile.ws_connect_duration_s
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
                    if scenarios.family_of(scenario) in GRID_BESIDE_SEARCH:
                        total += len(scenarios.get(scenario).levels(profile)) * self.grid_repetitions(scenario)
                elif scenario in REALTIME:
                    levels = scenarios.get(scenario).levels(profile)
                    total += len(levels) * self.repetitions(stack, scenario)
                elif scenario in JOURNEYS or scenario in CONNECT:
                    total += self.repetitions(stack, scenario)
                else:
                    total += sum(self.repetitions(stack, scenario, c) for c in self.concurrency(scenario, stack))
            if self.open_loop(stack):
                total += len(profile.open_loop_fractions) + profile.sustainable_search
        total += sum(len(self.equal_load_scenarios(s)) * sum(profile.equal_load_repetitions)
                     for s in self.equal_load_stacks())
        total += len(self.fanout_workers_stacks()) * len(profile.fanout_workers)
        return total

    def fanout_workers_stacks(self) -> list[Stack]:
        """The stacks of the fan-out-across-workers cells (loadtests/fanout_workers.py)."""
        return [s for s in self.stacks if s.id in self.profile.fanout_workers_stacks
                and "sse-fanout" in self.scenarios.get(s.id, [])]

    def open_loop(self, stack: Stack) -> bool:
        return (stack.id in self.profile.featured and scenarios.open_loop().name in self.scenarios[stack.id]
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

        def closed_sample(stack: Stack | None = None, scenario: str | None = None, level: int | None = None) -> float:
            window = self.duration_s(stack, scenario, level) if stack is not None and scenario else p.duration_s
            return p.warmup_s + window + COST_S["sample_overhead"]

        phases = dict.fromkeys(("seed", "ceiling", "closed", "server_starts", "realtime", "journey",
                                "equal_load", "open_loop", "checks"), 0.0)
        phases["seed"] = (COST_S["seed_standard"] if p.seed.users * p.seed.decks_per_user * p.seed.cards_per_deck >= 100_000
                          else COST_S["seed_small"])
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
            for scenario in (s for s in names if s in CONNECT):  # in the closed loops' server start
                reps = self.repetitions(stack, scenario)
                phases["closed"] += reps * (closed_sample(stack, scenario) + COST_S["driver_start"])
                if not closed:
                    phases["server_starts"] += start * reps
            for scenario in closed:
                phases["closed"] += sum(self.repetitions(stack, scenario, c) * closed_sample(stack, scenario, c)
                                        for c in self.concurrency(scenario, stack))
            for scenario in (s for s in names if s in REALTIME):
                reps = self.repetitions(stack, scenario)
                streams = scenarios.family_of(scenario) == "streams"  # else fan-out
                levels = scenarios.get(scenario).levels(p)
                if scenario in p.capacity:
                    search = p.capacity[scenario]
                    probe = start + (COST_S["chat_probe"] if streams else COST_S["fanout_probe"])
                    first = min(search.budget_s + probe, search.max_probes * probe)
                    again = min(search.budget_s + probe, CONFIRM_PROBES * probe)  # capacity.confirming
                    phases["realtime"] += first + (reps - 1) * again if reps else 0.0
                    if streams:  # the grid beside the search, in the main server start
                        phases["realtime"] += self.grid_repetitions(scenario) * len(levels) * COST_S["chat_cell"]
                else:
                    cell = COST_S["chat_cell"] if streams else COST_S["fanout_cell"]
                    phases["realtime"] += reps * (len(levels) * cell + (0 if streams else start))
            for journey in (s for s in JOURNEYS if s in names):
                cell = journey_duration(p) + max(p.warmup_s, 3.0) + 4.0
                if journey in p.capacity:  # probes on fresh servers, the grid in the main start
                    search, reps = p.capacity[journey], self.repetitions(stack, journey)
                    first = min(search.budget_s + start + cell, search.max_probes * (start + cell))
                    again = min(search.budget_s + start + cell, CONFIRM_PROBES * (start + cell))
                    phases["journey"] += (first + (reps - 1) * again if reps else 0.0) + \
                        self.grid_repetitions(journey) * cell
                else:
                    phases["journey"] += self.repetitions(stack, journey) * cell
            if self.open_loop(stack):
                phases["open_loop"] += (len(p.open_loop_fractions) + 5 * p.sustainable_search) * (
                    p.warmup_s + p.duration_s + COST_S["sample_overhead"])
        # fan-out across workers: a server start and one fan-out cell per (stack, worker count)
        phases["fanout_workers"] = len(self.fanout_workers_stacks()) * len(p.fanout_workers) * (
            COST_S["server_start_app"] + COST_S["fanout_cell"])
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
            names = [s.name for s in scenarios.closed_loop() if s.floors]  # the driver's ceiling
        if stack.id in VARIANTS:
            names = [s for s in names if s in VARIANTS[stack.id].scenarios]
            why = refusal(stack.id, server_cpus, client_cpus)
            if why:
                refused[stack.id] = why
        if profile.journey_users == 0 or stack.id not in profile.featured:
            names = [s for s in names if s not in JOURNEYS]
        if profile.trim_unclaimed:  # scale runs no claim uses cost minutes each: not run
            names = [s for s in names if s not in (*REALTIME, *CONNECT, *JOURNEYS) or plan.claimed(stack, s) is not None]
            named = any(plan.claimed(stack, s) is not None for s in scenarios.SCENARIOS)
            if stack.kind == "app" and not named and stack.id not in VARIANTS:
                names = [s for s in names if s in profile.unclaimed_stack_scenarios]
        per_stack[stack.id] = names
    plan.stacks = [s for s in chosen if per_stack[s.id]]
    return plan


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
        "grid_with_capacity": {s: {"levels": list(scenarios.get(s).levels(p)), "repetitions": plan.grid_repetitions(s)}
                               for s in p.grid_with_capacity if scenarios.family_of(s) in GRID_BESIDE_SEARCH},
        "micro": {"runs": p.micro_runs, "max_time_s": p.micro_max_time_s} if p.micro else None,
        "journey_think_s": p.journey_think_s,
        "capacity": {k: {"start": v.start, "max_level": v.max_level, "resolution": v.resolution,
                         "max_probes": v.max_probes, "budget_s": v.budget_s, "growth": v.growth,
                         "objective": capacity.objective_text(k, p.upstream_ttft_ms),
                         "open_files_limit": capacity.open_files_limit()}
                     for k, v in p.capacity.items()},
    }
