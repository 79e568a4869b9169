"""Benchmark profiles: how long, how often, how far. `quick` is the default of `nox -s bench`."""

from __future__ import annotations

from dataclasses import dataclass

from stackbench.seed import SeedPlan


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
    # the upstream simulator for chat: like a real LLM API, shortened for the quick profile
    upstream_ttft_ms: int = 300
    upstream_token_interval_ms: int = 30
    upstream_tokens: int = 20
    fanout_events: int = 10
    fanout_rate: float = 5.0
    primary_concurrency: int = 64  # wrk connections for due and review, the driver ceiling
    # Stacks that also get open-loop latency, the sustainable-rate search and the locust journey
    # (one per implementation family the claims compare; each costs about a minute).
    featured: tuple[str, ...] = ("flask-gunicorn-gthread", "flask-gunicorn-gevent", "flask-waitress",
                                 "rest-uvicorn", "graphql-uvicorn")
    # Realtime, open-loop and journey cells are scale runs: measured in the first repetitions only.
    realtime_repetitions: int = 1
    # The matrix this profile runs when the command names none (empty: every stack/scenario).
    stacks: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()


QUICK_FLOORS = (
    "raw-asgi-granian-asgi", "raw-asgi-uvicorn", "raw-wsgi-granian-wsgi", "raw-wsgi-gunicorn-gthread",
    "hello-fastapi", "hello-flask", "hello-strawberry",
)

PROFILES = {
    # CI's smoke run (tests/loadtests/test_runner.py): every code path, seconds per cell.
    "smoke": Profile(
        name="smoke", repetitions=1, warmup_s=0.5, duration_s=1.0, concurrency=(8,),
        seed=SeedPlan(users=2, decks_per_user=2, cards_per_deck=20, seed=1),
        floors=(), chat_levels=(5,), fanout_levels=(20,), ws_levels=(20,),
        open_loop_fractions=(), sustainable_search=False, journey_users=0, micro=False,
        upstream_ttft_ms=50, upstream_token_interval_ms=5, upstream_tokens=5, fanout_events=3,
        fanout_rate=10.0, primary_concurrency=8,
    ),
    "quick": Profile(
        name="quick", repetitions=1, warmup_s=1.0, duration_s=3.0, concurrency=(64,),
        seed=SeedPlan(users=10, decks_per_user=10, cards_per_deck=100, seed=1),
        floors=QUICK_FLOORS, chat_levels=(20, 100), fanout_levels=(500,), ws_levels=(500,),
        open_loop_fractions=(), sustainable_search=False, journey_users=0, micro=True,
        fanout_events=5,
    ),
    "standard": Profile(
        name="standard", repetitions=3, warmup_s=1.0, duration_s=4.0, concurrency=(16, 64, 256),
        seed=SeedPlan(users=10, decks_per_user=10, cards_per_deck=1000, seed=1),
        floors=None, chat_levels=(10, 100, 500, 1000), fanout_levels=(1000, 5000), ws_levels=(1000,),
        open_loop_fractions=(0.5, 0.8), sustainable_search=True, journey_users=100, micro=True,
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
    "full": Profile(
        name="full", repetitions=5, warmup_s=3.0, duration_s=10.0, concurrency=(16, 64, 256, 512),
        seed=SeedPlan(users=10, decks_per_user=10, cards_per_deck=1000, seed=1),
        floors=None, chat_levels=(10, 100, 500, 1000, 2000), fanout_levels=(1000, 5000, 10000),
        ws_levels=(1000, 5000), open_loop_fractions=(0.5, 0.8), sustainable_search=True,
        journey_users=100, micro=True,
    ),
}
