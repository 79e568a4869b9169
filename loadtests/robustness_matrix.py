"""The robustness matrix (issue 19): every registered server × the probes of `robustness.py`.

Each server runs the real app as the bench's main matrix starts it (`Bench.server`: the Flask
app on WSGI servers, the REST app on ASGI servers, one worker per server core, the server's
recommended settings otherwise, pinned to the server CPUs), on the run's database. The probes
run in this process, pinned to the client CPUs, over loopback. A fresh server per server name:
what one probe leaves behind (a stuck worker) must not be charged to the next server, though it
may be to the next probe on the same server, which is part of the finding.

`run_matrix` is the piece the bench calls (`doc["robustness"]`); `run_standalone` is
`stackbench robustness`: its own small database, the matrix, a JSON file and the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import robustness as probes
from loadtests.launcher import RunningServer, ServerError
from loadtests.servers import all_servers, get_server


@dataclass(frozen=True)
class RobustnessSettings:
    """Sizes of every probe; `QUICK` and `STANDARD` below (the issue's reference is standard)."""

    slowloris_connections: int = 50
    slowloris_duration_s: float = 8.0
    slowloris_interval_s: float = 2.0  # one header byte per connection this often
    header_sizes: tuple[int, ...] = (probes.MIB, 16 * probes.MIB)
    header_timeout_s: float = 20.0
    slow_body_connections: int = 10
    slow_body_duration_s: float = 6.0
    slow_body_interval_s: float = 1.0
    # under the app's 64 KiB body limit (max_body_bytes), so the server, not a 413, decides
    slow_body_declared_bytes: int = 1000
    idle_connections: int = 200
    idle_hold_s: float = 4.0
    abandon_streams: int = 8  # held SSE streams reset per round
    abandon_rounds: int = 3
    probe_every_s: float = 1.0
    probe_timeout_s: float = 2.0
    recover_s: float = 5.0  # how long a server may take to serve again after an attack

    def estimate_s(self, servers: int) -> float:
        """Wall time on the 2-core machine, roughly: the attacks, their recoveries, a start each."""
        per = (self.slowloris_duration_s + self.slow_body_duration_s + self.idle_hold_s + 4 * self.recover_s
               + self.abandon_rounds * 2.0 + len(self.header_sizes) * 3.0 + 8.0)
        return servers * per


QUICK = RobustnessSettings()
STANDARD = RobustnessSettings(slowloris_connections=200, slowloris_duration_s=60.0, slow_body_connections=50,
                              slow_body_duration_s=20.0, idle_connections=1000, idle_hold_s=10.0)
PROBES = ("slowloris", "oversized_header", "slow_body", "idle_keepalive", "abandon_streams")
APP_FOR = {"wsgi": "flask", "asgi": "rest"}  # the app each kind of server runs here


def stack_for(server: str) -> Any:
    """The main-matrix app stack of `server` (flask-… on WSGI, rest-… on ASGI)."""
    from loadtests.stacks import select

    impl = APP_FOR[get_server(server).kind]
    chosen = select(impls=[impl], servers=[server])
    if not chosen:
        raise KeyError(f"no {impl} stack runs on {server}")
    return chosen[0]


def _hard_limit(settings: RobustnessSettings) -> float:
    """No probe set may run longer than this (a wedged server must not wedge the run)."""
    return 3 * settings.estimate_s(1) + len(settings.header_sizes) * settings.header_timeout_s + 60


async def run_probes(target: probes.Target, s: RobustnessSettings, rss: Any) -> dict[str, Any]:
    """Every probe against one server, in a fixed order (the gentlest harm last is not the
    point: the order is the same for every server, so a carried-over stall is comparable)."""
    out: dict[str, Any] = {}
    every, timeout = s.probe_every_s, s.probe_timeout_s
    steps: list[tuple[str, Any]] = [
        ("slowloris", lambda: probes.slowloris(target, s.slowloris_connections, s.slowloris_duration_s,
                                               s.slowloris_interval_s, recover_s=s.recover_s, every_s=every,
                                               timeout_s=timeout)),
        ("oversized_header", lambda: _headers(target, s, rss)),
        ("slow_body", lambda: probes.slow_body(target, s.slow_body_connections, s.slow_body_duration_s,
                                               s.slow_body_interval_s, declared=s.slow_body_declared_bytes,
                                               recover_s=s.recover_s, every_s=every,
                                               timeout_s=timeout)),
        ("idle_keepalive", lambda: probes.idle_keepalive(target, s.idle_connections, s.idle_hold_s, every_s=every,
                                                         timeout_s=timeout)),
        ("abandon_streams", lambda: probes.abandon_streams(target, s.abandon_streams, s.abandon_rounds,
                                                           bound_s=s.recover_s, timeout_s=timeout)),
    ]
    for name, step in steps:
        started = time.monotonic()
        try:
            async with asyncio.timeout(_hard_limit(s)):
                out[name] = await step()
        except TimeoutError:
            out[name] = {"error": f"hard timeout after {time.monotonic() - started:.0f} s"}
        if out[name] is not None:
            out[name]["wall_s"] = round(time.monotonic() - started, 2)
    return out


async def _headers(target: probes.Target, s: RobustnessSettings, rss: Any) -> dict[str, Any]:
    sizes = [await probes.oversized_header(target, size, timeout_s=s.header_timeout_s, rss=rss)
             for size in s.header_sizes]
    return {"sizes": sizes}


def group_rss(running: RunningServer) -> int | None:
    """Resident memory of every process of the server's group, bytes."""
    total = 0
    for p in running.group_members():
        with contextlib.suppress(Exception):
            total += p.memory_info().rss
    return total or None


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    """This process on the client CPUs while it probes (the server has the others)."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _token(env: dict[str, str], user_id: int = 1) -> str:
    """A signed token for seeded user 1 (minted with the servers' secret: logging in would cost
    an argon2 hash and touch the login rate limit, neither of which is under test)."""
    from flashcards.security import issue_token
    from flashcards.settings import Settings

    return issue_token(Settings(jwt_secret=env["STACKBENCH_JWT_SECRET"]), user_id)


def run_matrix(servers: Sequence[str], settings: RobustnessSettings, *, env: dict[str, str],
               server_cpus: Sequence[int], client_cpus: Sequence[int], console: Any = None) -> dict[str, Any]:
    """The `robustness` section: settings, method facts and one entry per server."""
    from loadtests import setups

    token = _token(env)
    section: dict[str, Any] = {
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()},
        "server_cpus": list(server_cpus), "client_cpus": list(client_cpus), "loopback": True,
        "apps": dict(APP_FOR), "probe_path": "/api/health/live", "servers": {},
    }
    with pinned(client_cpus):
        for server in servers:
            stack = stack_for(server)
            cpus = setups.cpus_for(stack.id, server_cpus)
            spec = stack.spec(0, cpus, env, setups.workers_for(stack, cpus))
            entry: dict[str, Any] = {"stack": stack.id, "app": stack.impl}
            started = time.monotonic()
            if console is not None:
                console.print(f"robustness: {server} ({stack.id})…")
            try:
                with RunningServer(spec) as running:
                    entry["settings"] = running.spec.settings()  # with the port it was given
                    target = probes.Target(running.spec.host, running.spec.port, stream_path="/api/events",
                                           stream_headers=(("Authorization", f"Bearer {token}"),
                                                           ("Accept", "text/event-stream")))
                    entry["probes"] = asyncio.run(run_probes(target, settings, lambda: group_rss(running)))
            except ServerError as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            entry["wall_s"] = round(time.monotonic() - started, 1)
            section["servers"][server] = entry
    return section


def bench_env(dsn: str) -> dict[str, str]:
    """What the servers get (as in the bench: production mode, a fresh secret, and the per-user
    stream caps lifted, since every abandoned stream is one user's)."""
    return {"STACKBENCH_DSN": dsn, "STACKBENCH_ENVIRONMENT": "production",
            "STACKBENCH_JWT_SECRET": secrets.token_urlsafe(32),
            "STACKBENCH_MAX_STREAMS_PER_USER": "1000000", "STACKBENCH_MAX_CHATS_PER_USER": "1000000"}


def run_standalone(servers: Sequence[str] | None, *, quick: bool, dsn: str | None, out: Path,
                   server_cpus: str | None = None, client_cpus: str | None = None, console: Any = None) -> Path:
    """`stackbench robustness`: seed a one-user database of its own, run the matrix, write
    robustness-<time>.json under `out`, print the table. The database is dropped at the end."""
    from loadtests.benchdb import BenchDatabase
    from loadtests.multicore import plan_cpus
    from loadtests.robustness_render import text_table
    from provision.database import resolve_dsn
    from provision.seed import SeedPlan

    chosen = list(servers or all_servers())
    for name in chosen:
        get_server(name)  # unknown names fail before anything starts
    settings = QUICK if quick else STANDARD
    srv, cli = plan_cpus(server_cpus, client_cpus)
    db = BenchDatabase(resolve_dsn(dsn), SeedPlan(users=1, decks_per_user=1, cards_per_deck=10, seed=1))
    db.prepare()
    try:
        section = run_matrix(chosen, settings, env=bench_env(db.dsn), server_cpus=srv, client_cpus=cli,
                             console=console)
    finally:
        db.drop()
    section["profile"] = "quick" if quick else "standard"
    section["database"] = db.backend
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"robustness-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(section, indent=1))
    if console is not None:
        console.print(text_table(section), markup=False, highlight=False)
        console.print(f"written: {path}")
    return path


def for_bench(bench: Any, settings: RobustnessSettings) -> dict[str, Any]:
    """The bench's hook (runner.main): the matrix on the run's database, CPUs and environment."""
    section = run_matrix(all_servers(), settings, env=bench.env, server_cpus=bench.server_cpus,
                         client_cpus=bench.client_cpus, console=bench.console)
    section["database"] = bench.db.backend
    return section
