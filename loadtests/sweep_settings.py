"""What the latency sweep runs (a profile field) and how each stack is sized at each latency.

Pure data and arithmetic, no imports from the harness, so `profiles.py` can hold it.

Sizing rule (stated in the results and the report): a user sizes a thread pool — or, for an
async app, its database pool — for I/O-bound work with the rule of *Java Concurrency in
Practice* (Goetz, §8.2), the one the gunicorn/waitress communities point to for blocking I/O:

    N = cores × (1 + W / C)

W is the time one request waits on the database (round trips per request × injected round
trip), C its CPU time. Both are measured in this run, not assumed: C = server CPU seconds per
request and the round trips = proxy chunks to the server per request, from each stack's cell at
the sweep's smallest delay (`calibrate`). Before that calibration exists the rule uses
`DEFAULT_CPU_MS` and `DEFAULT_ROUND_TRIPS`, said so in the cell's `setup.sizing.source`.

* gunicorn-gthread: the main matrix's workers; threads per worker = max(the gunicorn default
  2 × cores, ceil(N / workers)); the pool holds one connection per thread (no overflow).
* waitress: one process; threads = max(4 (its default), N); pool = threads.
* gunicorn-gevent: greenlets are not a sizing knob (1000 worker connections); the pool holds
  one connection per in-flight request, ceil(concurrency / workers), capped.
* async stacks: pool per worker = max(20 (the app default), ceil(N / workers)), no overflow (as
  the app default: SQLAlchemy closes overflow connections on return, a connect per request).
* "more-threads" (sync thread servers only): 4 × the recommended threads, to show how far
  threads go — the honest competitor to async.

Totals are capped at `MAX_DB_CONNECTIONS` (PostgreSQL runs with max_connections 400, the rest
is left to the harness and tests); a capped setting says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loadtests import scenarios as scenarios_

DEFAULT_STACKS = ("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn", "rest-granian",
                  "graphql-uvicorn")
DEFAULT_CPU_MS = 1.0
DEFAULT_ROUND_TRIPS = 4.0
MAX_DB_CONNECTIONS = 300
THREAD_SERVERS = ("gunicorn-gthread", "waitress")
MORE_THREADS_FACTOR = 4
WRITING_SCENARIOS = ("review",)  # the sweep restores the database after each server on these
RULE = ("threads (sync) or pool connections (async) = cores × (1 + W/C), W = round trips per "
        "request × injected round trip, C = CPU per request, both measured at the smallest delay "
        "(Goetz, Java Concurrency in Practice §8.2); sync pools one connection per thread; gevent "
        "pools one per in-flight request; 'more-threads' = 4 × recommended threads")


@dataclass(frozen=True)
class SweepSettings:
    delays_ms: tuple[float, ...] = (0.0, 1.0, 5.0, 20.0)
    stacks: tuple[str, ...] = DEFAULT_STACKS
    scenarios: tuple[str, ...] = scenarios_.delay_sweep()
    concurrency: int = 256  # wrk connections: enough in flight that latency, not load, limits
    repetitions: int = 2
    warmup_s: float = 1.0
    duration_s: float = 3.0
    more_threads: bool = True
    open_loop_fraction: float | None = 0.5  # of the weakest stack's card rate at each delay
    ttft_ms: tuple[int, ...] = ()  # upstream time-to-first-token sweep for chat
    ttft_stacks: tuple[str, ...] = ("flask-gunicorn-gthread", "rest-uvicorn")
    chat_clients: int = 100
    split: str = "even"  # how the round trip is split between directions (delayproxy.Delays)
    jitter_ms: float = 0.0

    def estimate_s(self, server_start_s: float = 6.0, restore_s: float = 2.0) -> float:
        """Rough wall time: closed cells + open-loop cells + server starts (+ a database restore
        after each server when a scenario writes, e.g. review), per repetition."""
        configs = len(self.stacks) + (sum(1 for s in self.stacks if _is_thread_stack(s)) if self.more_threads else 0)
        per_cell = self.warmup_s + self.duration_s + 1.5
        restore = restore_s if any(s in WRITING_SCENARIOS for s in self.scenarios) else 0.0
        closed = len(self.delays_ms) * configs * (len(self.scenarios) * per_cell + server_start_s + restore)
        opened = (len(self.delays_ms) * configs * (per_cell + server_start_s)) if self.open_loop_fraction else 0.0
        chat = len(self.ttft_ms) * len(self.ttft_stacks) * (server_start_s + max(self.ttft_ms or (0,)) / 1e3 + 10)
        return self.repetitions * (closed + opened + chat) + 15  # + the proxy's own-cost run


def _is_thread_stack(stack_id: str) -> bool:
    return "gthread" in stack_id or "waitress" in stack_id


@dataclass(frozen=True)
class Calibration:
    cpu_ms: float = DEFAULT_CPU_MS
    round_trips: float = DEFAULT_ROUND_TRIPS
    source: str = "defaults (no calibration cell yet)"


def io_bound_size(cores: int, delay_ms: float, cal: Calibration) -> int:
    """Goetz's N = cores × (1 + W/C)."""
    wait_ms = cal.round_trips * delay_ms
    return math.ceil(cores * (1 + wait_ms / max(cal.cpu_ms, 0.01)))


def sizing(server: str, *, cores: int, workers: int | None, delay_ms: float,
           concurrency: int, cal: Calibration, variant: str = "recommended") -> dict[str, Any]:
    """Threads and pool for one stack at one delay: {threads, pool_size, pool_max_overflow, ...}."""
    n = io_bound_size(cores, delay_ms, cal)
    procs = max(1, workers or 1)
    cap = MAX_DB_CONNECTIONS // procs
    out: dict[str, Any] = {"variant": variant, "rule": RULE, "io_bound_size": n, "source": cal.source,
                           "cpu_ms_per_request": cal.cpu_ms, "round_trips_per_request": cal.round_trips}
    if server in THREAD_SERVERS:
        base = max(4, n) if server == "waitress" else max(2 * cores, math.ceil(n / procs))
        threads = base * (MORE_THREADS_FACTOR if variant == "more-threads" else 1)
        out.update(threads=min(threads, cap), pool_size=min(threads, cap), pool_max_overflow=0,
                   capped=threads > cap)
    elif server == "gunicorn-gevent":
        pool = math.ceil(concurrency / procs)
        out.update(threads=None, pool_size=min(pool, cap), pool_max_overflow=0, capped=pool > cap)
    else:
        pool = max(20, math.ceil(n / procs))
        out.update(threads=None, pool_size=min(pool, cap), pool_max_overflow=0, capped=pool > cap)
    if variant == "more-threads" and server not in THREAD_SERVERS:
        raise ValueError(f"{server} has no threads to add")
    return out


def variants_for(server: str, more_threads: bool) -> tuple[str, ...]:
    return ("recommended", "more-threads") if more_threads and server in THREAD_SERVERS else ("recommended",)


QUICK = SweepSettings(delays_ms=(0.0, 20.0), stacks=("flask-gunicorn-gthread", "rest-uvicorn"),
                      scenarios=("card",), concurrency=128, repetitions=2, more_threads=False,  # 2: a ratio needs an interval
                      open_loop_fraction=None, duration_s=3.0)
# ≈ 14 min on 2 cores (estimate_s): the three stacks the latency claims compare, every delay,
# three repetitions (with two, the t-interval has one degree of freedom, t = 12.7, and one slow
# window — steal time, a neighbour's load — spans a ratio over 0.2–3x), closed loop on card (one
# read) and review (the read-modify-write transaction, several round trips), chat at a 300 ms
# (the main matrix's) and a 1 s TTFT; `full` runs every stack and scenario with the open-loop
# cells, more threads and TTFT 100/300/1000/3000 ms.
STANDARD = SweepSettings(stacks=("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn"),
                         scenarios=("card", "review"), repetitions=3, more_threads=False,
                         open_loop_fraction=None, ttft_ms=(300, 1000))
FULL = SweepSettings(repetitions=3, ttft_ms=(100, 300, 1000, 3000))
