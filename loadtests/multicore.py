"""Multi-core runs: which CPUs the servers and the load generators get, how many workers each
server's community rule gives for those cores, and the scaling curve.

``--server-cpus`` / ``--client-cpus`` take CPU ids and ranges (``0-3,8``). Either alone takes
the rest of this process's CPUs for the other side; neither splits them in half. A CPU this
process may not use (absent, or outside its affinity) is refused before anything starts
(`CpuRequestError`): a run pinned to CPUs that do not exist would measure something else.

Worker counts: the main matrix gives every stack one worker per server core (like for like,
loadtests/setups.py); `community_workers` is what each server's own documentation recommends for
the same cores (gunicorn sync/gthread/gevent ``2 × cores + 1``, uvicorn and granian one per core,
waitress one process) — read from `loadtests.servers`, the rule that launches the ``-2n1``
variants, so the table and the launch never disagree.

The scaling curve (`curve_levels`) runs a stack at 1, 2, 4, … workers, worker ``n`` pinned to the
first ``n`` server cores; levels past the server cores are refused with the cores they need. The
`scale` profile (loadtests/profiles.py) runs the curve beside the equal-worker matrix and the
documented setups (EAS: gevent 2 workers × 1000 connections vs uvicorn 4 workers, ``wrk -t4
-c100``), which need 4 server and 4 client cores: the whole profile needs 8 server cores (the
curve to 8) plus 4 client cores, 12 CPUs in all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from loadtests.servers import AppTarget, ServerSpec, get_server

CURVE_TOP = 8  # the curve always lists levels up to here (refused where the cores are missing)
SCALE_SERVER_CORES = 8
SCALE_CLIENT_CORES = 4  # the EAS setup's wrk -t4


class CpuRequestError(ValueError):
    """CPUs were asked for that this process cannot use."""


def parse_cpus(text: str) -> tuple[int, ...]:
    """``"0-3,8"`` → (0, 1, 2, 3, 8); a clear error for anything else."""
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise ValueError
                cpus.extend(range(low, high + 1))
            else:
                cpus.append(int(part))
        except ValueError:
            raise CpuRequestError(f"CPU list {text!r}: use ids and ranges such as 0-3,8") from None
    if any(c < 0 for c in cpus):
        raise CpuRequestError(f"CPU list {text!r}: ids are >= 0")
    return tuple(sorted(set(cpus)))


def available_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0)))


def plan_cpus(server: str | None, client: str | None,
              available: Sequence[int] | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(server CPUs, client CPUs), checked against the CPUs this process may use."""
    mine = tuple(sorted(available if available is not None else available_cpus()))
    chosen = {side: parse_cpus(text) for side, text in (("server", server), ("client", client)) if text}
    for side, cpus in chosen.items():
        missing = sorted(set(cpus) - set(mine))
        if missing:
            raise CpuRequestError(
                f"--{side}-cpus asks for {len(cpus)} CPU(s) ({_text(cpus)}) but this machine gives this "
                f"process {len(mine)} ({_text(mine)}): CPU(s) {_text(missing)} do not exist here. "
                f"Nothing was started; ask for CPUs among {_text(mine)}.")
    if "server" in chosen and "client" in chosen:
        return chosen["server"], chosen["client"]
    if "server" in chosen or "client" in chosen:
        given = chosen.get("server") or chosen["client"]
        rest = tuple(c for c in mine if c not in given) or given  # nothing left: share, as with 1 CPU
        return (given, rest) if "server" in chosen else (rest, given)
    if len(mine) < 2:
        return mine, mine  # nothing to pin apart: the settings say so
    half = len(mine) // 2
    return mine[:half], mine[half:]


def _text(cpus: Iterable[int]) -> str:
    return ",".join(map(str, cpus)) or "none"


def community_workers(server: str, cores: int) -> int:
    """Workers the server's own documentation recommends on ``cores`` cores (servers.py)."""
    kind = get_server(server).kind
    spec = ServerSpec(server, AppTarget(f"loadtests.floors.raw_{kind}:app", kind), port=0,
                      cpus=tuple(range(cores)))
    return int(spec.settings()["workers"])


def curve_levels(top: int = CURVE_TOP) -> tuple[int, ...]:
    """1, 2, 4, … up to ``top``."""
    levels, n = [], 1
    while n <= top:
        levels.append(n)
        n *= 2
    return tuple(levels)


def scale_requirement(server_cpus: Sequence[int], client_cpus: Sequence[int]) -> str | None:
    """What the full `scale` profile lacks on these CPUs (None: nothing)."""
    free_client = set(client_cpus) - set(server_cpus)
    if len(server_cpus) >= SCALE_SERVER_CORES and len(free_client) >= SCALE_CLIENT_CORES:
        return None
    return (f"the full scale profile needs {SCALE_SERVER_CORES} server cores and {SCALE_CLIENT_CORES} "
            f"client cores apart from them; this run has {len(server_cpus)} and {len(free_client)}: "
            "the curve stops at the server cores and the documented setups that need more are refused")


def describe(servers: dict[str, str], server_cpus: Sequence[int],
             client_cpus: Sequence[int]) -> dict[str, object]:
    """For the results' settings: per stack (id → server) the equal-worker count and the
    community rule's on these server cores, and what the full `scale` profile would lack."""
    cores = max(1, len(server_cpus))
    return {
        "server_cores": len(server_cpus), "client_cores": len(set(client_cpus) - set(server_cpus)),
        "workers": {stack: {"equal": 1 if server == "waitress" else cores,
                            "community": community_workers(server, cores)}
                    for stack, server in sorted(servers.items())},
        "scale_requirement": scale_requirement(server_cpus, client_cpus),
    }
