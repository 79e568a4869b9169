"""Benchmark profiles: how long, how often, how far. `quick` is the default of `nox -s bench`.

`standard` is sized from the claims (`claimed_cells` reads loadtests/claims.toml): every cell a
verdict uses runs `repetitions` (≥ 5) interleaved repetitions with wrk windows of `duration_s`
(≥ 10 s) after the warm-up, at every concurrency a claim names and at the primary level; other
levels, stacks and floors are a sensitivity sweep at `sensitivity_repetitions`, and realtime or
journey cells no claim uses are not run (`trim_unclaimed`). `plan.Plan.estimate_s` prices the
plan before it runs (standard with its latency sweep: ≤ 75 minutes on the 2-core machine, plus ≈ 20
for the server-robustness matrix at the issue's reference sizes; quick runs no robustness matrix).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from loadtests import sweep_settings
from loadtests.capacity import CapacitySearch
from loadtests.robustness_matrix import STANDARD as ROBUSTNESS_STANDARD
from loadtests.robustness_matrix import RobustnessSettings
from loadtests.sweep_settings import SweepSettings
from provision.seed import SeedPlan

CLAIMS = Path(__file__).with_name("claims.toml")


@dataclass(frozen=True)
class Profile:
    name: str
    repetitions: int
    warmup_s: float
    duration_s: float
    concurrency: tuple[int, ...]  # wrk connections swept for config and card
    seed: SeedPlan
    floors: tuple[str, ...] | None  # None: every floor in the registry
    chat_levels: tuple[int, ...]
    fanout_levels: tuple[int, ...]
    ws_levels: tuple[int, ...]
    open_loop_fractions: tuple[float, ...]
    sustainable_search: bool
    journey_users: int  # 0: no locust journey
    micro: bool
    # Independent pytest-benchmark processes (doc["micro"]["runs"]): micro verdicts are decisive
    # only over rules.MIN_DECISIVE of them (rounds inside one process are one repetition).
    micro_runs: int = 1
    micro_max_time_s: float = 1.0  # seconds per benchmark, per run (benchmarks/test_micro.py)
    # Mean think time of a journey user (locust `between(0, 2 × think)`): with it, a stack that
    # keeps up serves users × requests per task ÷ (think + task time), the same pace for every
    # such stack, so the journey's latency is response time, not queueing (evidence._pace_equal).
    journey_think_s: float = 0.0
    # the upstream simulator for chat: like a real LLM API, shortened for the quick profile
    upstream_ttft_ms: int = 300
    upstream_token_interval_ms: int = 30
    upstream_tokens: int = 20
    fanout_events: int = 10
    # ws-connect: WebSocket sessions in a closed loop at this many clients, the same for every
    # stack (a fixed level, so the verdict compares like for like), `duration_s` windows
    ws_connect_clients: int = 32
    # its window (None: `duration_s`); thousands of sessions per window even at a few hundred a
    # second, so a short window is not noisy, and it keeps the standard profile in its budget
    ws_connect_duration_s: float | None = None
    fanout_rate: float = 5.0
    # Fan-out across server workers through the PostgreSQL feed (loadtests/fanout_workers.py):
    # these worker counts, at `fanout_workers_subscribers` SSE subscribers, on these stacks.
    fanout_workers: tuple[int, ...] = ()
    fanout_workers_subscribers: int = 1000
    fanout_workers_stacks: tuple[str, ...] = ("rest-uvicorn",)
    primary_concurrency: int = 64  # wrk connections for due and review, the driver ceiling
    # Stacks that also get open-loop latency, the sustainable-rate search and the locust journey
    # (one per implementation family the claims compare; each costs about a minute).
    featured: tuple[str, ...] = ("flask-gunicorn-gthread", "flask-gunicorn-gevent", "flask-waitress",
                                 "rest-uvicorn", "graphql-uvicorn")
    # Realtime, open-loop and journey cells are scale runs: measured in the first repetitions only.
    realtime_repetitions: int = 1
    # Cells no verdict uses (other levels, stacks, floors, variants) run this many repetitions.
    sensitivity_repetitions: int | None = None  # None: `repetitions`
    sensitivity_duration_s: float | None = None  # their wrk window (None: `duration_s`)
    sweep_scenarios: tuple[str, ...] = ("config", "card")  # scenarios swept over `concurrency`
    # The latency sweep (loadtests/sweep.py: injected database round trips, upstream TTFT); None: off
    db_sweep: SweepSettings | None = None
    trim_unclaimed: bool = False  # skip realtime/journey cells no claim uses; see below
    # With trim_unclaimed: stacks no claim names run only these scenarios (at the primary level),
    # and the concurrency sweep runs on the stacks claims name only.
    unclaimed_stack_scenarios: tuple[str, ...] = ("config",)
    journey_duration_s: float | None = None  # None: 2 × duration_s
    # Equal offered load (latency claims): every featured stack at the same rates, fractions of
    # the weakest featured stack's closed-loop peak at the primary level, per scenario.
    equal_load_fractions: tuple[float, ...] = ()
    equal_load_repetitions: tuple[int, ...] = ()  # per fraction
    equal_load_scenarios: tuple[str, ...] = ("config", "card")
    equal_load_stacks: tuple[str, ...] | None = None  # None: every featured stack
    equal_load_warmup_s: float = 1.0
    equal_load_duration_s: float = 5.0
    # Capacity by search (scenario → search); scenarios not here run the `*_levels` grid.
    capacity: dict[str, CapacitySearch] = field(default_factory=dict)
    # Searches per (stack, scenario): rules.MIN_SEARCHES (2) for a decisive capacity verdict. The
    # first brackets the limit; each later one re-measures that bracket on fresh servers (it starts
    # at the held level and steps to the failed one) and widens it where the limit moved.
    capacity_repetitions: int = 1
    # Scenarios that ALSO run their grid of levels (chat_levels…) at realtime_repetitions beside
    # the search: claims on their latency, memory or errors read grid cells, not the search.
    grid_with_capacity: tuple[str, ...] = ()
    # Setups run beside the main matrix (loadtests/setups.py VARIANTS), on config.
    variants: tuple[str, ...] = ()
    p99_swing_limit: float = 1.5  # max/min of a cell's p99 over repetitions above this: flagged
    # The matrix this profile runs when the command names none (empty: every stack/scenario).
    stacks: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()
    # Stacks run as a scaling curve (1, 2, 4, … workers on as many server cores; loadtests/multicore.py).
    scaling_stacks: tuple[str, ...] = ()
    # The server-robustness matrix (loadtests/robustness_matrix.py, issue 19): every server once,
    # after the main matrix; None: not run (`stackbench robustness --quick` runs it alone).
    robustness: RobustnessSettings | None = None

    @property
    def sensitivity_reps(self) -> int:
        return self.repetitions if self.sensitivity_repetitions is None else self.sensitivity_repetitions


QUICK_FLOORS = (
    "raw-asgi-granian-asgi", "raw-asgi-uvicorn", "raw-wsgi-granian-wsgi", "raw-wsgi-gunicorn-gthread",
    "hello-fastapi", "hello-flask", "hello-strawberry", "db-fastapi", "db-flask", "db-strawberry",
)

# 100 users × 10 decks × 100 cards: the review load is spread over every user
# (`Scenario.spread_users`) and a review holds its user's feed lock for about 3 round trips, so
# with 10 users the latency sweep measured the lock (10 ÷ (3 × 20 ms) ≈ 167 req/s), not the stack.
SEED_100_USERS = SeedPlan(users=100, decks_per_user=10, cards_per_deck=100, seed=1)

PROFILES = {
    # CI's smoke run (tests/loadtests/test_runner.py): every code path, seconds per cell.
    "smoke": Profile(
        name="smoke", repetitions=1, warmup_s=0.5, duration_s=1.0, concurrency=(8,),
        seed=SeedPlan(users=2, decks_per_user=2, cards_per_deck=20, seed=1),
        floors=(), chat_levels=(5,), fanout_levels=(20,), ws_levels=(20,),
        open_loop_fractions=(), sustainable_search=False, journey_users=0, micro=False,
        upstream_ttft_ms=50, upstream_token_interval_ms=5, upstream_tokens=5, fanout_events=3,
        fanout_rate=10.0, primary_concurrency=8, fanout_workers=(2,), fanout_workers_subscribers=20,
    ),
    "quick": Profile(
        name="quick", repetitions=1, warmup_s=1.0, duration_s=3.0, concurrency=(100,),
        seed=SeedPlan(users=50, decks_per_user=10, cards_per_deck=40, seed=1),
        floors=QUICK_FLOORS, chat_levels=(20, 100), fanout_levels=(500,), ws_levels=(500,),
        open_loop_fractions=(), sustainable_search=False, journey_users=0, micro=True,
        micro_runs=2, micro_max_time_s=0.25,  # an interval, never a decisive micro verdict
        fanout_events=5, primary_concurrency=100, db_sweep=sweep_settings.QUICK,
        fanout_workers=(1, 2), fanout_workers_subscribers=50,
    ),
    # Verdict cells: 5 interleaved repetitions, 10 s wrk windows at c100 (the level the EAS wrk
    # claims name; the primary level of every other closed-loop claim); c16/c256 on config as a
    # one-repetition sensitivity sweep (3 s windows); capacity by two searches; equal-load open
    # loop at 50 % (5 repetitions, judged; `full` adds 25 % and 75 %); micro-benchmarks in 5
    # processes; the journey with 2 s mean think time (100 users offer about 170 req/s), and the
    # users it holds by two searches (≈ 6 min more: a probe is a fresh server and a journey).
    # With its sweep, ≤ 81 minutes on 2 cores (Plan.estimate_s + SweepSettings.estimate_s): 75
    # until the journey's users-held search (≈ 6 min, "100 → 200 concurrent users"); 60
    # until the equal-load loop took due and review too (≈ 3.3 min), which 8 claim parts read;
    # 65 until the sweep took review, a third repetition and a second TTFT (≈ 5.5 → 15 min).
    # Fan-out across 1 and 2 workers on the PostgreSQL feed adds ≈ 40 s on top (issue 16).
    "standard": Profile(
        name="standard", repetitions=5, warmup_s=1.0, duration_s=10.0, concurrency=(16, 100, 256),
        seed=SEED_100_USERS,
        floors=None, chat_levels=(10,), fanout_levels=(1000, 5000), ws_levels=(1000,),
        open_loop_fractions=(), sustainable_search=False, journey_users=100, micro=True,
        micro_runs=5, micro_max_time_s=0.25, journey_think_s=2.0,
        primary_concurrency=100, sensitivity_repetitions=1, sensitivity_duration_s=3.0,
        sweep_scenarios=("config",),
        trim_unclaimed=True, equal_load_fractions=(0.5,), equal_load_repetitions=(5,),
        equal_load_duration_s=4.0, journey_duration_s=10.0, ws_connect_duration_s=5.0,
        # the scenarios and stacks latency claims compare (claims.toml: the p50/p99/mean claims
        # name config, card, due and review)
        equal_load_scenarios=("config", "card", "due", "review"),
        equal_load_stacks=("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn"),
        featured=("flask-gunicorn-gthread", "flask-gunicorn-gevent", "flask-waitress", "rest-uvicorn"),
        realtime_repetitions=5,
        capacity={"chat": CapacitySearch(start=20, max_level=2000, max_probes=8, budget_s=60),
                  "sse-fanout": CapacitySearch(start=500, max_level=10000, max_probes=8, budget_s=75),
                  "ws": CapacitySearch(start=500, max_level=10000, max_probes=8, budget_s=75),
                  # "100 → 200 concurrent users": users held, from the journey's 100 up by doubling
                  "journey": CapacitySearch(start=100, max_level=1600, resolution=0.25, max_probes=6, budget_s=110,
                                            growth=2.0)},
        capacity_repetitions=2, grid_with_capacity=("chat", "journey"),
        variants=("flask-gunicorn-gthread-2n1", "flask-gunicorn-gevent-2n1",
                  "flask-gunicorn-gevent-eas", "rest-uvicorn-eas"),
        db_sweep=sweep_settings.STANDARD,  # ≈ 15 min on 2 cores (SweepSettings.estimate_s)
        # the reference sizes (200 slowloris connections for 60 s …): ≈ 20 min, priced apart
        robustness=ROBUSTNESS_STANDARD,
        # fan-out across 1 and 2 workers through the PostgreSQL feed: ≈ 40 s (Plan.estimate_s)
        fanout_workers=(1, 2), fanout_workers_subscribers=1000,
    ),
    # The pull-request gate (`stackbench compare --fail-on worse`, examples/ci/): one stack per
    # implementation × config/card/review, 5 interleaved fresh-server repetitions (the rank test
    # is defined from 4 a side), 4 s windows; `Plan.estimate_s` prices it at ≈ 7 minutes on 2
    # cores. A subset run: no micro-benchmarks, checks or reliability suites (CI runs the tests).
    "ci": Profile(
        name="ci", repetitions=5, warmup_s=1.0, duration_s=4.0, concurrency=(64,),
        seed=SeedPlan(users=10, decks_per_user=10, cards_per_deck=100, seed=1),
        floors=(), chat_levels=(), fanout_levels=(), ws_levels=(), open_loop_fractions=(),
        sustainable_search=False, journey_users=0, micro=False, primary_concurrency=64, featured=(),
        stacks=("flask-gunicorn-gthread", "rest-uvicorn", "graphql-uvicorn"),
        scenarios=("config", "card", "review"),
    ),
    # Multi-core (loadtests/multicore.py; README "Multi-core runs"): the equal-worker matrix (one
    # worker per server core), gunicorn's 2n+1 rule, the EAS document's setups as written (gevent
    # 2 workers × 1000 connections vs uvicorn 4 workers, wrk -t4 -c100) and a scaling curve per
    # stack. Full on 8 server + 4 client cores; on fewer the curve stops there, the rest is refused.
    "scale": Profile(
        name="scale", repetitions=3, warmup_s=2.0, duration_s=10.0, concurrency=(100,),
        seed=SeedPlan(users=10, decks_per_user=10, cards_per_deck=1000, seed=1),
        floors=(), chat_levels=(), fanout_levels=(), ws_levels=(), open_loop_fractions=(),
        sustainable_search=False, journey_users=0, micro=False, primary_concurrency=100, featured=(),
        stacks=("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn", "graphql-uvicorn",
                "flask-gunicorn-gthread-2n1", "flask-gunicorn-gevent-2n1",
                "flask-gunicorn-gevent-eas", "rest-uvicorn-eas"),
        scenarios=("config", "card"),
        scaling_stacks=("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn", "graphql-uvicorn"),
    ),
    "full": Profile(
        name="full", repetitions=5, warmup_s=3.0, duration_s=10.0, concurrency=(16, 64, 256, 512),
        seed=SEED_100_USERS,
        floors=None, chat_levels=(10, 100, 500, 1000, 2000), fanout_levels=(1000, 5000, 10000),
        ws_levels=(1000, 5000), open_loop_fractions=(0.5, 0.8), sustainable_search=True,
        journey_users=100, micro=True, micro_runs=5, journey_think_s=2.0, primary_concurrency=100,
        capacity_repetitions=2, equal_load_fractions=(0.25, 0.5, 0.75), equal_load_repetitions=(5, 5, 5),
        equal_load_duration_s=10.0, realtime_repetitions=5,
        capacity={"chat": CapacitySearch(start=20, max_level=5000, resolution=0.1, budget_s=300),
                  "sse-fanout": CapacitySearch(start=500, max_level=19000, resolution=0.1, budget_s=300),
                  "ws": CapacitySearch(start=500, max_level=19000, resolution=0.1, budget_s=300),
                  "journey": CapacitySearch(start=100, max_level=3200, resolution=0.1, budget_s=300, growth=2.0)},
        grid_with_capacity=("journey",),
        variants=("flask-gunicorn-gthread-2n1", "flask-gunicorn-gevent-2n1",
                  "flask-gunicorn-gevent-eas", "rest-uvicorn-eas"),
        db_sweep=sweep_settings.FULL,
    ),
}


@cache
def claimed_cells(path: Path = CLAIMS) -> dict[tuple[str, str], frozenset[int | None]]:
    """(stack, scenario) → the concurrency levels claims name there (None: the primary level),
    for every testable claim judged on load-test cells (baseline and candidate)."""
    with path.open("rb") as f:
        registry = tomllib.load(f)
    cells: dict[tuple[str, str], set[int | None]] = {}
    for claim in registry.get("claim", []):
        if not claim.get("testable", True) or claim.get("metric") in (None, "none", "check", "micro_time"):
            continue
        for stack in (claim.get("baseline"), claim.get("candidate")):
            if not stack:
                continue
            for scenario in claim.get("scenarios", []):
                cells.setdefault((stack, scenario), set()).add(claim.get("concurrency"))
    return {key: frozenset(levels) for key, levels in cells.items()}
