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
from typing import Annotated, Any

import psutil
from pydantic import TypeAdapter

from flashcards import runtime
from flashcards.settings import Settings
from loadtests.multicore import curve_levels
from loadtests.stacks import STACKS, Stack

# Processes in a server's tree that serve no requests (multiprocessing's helpers).
HELPER_MARKERS = ("multiprocessing.resource_tracker", "multiprocessing.semaphore_tracker",
                  "multiprocessing.forkserver")
# Environment variables that set the apps' garbage-collection policy (flashcards/runtime.py).
GC_ENV_PREFIXES = ("STACKBENCH_GC",)
SINGLE_PROCESS_SERVERS = ("waitress",)
# The app settings that tune serving (pools, streams, buffers), recorded with their values in
# force (the server's environment, else the default) in `setup["app"]`; secrets and the DSN never.
APP_TUNING = ("pool_size", "pool_max_overflow", "pool_timeout_s", "db_statement_timeout_ms",
              "upstream_max_connections", "event_queue_size", "event_history_size", "sse_keepalive_s",
              "max_streams_per_user", "max_chats_per_user", "graphql_max_subscriptions_per_connection")
_ENV_PREFIX = "STACKBENCH_"

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
    cores: int | None = None  # pinned to the first `cores` server CPUs (the scaling curve); None: all


VARIANTS: dict[str, Variant] = {v.base + "-" + v.suffix: v for v in (
    Variant("2n1", "flask-gunicorn-gthread", None, "gunicorn docs: 2 × cores + 1 workers (gthread, 2 × cores + 6 threads)"),
    Variant("2n1", "flask-gunicorn-gevent", None, "gunicorn docs: 2 × cores + 1 gevent workers"),
    Variant("eas", "flask-gunicorn-gevent", 2, "EAS document: gunicorn gevent, 2 workers, 1000 worker-connections",
            min_server_cores=4, min_client_cores=4, wrk_threads=4, concurrency=100),
    Variant("eas", "rest-uvicorn", 4, "EAS document: uvicorn, 4 workers, uvloop + httptools",
            min_server_cores=4, min_client_cores=4, wrk_threads=4, concurrency=100),
)}
# The scaling curve (loadtests/multicore.py): `<stack>-w<n>`, n workers on n server cores.
CURVE_STACKS = ("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn", "graphql-uvicorn")
VARIANTS.update({f"{base}-w{n}": Variant(f"w{n}", base, n, f"scaling curve: {n} worker(s) on {n} server core(s)",
                                         min_server_cores=n, scenarios=("config", "card"), cores=n)
                 for base in CURVE_STACKS for n in curve_levels(64)})


def curve_ids(stacks: Sequence[str], top: int) -> list[str]:
    """The curve's variant ids for `stacks`: 1, 2, 4, … workers up to `top`."""
    return [f"{s}-w{n}" for s in stacks for n in curve_levels(top)]


def cpus_for(stack_id: str, server_cpus: Sequence[int]) -> tuple[int, ...]:
    """The server CPUs a stack is pinned to (a curve point: its first `cores`)."""
    variant = VARIANTS.get(stack_id)
    cores = variant.cores if variant else None
    return tuple(server_cpus[:cores]) if cores else tuple(server_cpus)


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
    if variant.cores:
        return f"scaling point not run: {variant.rule} needs " + " and ".join(missing)
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
    """The GC policy in force in the server, as ``NAME=value`` pairs of what its environment
    sets, or ``<policy> (default)`` when it sets none (flashcards/runtime.py's default)."""
    found = [f"{k}={v}" for k, v in sorted(env.items()) if k.startswith(GC_ENV_PREFIXES)]
    if found:
        return ", ".join(found)
    return f"{runtime.gc_policy(env)} (default)"


def app_tuning(env: Mapping[str, str]) -> dict[str, Any]:
    """The `APP_TUNING` settings in force: the environment's value (as pydantic reads it) or the
    default. A value the app would refuse is recorded as given, marked ``invalid``."""
    fields = Settings.model_fields
    found: dict[str, Any] = {}
    for name in APP_TUNING:
        raw = env.get(_ENV_PREFIX + name.upper())
        if raw is None:
            found[name] = fields[name].default
            continue
        field = fields[name]
        kind = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        try:
            found[name] = TypeAdapter(kind).validate_python(raw)  # type: ignore[arg-type]
        except ValueError:
            found[name] = f"{raw} (invalid)"
    return found


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
        "app": app_tuning(env),
        "os_threads": os_threads,
        "rule": rule,
    }


def setup_rule(stack_id: str) -> str:
    variant = VARIANTS.get(stack_id)
    return variant.rule if variant else MAIN_RULE


def same_setup(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("server", "worker_class", "processes", "master", "threads_per_worker", "cores", "gc_policy", "app")
    return all(a.get(k) == b.get(k) for k in keys)
