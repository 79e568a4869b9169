"""The latency sweep: every chosen stack at each injected database round trip (and the chat
scenario at each upstream time-to-first-token), sized as a user would size it at that latency.

    stackbench bench --scenario card --db-delay-ms 0,5,20 --stack flask-gunicorn-gthread --stack rest-uvicorn

Per delay one `delayproxy` process (pinned to the client CPUs) sits between the apps and
PostgreSQL; every stack gets the same proxy and DSN. Order: the proxy's own cost at 0 ms first;
then per repetition, per delay (ascending in the first repetition, rotated after), per stack
configuration (rotated): one server start → the closed-loop scenarios (wrk) → stop; then the
open loop at one equal offered rate per delay (a fraction of the weakest stack's card rate at
that delay, fixed in the first repetition). The TTFT sweep runs last, without the proxy.

Results: `doc["sweep"]` (kept apart from `doc["cells"]` so the main matrix's verdicts never mix
delays): `{"settings", "proxy_overhead", "rule", "calibration", "cells": [...]}`. Each cell is
a RESULTS_SCHEMA cell plus `family: "latency-sweep"`, `db_delay_ms` (None for TTFT cells),
`upstream_ttft_ms`, `variant` ("recommended" | "more-threads") and `setup` (the launched tree,
`setups.read_setup`, with `db_delay_ms`, `sizing` and `proxy`). Each sample's `extra` has
`db_delay_ms`, `proxy` (cpu_s, cpu_us_per_request, round_trips_per_request) and
`db_connections` (peak_total, peak_active from pg_stat_activity over the window).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from flashcards.dsn import driver_url
from loadtests import measure, results, scenarios, setups
from loadtests.delayproxy import DelayProxy, Delays, measure_overhead, upstream_of
from loadtests.launcher import RunningServer, ServerError
from loadtests.stacks import STACKS, Stack
from loadtests.sweep_settings import RULE, Calibration, SweepSettings, sizing, variants_for
from loadtests.verification import BenchUser, bench_users, login, owned_ids

if TYPE_CHECKING:
    from loadtests.bench import Bench
    from loadtests.profiles import Profile

FAMILY = "latency-sweep"


class ConnectionWatch:
    """Peak backends of the bench database (all, and not idle) from pg_stat_activity, polled
    every `interval_s` on a direct connection while the window runs."""

    QUERY = ("SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    def __init__(self, dsn: str, interval_s: float = 0.25) -> None:
        self.url = driver_url(dsn, {"postgresql": "postgresql"}).render_as_string(hide_password=False)
        self.interval_s = interval_s
        self.peak_total = self.peak_active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(self.QUERY).fetchone()
                if row:
                    self.peak_total, self.peak_active = max(self.peak_total, row[0]), max(self.peak_active, row[1])
                self._stop.wait(self.interval_s)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def as_dict(self) -> dict[str, int]:
        return {"peak_total": self.peak_total, "peak_active": self.peak_active}


@dataclasses.dataclass
class Sweep:
    bench: Bench
    settings: SweepSettings
    stacks: list[Stack]
    scenarios: list[str]
    section: dict[str, Any]
    calibration: dict[str, Calibration] = dataclasses.field(default_factory=dict)
    open_rates: dict[float, float] = dataclasses.field(default_factory=dict)

    # --- cells ----------------------------------------------------------------------------
    def cell(self, stack: str, scenario: str, driver: str, concurrency: int | None, *, delay: float | None,
             variant: str = "recommended", rate: float | None = None, ttft: int | None = None) -> dict[str, Any]:
        cid = results.cell_id(stack, scenario, driver, concurrency, rate)
        cid += f"/db{delay:g}ms" if delay is not None else f"/ttft{ttft}ms"
        cid += "" if variant == "recommended" else f"/{variant}"
        for existing in self.section["cells"]:
            if existing["id"] == cid:
                return existing
        created = results.new_cell(stack, scenario, driver, concurrency, mode="open" if rate else "closed",
                                   target_rate=rate)
        created.update(id=cid, family=FAMILY, db_delay_ms=delay, upstream_ttft_ms=ttft, variant=variant)
        self.section["cells"].append(created)
        return created

    def record(self, cell: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            sample = run()
        except Exception as exc:  # one failed cell must not end the sweep
            cell["status"] = "failed" if not cell["samples"] else cell["status"]
            cell["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            self.bench.console.print(f"[red]{cell['id']}: {cell['error'].splitlines()[0]}[/red]")
            sample = None
        else:
            cell["samples"].append(sample)
        results.finish_cell(cell, self.bench.ceiling_rps)
        self.bench.save()
        return sample

    # --- servers --------------------------------------------------------------------------
    def sized(self, stack: Stack, delay: float, variant: str) -> tuple[Stack, dict[str, Any]]:
        cores = len(self.bench.server_cpus)
        workers = setups.per_core_workers(stack, self.bench.server_cpus)
        size = sizing(stack.server, cores=cores, workers=workers, delay_ms=delay,
                      concurrency=self.settings.concurrency,
                      cal=self.calibration.get(stack.id, Calibration()), variant=variant)
        launched = dataclasses.replace(stack, workers=workers, threads=size["threads"] or stack.threads)
        return launched, size

    @contextlib.contextmanager
    def server(self, stack: Stack, env: dict[str, str]) -> Iterator[RunningServer]:
        running = RunningServer(stack.spec(0, self.bench.server_cpus, env)).start(timeout=60)
        try:
            yield running
        finally:
            running.stop()

    def user(self, stack: Stack, client: httpx.Client) -> BenchUser:
        token = login(client, stack.api, "user00001")
        decks, cards = owned_ids(self.bench.plan.profile.seed, 1)
        return BenchUser("user00001", token, decks, cards)

    # --- one delay ----------------------------------------------------------------------------
    def configs(self, rep: int) -> list[tuple[Stack, str]]:
        out = [(s, v) for s in self.stacks for v in variants_for(s.server, self.settings.more_threads)]
        k = rep % len(out) if out else 0
        return out[k:] + out[:k]

    def at_delay(self, delay: float, rep: int) -> None:
        bench = self.bench
        delays = Delays.of(delay, split=self.settings.split, jitter_ms=self.settings.jitter_ms)
        with DelayProxy(upstream_of(bench.db.dsn), delays, cpus=bench.client_cpus) as proxy:
            card_rps: list[float] = []
            for stack, variant in self.configs(rep):
                launched, size = self.sized(stack, delay, variant)
                env = {**bench.env, "STACKBENCH_DSN": proxy.dsn(bench.db.dsn),
                       "STACKBENCH_POOL_SIZE": str(size["pool_size"]),
                       "STACKBENCH_POOL_MAX_OVERFLOW": str(size["pool_max_overflow"])}
                try:
                    with self.server(launched, env) as running:
                        setup = {**setups.read_setup(running.pid, running.spec.settings(), rule=RULE),
                                 "db_delay_ms": delay, "sizing": size, "proxy": proxy.describe()}
                        card_rps += self.closed(stack, variant, delay, running, proxy, setup)
                except ServerError as exc:
                    for scenario in self.scenarios:
                        cell = self.cell(stack.id, scenario, "wrk", self.settings.concurrency, delay=delay, variant=variant)
                        cell["status"], cell["error"] = ("failed" if not cell["samples"] else cell["status"]), str(exc)[:2000]
                if any(scenarios.get(s).counts_writes for s in self.scenarios):
                    bench.db.restore()
            if self.settings.open_loop_fraction and scenarios.open_loop().name in self.scenarios and card_rps:
                rate = self.open_rates.setdefault(delay, round(min(card_rps) * self.settings.open_loop_fraction, 1))
                for stack, variant in self.configs(rep):
                    self.open_loop(stack, variant, delay, rate, proxy)

    def closed(self, stack: Stack, variant: str, delay: float, running: RunningServer, proxy: DelayProxy,
               setup: dict[str, Any]) -> list[float]:
        s = self.settings
        load = measure.Load(running.url, running.pid, self.bench.client_cpus)
        card: list[float] = []
        with httpx.Client(base_url=running.url, timeout=30) as client:
            user = self.user(stack, client)
            for scenario in self.scenarios:
                cell = self.cell(stack.id, scenario, "wrk", s.concurrency, delay=delay, variant=variant)
                # every seeded user for a scenario that spreads its load (review: the plan's users)
                users = (bench_users(client, stack.api, self.bench.plan.profile.seed, self.bench.env)
                         if scenarios.get(scenario).spread_users else [])
                cell["setup"] = setup
                if users:
                    cell.setdefault("extra", {})["load_users"] = len(users)
                self.bench.advance(cell["id"])
                if not cell["samples"]:
                    try:
                        scenarios.verify(scenario, stack.api, client, user)
                    except (scenarios.VerificationFailed, httpx.HTTPError, KeyError, ValueError) as exc:
                        cell["status"], cell["error"] = "refused", f"verification failed: {exc}"
                        continue
                spec = scenarios.request_spec(scenario, stack.api, user, users=users)
                count = self.bench.db.count_reviews if scenarios.get(scenario).counts_writes else None

                def once(spec: scenarios.RequestSpec = spec, count: Callable[[], int] | None = count) -> dict[str, Any]:
                    if s.warmup_s > 0:
                        measure.wrk_job(load, spec, s.concurrency, s.warmup_s).run()
                    before = proxy.stats()
                    with ConnectionWatch(self.bench.db.dsn) as watch:
                        sample = measure.closed_loop(load, spec, s.concurrency, 0.0, s.duration_s, count_rows=count)
                    return annotate(sample, delay, before, proxy.stats(), watch)

                sample = self.record(cell, once)
                if sample and scenarios.get(scenario).open_loop:
                    card.append(float(sample["rps"]))
                if sample and variant == "recommended" and delay == min(s.delays_ms):
                    self.calibrate(stack, scenario, sample)
        return card

    def calibrate(self, stack: Stack, scenario: str, sample: dict[str, Any]) -> None:
        """C and the round trips per request at the smallest delay: the scenario with the largest
        wait-to-CPU ratio sizes the stack (users size for their heaviest common request)."""
        proxy = sample["extra"]["proxy"]
        requests = sample.get("requests") or 0
        if not requests or not sample.get("server_cpu_s") or proxy.get("round_trips_per_request") is None:
            return
        cal = Calibration(cpu_ms=sample["server_cpu_s"] / requests * 1e3, round_trips=proxy["round_trips_per_request"],
                          source=f"measured: {stack.id} {scenario} at {min(self.settings.delays_ms):g} ms")
        old = self.calibration.get(stack.id)
        if old is None or cal.round_trips / cal.cpu_ms > old.round_trips / old.cpu_ms or old.source.startswith("defaults"):
            self.calibration[stack.id] = cal
            self.section["calibration"][stack.id] = dataclasses.asdict(cal)

    def open_loop(self, stack: Stack, variant: str, delay: float, rate: float, proxy: DelayProxy) -> None:
        from loadtests.openloop import run_open_loop

        s, bench = self.settings, self.bench
        launched, size = self.sized(stack, delay, variant)
        env = {**bench.env, "STACKBENCH_DSN": proxy.dsn(bench.db.dsn), "STACKBENCH_POOL_SIZE": str(size["pool_size"]),
               "STACKBENCH_POOL_MAX_OVERFLOW": str(size["pool_max_overflow"])}
        scenario = scenarios.open_loop().name
        cell = self.cell(stack.id, scenario, "openloop", None, delay=delay, variant=variant, rate=rate)
        bench.advance(cell["id"])

        def once() -> dict[str, Any]:
            with self.server(launched, env) as running:
                cell["setup"] = {**setups.read_setup(running.pid, running.spec.settings(), rule=RULE),
                                 "db_delay_ms": delay, "sizing": size, "proxy": proxy.describe()}
                with httpx.Client(base_url=running.url, timeout=30) as client:
                    spec = scenarios.request_spec(scenario, stack.api, self.user(stack, client))
                load = measure.Load(running.url, running.pid, bench.client_cpus)
                before = proxy.stats()
                with ConnectionWatch(bench.db.dsn) as watch:
                    sample = measure.with_server_usage(load, lambda: run_open_loop(
                        running.url, spec, rate, s.duration_s, s.warmup_s, cpus=bench.client_cpus))
                sample = annotate(sample, delay, before, proxy.stats(), watch, window_share=s.duration_s / (s.duration_s + s.warmup_s))
                sample["extra"].update(load_group=f"card-equal-db{delay:g}ms", fraction_of_reference=s.open_loop_fraction,
                                       reference_rps=round(rate / (s.open_loop_fraction or 1), 1))
                return sample

        self.record(cell, once)

    # --- the upstream: TTFT --------------------------------------------------------------------
    def ttft(self, ttft_ms: int) -> None:
        from upstream_sim.server import start_subprocess

        bench, profile = self.bench, self.bench.plan.profile
        upstream = {"ttft_ms": ttft_ms, "inter_token_ms": profile.upstream_token_interval_ms,
                    "tokens": profile.upstream_tokens}
        sim = start_subprocess(port=0, cpus=bench.client_cpus, ttft_ms=ttft_ms, inter_token_ms=upstream["inter_token_ms"],
                               tokens=upstream["tokens"])
        try:
            chat = scenarios.streams().name
            for stack_id in self.settings.ttft_stacks:
                stack = STACKS[stack_id]
                launched = dataclasses.replace(stack, workers=setups.per_core_workers(stack, bench.server_cpus))
                cell = self.cell(stack.id, chat, scenarios.get(chat).driver(stack.api), self.settings.chat_clients,
                                 delay=None, ttft=ttft_ms)
                bench.advance(cell["id"])

                def once(launched: Stack = launched, stack: Stack = stack, cell: dict[str, Any] = cell) -> dict[str, Any]:
                    with self.server(launched, {**bench.env, "STACKBENCH_UPSTREAM_URL": sim.url}) as running:
                        cell["setup"] = {**setups.read_setup(running.pid, running.spec.settings()),
                                         "upstream_ttft_ms": ttft_ms, "db_delay_ms": None}
                        with httpx.Client(base_url=running.url, timeout=30) as client:
                            user = self.user(stack, client)
                            scenarios.verify(chat, stack.api, client, user)
                        load = measure.Load(running.url, running.pid, bench.client_cpus)
                        timeout = (ttft_ms + upstream["tokens"] * upstream["inter_token_ms"]) / 1e3 + 30
                        sample = measure.chat(load, user.token, stack.api, self.settings.chat_clients,
                                              timeout_s=timeout, upstream=upstream)
                        sample["extra"]["upstream_ttft_ms"] = ttft_ms
                        return sample

                self.record(cell, once)
                bench.db.restore()
        finally:
            sim.stop()


def annotate(sample: dict[str, Any], delay: float, before: dict[str, float], after: dict[str, float],
             watch: ConnectionWatch, window_share: float = 1.0) -> dict[str, Any]:
    """The proxy's share of a window (its CPU, round trips per request) and the peak database
    connections. `window_share`: the measured part of what the proxy saw (open loop: no warmup
    split, so the requests seen are scaled to the whole run)."""
    requests = float(sample.get("requests") or 0) / max(window_share, 1e-9)
    cpu = after["cpu_s"] - before["cpu_s"]
    trips = after["chunks_to_server"] - before["chunks_to_server"]
    sample.setdefault("extra", {}).update(
        db_delay_ms=delay, db_connections=watch.as_dict(),
        proxy={"cpu_s": cpu, "cpu_us_per_request": cpu / requests * 1e6 if requests else None,
               "round_trips_per_request": trips / requests if requests else None,
               "connections_opened": after["connections"] - before["connections"],
               "cpu_resolution_s": 0.01})
    return sample


def run_from_profile(bench: Bench, profile: Profile, db_delays_ms: list[float] | None,
                     stack_ids: list[str] | None, scenario_names: list[str] | None) -> dict[str, Any]:
    """The runner's hook: the profile's sweep, its delays replaced by --db-delay-ms if given."""
    settings = profile.db_sweep or SweepSettings()
    if db_delays_ms:
        settings = dataclasses.replace(settings, delays_ms=tuple(float(d) for d in db_delays_ms))
    return run_sweep(bench, settings, stack_ids=stack_ids, scenario_names=scenario_names)


def run_sweep(bench: Bench, settings: SweepSettings, *, stack_ids: list[str] | None = None,
              scenario_names: list[str] | None = None) -> dict[str, Any]:
    """Run the sweep into `bench.doc["sweep"]`; `stack_ids`/`scenario_names` narrow it (the
    command line's --stack/--scenario)."""
    chosen = [STACKS[s] for s in (stack_ids or settings.stacks) if s in STACKS and STACKS[s].kind == "app"]
    wanted = [s for s in (scenario_names or settings.scenarios) if s in scenarios.delay_sweep()]
    if scenario_names and scenarios.streams().name not in scenario_names:
        settings = dataclasses.replace(settings, ttft_ms=())
    if stack_ids:
        settings = dataclasses.replace(settings, ttft_stacks=tuple(s.id for s in chosen))
    section = bench.doc.setdefault("sweep", {"cells": [], "calibration": {}})
    section.update(settings={**dataclasses.asdict(settings), "stacks": [s.id for s in chosen], "scenarios": wanted,
                             "estimate_s": settings.estimate_s()}, rule=RULE)
    if bench.closed_driver != "wrk":
        section["error"] = "the latency sweep needs wrk (apt-get install -y wrk)"
        bench.save()
        return section
    with bench.console.status("delay proxy: its own cost at 0 ms…"):
        section["proxy_overhead"] = measure_overhead(bench.db.dsn, bench.client_cpus)
    overhead = section["proxy_overhead"]
    bench.console.print(f"delay proxy at 0 ms: +{overhead['added_p50_ms']:.3f} ms per round trip (median), "
                        f"{overhead['proxy_cpu_us_per_round_trip']:.0f} µs CPU per round trip")
    sweep = Sweep(bench, settings, chosen, wanted, section)
    started = time.monotonic()
    delays = sorted(settings.delays_ms)
    for rep in range(settings.repetitions if wanted else 0):
        for delay in delays[rep % len(delays):] + delays[: rep % len(delays)]:
            sweep.at_delay(delay, rep)
    ttfts = sorted(settings.ttft_ms)
    for rep in range(settings.repetitions if ttfts else 0):  # repeated like the delays: a ratio needs n ≥ 2
        for ttft_ms in ttfts[rep % len(ttfts):] + ttfts[: rep % len(ttfts)]:
            sweep.ttft(ttft_ms)
    section["wall_s"] = time.monotonic() - started
    bench.save()
    return section
