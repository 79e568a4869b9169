"""Load generation across machines: locust's own master/worker mode for the journey and the
locust closed loop.

On one machine `loadtests.journey.run_journey(..., processes=N)` and
`loadtests.locust_closed.run_locust_closed(..., processes=N)` pass ``--processes N``: locust forks
one master and N workers, and the master adds their reports up. Across machines the master runs
here with ``--master --expect-workers N`` (`run_journey_master`, `run_closed_master`) and each
other host runs ``stackbench loadgen worker --master HOST`` (`worker_command`): a locust worker
process (or ``--processes`` of them) that connects to the master's port (5557 by default, locust's)
and runs the users the master hands it.

The locustfile reads its configuration from the environment, so a worker is given the same
STACKBENCH_JOURNEY_* / STACKBENCH_LOCUST_* variables as the master (`worker_environment`); the
window (warmup reset, stop) is the master's, which tells the workers when to reset. The master
counts each worker's requests inside the window (``extra.requests_by_worker``). What it cannot
see is a remote worker's CPU: ``client_cpu_pct`` and the client-bound flag cover this host's
processes only — check the workers' hosts with ``top`` or run them pinned (``taskset``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from loadtests.journey import (
    LOCUSTFILE,
    REPO_ROOT,
    RUN_TIME_MARGIN_S,
    journey_environment,
    run_locust,
)
from loadtests.locust_closed import USER_CLASS, closed_environment
from loadtests.wire import RequestSpec

MASTER_PORT = 5557  # locust's default
WORKER_WAIT_S = 120  # the master gives up when the expected workers have not connected by then


def master_args(expect_workers: int, bind_port: int = MASTER_PORT,
                wait_s: int = WORKER_WAIT_S) -> list[str]:
    if expect_workers < 1:
        raise ValueError("a master needs expect_workers >= 1")
    return ["--master", "--expect-workers", str(expect_workers), "--master-bind-port", str(bind_port),
            "--expect-workers-max-wait", str(wait_s)]


def worker_environment(*, mode: str = "journey", api: str = "rest", seed_users: int = 10,
                       decks_per_user: int = 10, think_s: float = 0.0, workers: int = 1,
                       spec: RequestSpec | None = None) -> dict[str, str]:
    """The variables a worker's locustfile needs (the same users and mode as the master's)."""
    if mode == "journey":
        return journey_environment(api, seed_users, decks_per_user, warmup_s=0.0, think_s=think_s,
                                   processes=workers)
    if mode == "request":
        if spec is None:
            raise ValueError("a request-mode worker needs the request spec")
        return closed_environment(spec, warmup_s=0.0, duration_s=0.0, processes=workers)
    raise ValueError(f"worker mode must be 'journey' or 'request', got {mode!r}")


def worker_command(master_host: str, master_port: int = MASTER_PORT, *, processes: int = 1,
                   mode: str = "journey", python: str = sys.executable) -> list[str]:
    argv = [python, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "--loglevel", "WARNING"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    if mode == "request":
        argv.append(USER_CLASS)
    return argv


def start_worker(master_host: str, master_port: int = MASTER_PORT, *, processes: int = 1,
                 env_vars: dict[str, str] | None = None, mode: str = "journey",
                 python: str = sys.executable) -> subprocess.Popen[bytes]:
    """A locust worker (``processes`` of them) connected to the master; it exits when the
    master quits."""
    env = {**os.environ, **(env_vars or worker_environment(mode=mode))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("STACKBENCH_JOURNEY_MARKS", None)  # the master's marks are the window
    return subprocess.Popen(worker_command(master_host, master_port, processes=processes, mode=mode,
                                           python=python), env=env, cwd=str(REPO_ROOT))


def _master(url: str, env_vars: dict[str, str], *, users: int, duration_s: float, warmup_s: float,
            expect_workers: int, bind_port: int, cpus: Sequence[int] | None, python: str,
            extra_args: Sequence[str] = ()) -> dict[str, Any]:
    run_time_s = math.ceil(warmup_s + duration_s) + RUN_TIME_MARGIN_S + WORKER_WAIT_S
    rate = max(1.0, users / max(1.0, warmup_s / 4))
    sample, argv, user_exceptions = run_locust(
        url, env_vars, users=users, spawn_rate=rate, run_time_s=run_time_s, duration_s=duration_s,
        processes=1, cpus=cpus, python=python,
        extra_args=[*master_args(expect_workers, bind_port), *extra_args])
    sample["extra"].update({
        "users": users, "spawn_rate": rate, "processes": expect_workers, "remote_workers": expect_workers,
        "warmup_s": warmup_s, "command": argv, "user_exceptions": user_exceptions,
        "note": "locust master with workers that connected to it; client CPU is this host's only",
    })
    return sample


def run_journey_master(url: str, *, api: str, users: int, duration_s: float, warmup_s: float,
                       seed_users: int, decks_per_user: int, expect_workers: int,
                       bind_port: int = MASTER_PORT, think_s: float = 0.0,
                       cpus: Sequence[int] | None = None, python: str = sys.executable) -> dict[str, Any]:
    """The journey from a master that waits for ``expect_workers`` workers (any host)."""
    env_vars = journey_environment(api, seed_users, decks_per_user, warmup_s=warmup_s,
                                   duration_s=duration_s, think_s=think_s, processes=expect_workers)
    sample = _master(url, env_vars, users=users, duration_s=duration_s, warmup_s=warmup_s,
                     expect_workers=expect_workers, bind_port=bind_port, cpus=cpus, python=python)
    sample["extra"]["api"] = api
    return sample


def run_closed_master(url: str, spec: RequestSpec, *, users: int, duration_s: float, warmup_s: float,
                      expect_workers: int, bind_port: int = MASTER_PORT,
                      cpus: Sequence[int] | None = None, python: str = sys.executable) -> dict[str, Any]:
    """The locust closed loop of one request from a master that waits for its workers."""
    env_vars = closed_environment(spec, warmup_s=warmup_s, duration_s=duration_s,
                                  processes=expect_workers)
    sample = _master(url, env_vars, users=users, duration_s=duration_s, warmup_s=warmup_s,
                     expect_workers=expect_workers, bind_port=bind_port, cpus=cpus, python=python,
                     extra_args=[USER_CLASS])
    sample["extra"].update({"mode": "closed", "method": spec.method, "path": spec.path})
    return sample


# -- the command line (`stackbench loadgen worker|master`) -----------------------------------------


def worker_main(master: str, master_port: int, *, processes: int, mode: str, api: str,
                seed_users: int, decks_per_user: int, think_s: float, workers: int,
                spec: str | None) -> int:
    """Run a worker in the foreground until the master quits; its exit status."""
    env_vars = worker_environment(mode=mode, api=api, seed_users=seed_users,
                                  decks_per_user=decks_per_user, think_s=think_s,
                                  workers=max(workers, processes), spec=RequestSpec.from_json(spec) if spec else None)
    proc = start_worker(master, master_port, processes=processes, env_vars=env_vars, mode=mode)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


def master_main(url: str, *, workers: int, bind_port: int, mode: str, api: str, users: int,
                duration_s: float, warmup_s: float, seed_users: int, decks_per_user: int,
                think_s: float, spec: str | None) -> dict[str, Any]:
    """One measured run from a master that waits for ``workers`` workers; the sample."""
    if mode == "journey":
        return run_journey_master(url, api=api, users=users, duration_s=duration_s, warmup_s=warmup_s,
                                  seed_users=seed_users, decks_per_user=decks_per_user,
                                  expect_workers=workers, bind_port=bind_port, think_s=think_s)
    request = RequestSpec.from_json(spec) if spec else None
    if mode != "request" or request is None:
        raise ValueError("mode must be 'journey', or 'request' with --spec JSON")
    return run_closed_master(url, request, users=users, duration_s=duration_s, warmup_s=warmup_s,
                             expect_workers=workers, bind_port=bind_port)
