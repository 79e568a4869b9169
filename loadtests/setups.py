"""What a cell's server really ran, read from its launched process tree, and which setups a run
compares (`cell["setup"]`, RESULTS_SCHEMA v2).

Like for like by construction: the main matrix gives every stack the same number of serving
processes per server core — one worker per core (`per_core_workers`) — so per-core throughput
and memory compare equal process counts. Single-process servers (waitress) stay one process and
the setup says so. Community setups with other counts run additionally as named variants:

* ``<stack>-2n1``: gunicorn's documented ``2 × cores + 1`` workers (a sensitivity row).
* ``<stack>-eas``: the EAS document's own setup (gevent 2 workers vs uvicorn 4 workers, load
  ``wrk -t4 -c100``); it needs ≥ 4 server cores (the 4 uvicorn workers one per core) and ≥ 4
  client cores (wrk's 4 threads), else its cells are refused with that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from loadtests.stacks import STACKS, Stack

# Processes in a server's tree that serve no requests (multiprocessing's helpers).
HELPER_MARKERS = ("multiprocessing.resource_tracker", "multiprocessing.semaphore_tracker",
                  "multiprocessing.forkserver")
# Environment variables that set the apps' garbage-collection policy (flashcards/runtime.py).
GC_ENV_PREFIXES = ("STACKBENCH_GC",)
SINGLE_PROCESS_SERVERS = ("waitress",)

MAIN_RULE = "one serving process per server core (all stacks alike; single-process servers: one)"


@dataclass(frozen=True)
class Variant:
    """A setup run beside the main matrix: `workers` fixed, or None for the server's own rule."""

    suffix: str
    base: str  # stack id
    workers: int | None
    rule: str
    min_server_cores: int = 1
    min_client_cores: int = 1
    wrk_threads: int = 1
    scenarios: tuple[str, ...] = ("config",)
    concurrency: int | None = None  # None: the profile's primary level


VARIANTS: dict[str, Variant] = {v.base + "-" + v.suffix: v for v in (
    Variant("2n1", "flask-gunicorn-gthread", None, "gunicorn docs: 2 × cores + 1 workers (gthread, 2 × cores + 6 threads)"),
    Variant("2n1", "flask-gunicorn-gevent", None, "gunicorn docs: 2 × cores + 1 gevent workers"),
    Variant("eas", "flask-gunicorn-gevent", 2, "EAS document: gunicorn gevent, 2 workers, 1000 worker-connections",
            min_server_cores=4, min_client_cores=4, wrk_threads=4, concurrency=100),
    Variant("eas", "rest-uvicorn", 4, "EAS document: uvicorn, 4 workers, uvloop + httptools",
            min_server_cores=4, min_client_cores=4, wrk_threads=4, concurrency=100),
)}


def variant_stack(stack_id: str) -> Stack:
    """The Stack a variant id runs (the base stack under the variant's id)."""
    return dataclasses.replace(STACKS[VARIANTS[stack_id].base], id=stack_id)


def per_core_workers(stack: Stack, server_cpus: Sequence[int]) -> int | None:
    """Workers for the main matrix: one per server core (None: the server runs one process)."""
    if stack.server in SINGLE_PROCESS_SERVERS:
        return None
    return max(1, len(server_cpus))


def workers_for(stack: Stack, server_cpus: Sequence[int]) -> int | None:
    """The workers a stack (main or variant) is launched with."""
    variant = VARIANTS.get(stack.id)
    if variant is not None:
        return variant.workers  # None → the server's documented rule (2n+1)
    return per_core_workers(stack, server_cpus)


def refusal(stack_id: str, server_cpus: Sequence[int], client_cpus: Sequence[int]) -> str | None:
    """Why a variant cannot run as documented on these cores (None: it can)."""
    variant = VARIANTS.get(stack_id)
    if variant is None:
        return None
    missing = []
    if len(server_cpus) < variant.min_server_cores:
        missing.append(f"{variant.min_server_cores} server cores (--server-cpus gave {len(server_cpus)}: "
                       f"{','.join(map(str, server_cpus)) or 'none'})")
    if len(set(client_cpus) - set(server_cpus)) < variant.min_client_cores:
        free = sorted(set(client_cpus) - set(server_cpus))
        missing.append(f"{variant.min_client_cores} client cores apart from the server's "
                       f"(--client-cpus gave {len(free)})")
    if not missing:
        return None
    return (f"documented setup not run: {variant.rule} (load wrk -t{variant.wrk_threads}) needs "
            + " and ".join(missing) + "; scaled down it would not be the documented setup")


def _is_helper(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        line = " ".join(proc.cmdline())
        return any(marker in line for marker in HELPER_MARKERS)
    return False


def _worker_class(settings: Mapping[str, Any]) -> str | None:
    server = str(settings.get("server") or "")
    if settings.get("worker_class"):
        return str(settings["worker_class"])
    if server.startswith("uvicorn"):
        return f"uvicorn ({settings.get('loop')} + {settings.get('http')})"
    if server.startswith("granian"):
        return f"granian {settings.get('interface')}"
    if server == "waitress":
        return "waitress threads"
    return None


def gc_policy(env: Mapping[str, str]) -> str | None:
    """The GC policy the server's environment sets, as ``NAME=value`` pairs (None: none set)."""
    found = [f"{k}={v}" for k, v in sorted(env.items()) if k.startswith(GC_ENV_PREFIXES)]
    return ", ".join(found) or None


def read_setup(root_pid: int, settings: Mapping[str, Any], *, rule: str = MAIN_RULE) -> dict[str, Any]:
    """`cell["setup"]` from the live tree under ``root_pid``: a root with serving children is a
    master; helpers of multiprocessing are not counted; cores are the union of the serving
    processes' affinities; threads are the configured threads per worker (OS threads observed
    are in ``os_threads``); the GC policy comes from the root's own environment."""
    try:
        root = psutil.Process(root_pid)
        children = [p for p in root.children(recursive=True) if not _is_helper(p)]
    except psutil.NoSuchProcess:
        return {"server": settings.get("server"), "error": "server not running when read"}
    serving = children or [root]
    cores: set[int] = set()
    os_threads: list[int] = []
    for proc in serving:
        with contextlib.suppress(psutil.Error, AttributeError):
            cores.update(proc.cpu_affinity() or [])
            os_threads.append(proc.num_threads())
    env: dict[str, str] = {}
    with contextlib.suppress(psutil.Error):
        env = root.environ()
    threads = settings.get("threads")
    if threads is None and settings.get("blocking_threads") is not None:
        threads = settings.get("blocking_threads")
    return {
        "server": settings.get("server"),
        "worker_class": _worker_class(settings),
        "processes": len(serving),
        "master": bool(children),
        "workers": int(settings.get("workers") or len(serving)),
        "threads_per_worker": int(threads) if threads is not None else None,
        "cores": sorted(cores),
        "gc_policy": gc_policy(env),
        "os_threads": os_threads,
        "rule": rule,
    }


def setup_rule(stack_id: str) -> str:
    variant = VARIANTS.get(stack_id)
    return variant.rule if variant else MAIN_RULE


def same_setup(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("server", "worker_class", "processes", "master", "threads_per_worker", "cores", "gc_policy")
    return all(a.get(k) == b.get(k) for k in keys)
