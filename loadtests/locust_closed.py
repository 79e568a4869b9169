"""The closed loop without wrk: locust sends one `RequestSpec` as fast as it is answered.

Where wrk is missing, the wrk scenarios (config, card, due, review) still run, with locust in the
locustfile's ``request`` mode (`loadtests.locustfile.RequestUser`): ``users`` FastHttpUsers, one
connection each, no think time, each sending its next request as soon as the last one answered
(wrk's closed loop, at ``users`` connections). The run, its statistics and the sample are the
journey's (`loadtests.journey`): locust runs headless as a child pinned to the client CPUs, resets
its statistics after ``warmup_s`` and marks the window, and the sample says whether locust itself
was the bottleneck (``client-bound``, the journey's rule). Locust manages ≈ 2,950 req/s per core
(FIELD-NOTES), less than the apps serve, so every sample carries `NOTE`.

Writes (a body method: review, GraphQL mutations): ``writes.acknowledged`` is the responses with
the expected 2xx status inside the window. ``stored`` needs the rows written inside the same
window, so with ``count_rows`` the warmup is a separate locust run (as `measure.closed_loop` does
with wrk): warmup run, settled row count, measured run (statistics reset at its start), settled
row count. Without ``count_rows`` the warmup is inside the run and ``stored`` is None: a row count
taken around the call would include the warmup's writes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from loadtests.journey import RUN_TIME_MARGIN_S, run_locust
from loadtests.wire import BODY_METHODS, RequestSpec

NOTE = "locust closed loop (wrk missing): the client may be the bottleneck"
USER_CLASS = "RequestUser"
# users spawned per second when the measured run starts at once (no warmup inside it): all of
# them within ~50 ms of the window's start
BURST_SPAWN_FACTOR = 20


def status_failure(status: int, expect: int) -> str | None:
    """The failure message of a response with ``status`` when ``expect`` was expected: None when
    it is as expected, and for 0 (no response at all: locust reports its own exception, connect,
    timeout or reset)."""
    if status == 0 or status == expect:
        return None
    return f"HTTP {status}"


def closed_environment(spec: RequestSpec, *, warmup_s: float, duration_s: float,
                       processes: int = 1, marks: str | None = None) -> dict[str, str]:
    """The variables the locustfile's request mode reads (the window's are the journey's)."""
    env = {
        "STACKBENCH_LOCUST_MODE": "request",
        "STACKBENCH_LOCUST_SPEC": spec.to_json(),
        "STACKBENCH_JOURNEY_WARMUP_S": repr(float(warmup_s)),
        "STACKBENCH_JOURNEY_DURATION_S": repr(float(duration_s)),
        "STACKBENCH_JOURNEY_PROCESSES": str(max(1, processes)),
    }
    if marks:
        env["STACKBENCH_JOURNEY_MARKS"] = marks
    return env


def writes_spec(spec: RequestSpec) -> bool:
    return spec.method.upper() in BODY_METHODS


def run_locust_closed(
    url: str,
    spec: RequestSpec,
    *,
    users: int,
    duration_s: float,
    warmup_s: float,
    cpus: Sequence[int] | None = None,
    processes: int = 1,
    count_rows: Callable[[], int] | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """``users`` connections send ``spec`` to ``url`` in a closed loop for ``duration_s`` after
    ``warmup_s``; a RESULTS_SCHEMA sample (no server metrics), ``extra.driver`` "locust".

    A write spec (POST/PUT/PATCH) adds ``writes``: ``{"acknowledged": <expected 2xx>, "stored":
    None}``, or with ``count_rows`` (the rows of the table the writes land in) the measured
    ``stored`` and ``in_flight_at_cutoff``/``lost``, as `measure.closed_loop` reports them.
    """
    if users < 1 or duration_s <= 0 or warmup_s < 0 or processes < 1:
        raise ValueError("locust closed loop needs users >= 1, duration_s > 0, warmup_s >= 0, "
                         "processes >= 1")
    writes = writes_spec(spec)
    separate_warmup = count_rows is not None and writes and warmup_s > 0
    if separate_warmup:
        _run_once(url, spec, users=users, duration_s=warmup_s, warmup_s=0.0, cpus=cpus,
                  processes=processes, python=python)
    before = _settled(count_rows) if count_rows is not None and writes else None
    sample = _run_once(url, spec, users=users, duration_s=duration_s,
                       warmup_s=0.0 if separate_warmup else warmup_s, cpus=cpus,
                       processes=processes, python=python)
    sample["extra"]["warmup"] = "separate run" if separate_warmup else "inside the run"
    sample["extra"]["warmup_s"] = warmup_s
    if writes:
        acked = _acknowledged(sample, spec)
        sample["writes"] = {"acknowledged": acked, "stored": None}
        if count_rows is not None and before is not None:
            stored = _settled(count_rows) - before
            sample["writes"] = {"acknowledged": acked, "stored": stored,
                                "in_flight_at_cutoff": max(0, stored - acked),
                                "lost": max(0, acked - stored)}
    return sample


def _settled(count_rows: Callable[[], int]) -> int:
    from loadtests.measure import settled  # measure imports the scenarios (and SQLAlchemy)

    return settled(count_rows)


def _acknowledged(sample: dict[str, Any], spec: RequestSpec) -> int:
    """Responses with the expected 2xx status: every request that did not fail."""
    if not 200 <= spec.expect_status < 300:
        return 0
    return max(0, int(sample["requests"]) - int(sample["extra"]["failures"]))


def _run_once(url: str, spec: RequestSpec, *, users: int, duration_s: float, warmup_s: float,
              cpus: Sequence[int] | None, processes: int, python: str) -> dict[str, Any]:
    run_time_s = math.ceil(warmup_s + duration_s) + RUN_TIME_MARGIN_S
    # everyone within the first quarter of the warmup (the journey's rule), or at once
    if warmup_s > 0:
        rate = max(1.0, users / max(1.0, warmup_s / 4))
    else:
        rate = float(max(1, users) * BURST_SPAWN_FACTOR)
    env_vars = closed_environment(spec, warmup_s=warmup_s, duration_s=duration_s,
                                  processes=processes)
    # the class name too: a locustfile without the request mode fails instead of running the
    # journey
    sample, argv, user_exceptions = run_locust(url, env_vars, users=users, spawn_rate=rate,
                                               run_time_s=run_time_s, duration_s=duration_s,
                                               processes=processes, cpus=cpus, python=python,
                                               extra_args=[USER_CLASS])
    sample["extra"].update({
        "note": NOTE, "mode": "closed",
        "users": users, "connections": users, "spawn_rate": rate, "processes": processes,
        "run_time_s": run_time_s, "warmup_s": warmup_s,
        "method": spec.method, "path": spec.path, "expect_status": spec.expect_status,
        "cpus": sorted(set(cpus)) if cpus else None, "command": argv,
        "user_exceptions": user_exceptions,
    })
    return sample
