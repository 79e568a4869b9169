"""`stackbench bench`: stacks × scenarios → one results JSON (RESULTS_SCHEMA.md) → the report.

The order of work, and why:

* The database is seeded once into a template; a write cell always starts from a fresh copy.
* The driver's ceiling (wrk against the fastest floor) is measured first, in the same run, so
  every cell can be flagged "client-bound" against it.
* Repetitions are interleaved (pyperf, asv): repetition r runs every stack once, in an order
  rotated by r, so slow drift of the machine spreads over all stacks instead of landing on one.
  Each repetition starts every server afresh: one server start + one load run is one sample.
* Within one server start, reads run before writes (they see the seeded data), then chat, then
  the fan-out scenarios on a one-worker server (the event bus lives in one process).
* A stack that answers wrongly is refused (not measured); a server that fails or dies fails its
  cells, and the run carries on with the next one. The document is saved after every cell.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from flashcards.settings import Settings
from loadtests import environment, measure, results, scenarios
from loadtests.benchdb import BenchDatabase
from loadtests.profiles import PROFILES, Profile
from loadtests.servers import REPO_ROOT, RunningServer, ServerError
from loadtests.stacks import CEILING_FLOOR, FLOORS, STACKS, Stack, select
from loadtests.wrk import wrk_available

REALTIME = ("chat", "sse-fanout", "ws")
DEFAULT_SCENARIOS = (*scenarios.WRK_SCENARIOS, *REALTIME, "journey")
LATENCY_OBJECTIVE_MS = 100.0
# How long subscribers may take to connect before the level counts as not held.
CONNECT_TIMEOUT_S = {"smoke": 10.0, "quick": 10.0, "standard": 20.0, "full": 60.0}


def split_cpus(server_cpus: str | None = None, client_cpus: str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Server on the first half of this process's CPUs, load generators on the rest."""
    mine = sorted(os.sched_getaffinity(0))
    parse = lambda text: tuple(int(c) for c in text.split(","))  # noqa: E731
    if server_cpus and client_cpus:
        return parse(server_cpus), parse(client_cpus)
    if len(mine) < 2:
        return tuple(mine), tuple(mine)  # nothing to pin apart: say so in the settings
    half = len(mine) // 2
    return tuple(mine[:half]), tuple(mine[half:])


@dataclass
class Plan:
    profile: Profile
    stacks: list[Stack]
    scenarios: dict[str, list[str]]  # stack id → scenarios to run

    def concurrency(self, scenario: str, stack: Stack | None = None) -> tuple[int, ...]:
        """The sweep for config and card on app stacks; one level elsewhere (floors included:
        they anchor the framework overhead at the primary level)."""
        if scenario in ("config", "card") and (stack is None or stack.kind == "app"):
            return self.profile.concurrency
        return (self.profile.primary_concurrency,)

    def measurements(self) -> int:
        total = 0
        profile = self.profile
        for stack in self.stacks:
            for scenario in self.scenarios[stack.id]:
                scale = {"chat": len(profile.chat_levels), "sse-fanout": len(profile.fanout_levels),
                         "ws": len(profile.ws_levels), "journey": 1}.get(scenario)
                if scale is None:
                    total += len(self.concurrency(scenario, stack)) * profile.repetitions
                else:
                    total += scale * min(profile.realtime_repetitions, profile.repetitions)
            if self.open_loop(stack):
                total += len(profile.open_loop_fractions) + profile.sustainable_search
        return total

    def open_loop(self, stack: Stack) -> bool:
        return (stack.id in self.profile.featured and "card" in self.scenarios[stack.id]
                and bool(self.profile.open_loop_fractions or self.profile.sustainable_search))


def make_plan(profile: Profile, *, stack_ids: list[str] | None, impls: list[str] | None,
              servers: list[str] | None, only: list[str] | None) -> Plan:
    chosen = select(stack_ids, impls, servers)
    if not (stack_ids or impls or servers):
        chosen = [s for s in chosen if s.kind == "app" or profile.floors is None or s.id in profile.floors]
    if CEILING_FLOOR not in [s.id for s in chosen]:
        chosen.insert(0, STACKS[CEILING_FLOOR])  # the headroom proof is part of every run
    wanted = tuple(only) if only else DEFAULT_SCENARIOS
    unknown = set(wanted) - set(scenarios.SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {', '.join(scenarios.SCENARIOS)}")
    per_stack: dict[str, list[str]] = {}
    for stack in chosen:
        names = [s for s in wanted if stack.supports(s)]
        if stack.kind == "floor" and stack.id == CEILING_FLOOR:
            names = ["config"]
        if "journey" in names and (profile.journey_users == 0 or stack.id not in profile.featured):
            names.remove("journey")
        per_stack[stack.id] = names
    return Plan(profile, [s for s in chosen if per_stack[s.id]], per_stack)


@dataclass
class Bench:
    """One run: its document, its database, its upstream, its servers."""

    plan: Plan
    doc: dict[str, Any]
    path: Path
    db: BenchDatabase
    env: dict[str, str]
    server_cpus: tuple[int, ...]
    client_cpus: tuple[int, ...]
    upstream: dict[str, Any]
    console: Console
    advance: Callable[[str], None] = lambda _: None
    ceiling_rps: float | None = None
    closed_driver: str = "wrk"  # "locust" where wrk is not installed (the report says so)

    # --- cells ---------------------------------------------------------------------------
    def cell(self, stack: Stack, scenario: str, driver: str, concurrency: int | None) -> dict[str, Any]:
        cid = results.cell_id(stack.id, scenario, driver, concurrency)
        for existing in self.doc["cells"]:
            if existing["id"] == cid:
                return existing
        created = results.new_cell(stack.id, scenario, driver, concurrency)
        self.doc["cells"].append(created)
        return created

    def record(self, cell: dict[str, Any], measure_once: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Add one sample to `cell`, or mark it failed; save the document either way."""
        if cell["status"] == "refused":
            return None
        try:
            sample = measure_once()
        except Exception as exc:  # a failed cell must not end the run
            cell["status"] = "failed" if not cell["samples"] else cell["status"]
            cell["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            cell.setdefault("flags", [])
            self.console.print(f"[red]{cell['id']}: {cell['error'].splitlines()[0]}[/red]")
            sample = None
        else:
            cell["samples"].append(sample)
        results.finish_cell(cell, self.ceiling_rps)
        self.save()
        return sample

    def refuse(self, cell: dict[str, Any], why: str) -> None:
        cell["status"], cell["error"] = "refused", why
        self.console.print(f"[yellow]{cell['id']} refused: {why}[/yellow]")
        self.save()

    def save(self) -> None:
        results.save(self.doc, self.path)

    # --- servers -----------------------------------------------------------------------
    @contextlib.contextmanager
    def server(self, stack: Stack, workers: int | None = None) -> Iterator[RunningServer]:
        spec = stack.spec(0, self.server_cpus, self.env, workers)
        running = RunningServer(spec).start(timeout=60)
        info = self.doc["stacks"].setdefault(stack.id, {})
        described = spec.describe()
        described.pop("env", None)
        key = "fanout" if workers else "main"
        info.update({"impl": stack.impl, "kind": stack.kind, "api": stack.api})
        if key == "main":
            info.update(described)
        else:
            info["fanout_server"] = described
        try:
            yield running
        finally:
            running.stop()

    # --- one stack, one repetition ---------------------------------------------------------
    def run_stack(self, stack: Stack, rep: int) -> None:
        names = self.plan.scenarios[stack.id]
        if rep >= self.plan.profile.realtime_repetitions:
            names = [s for s in names if s not in (*REALTIME, "journey")]
        closed = [s for s in names if s in scenarios.WRK_SCENARIOS]
        wrote = False
        if closed or "chat" in names or "journey" in names:
            try:
                with self.server(stack) as running:
                    wrote |= self._closed_and_chat(stack, running, [*closed, *(s for s in ("chat", "journey") if s in names)])
                    if rep == 0 and self.plan.open_loop(stack):
                        self._open_loop(stack, running)
            except ServerError as exc:
                self._fail_all(stack, [*closed, "chat", "journey"], exc)
        for scenario in ("sse-fanout", "ws"):
            if scenario in names:
                wrote = True
                try:
                    with self.server(stack, workers=1) as running:
                        self._fanout(stack, running, scenario)
                except ServerError as exc:
                    self._fail_all(stack, [scenario], exc)
        if wrote:
            self.db.restore()

    def _user(self, stack: Stack, client: httpx.Client) -> scenarios.BenchUser | None:
        if stack.kind == "floor":
            return None
        username = "user00001"
        token = scenarios.login(client, stack.api, username)
        decks, cards = scenarios.owned_ids(self.plan.profile.seed, 1)
        return scenarios.BenchUser(username, token, decks, cards)

    def _closed_and_chat(self, stack: Stack, running: RunningServer, names: list[str]) -> bool:
        load = measure.Load(running.url, running.pid, self.client_cpus)
        floor_path = FLOORS[stack.impl].ready_path if stack.kind == "floor" else None
        wrote = False
        with httpx.Client(base_url=running.url, timeout=30) as client:
            try:
                user = self._user(stack, client)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError) as exc:
                for scenario in names:
                    self.refuse(self.cell(stack, scenario, _driver(scenario, stack, self.closed_driver), None), f"login failed: {exc}")
                return False
            for scenario in names:
                if scenario in scenarios.WRK_SCENARIOS:
                    wrote |= scenario == "review"
                    self._wrk_scenario(stack, client, load, scenario, user, floor_path)
                elif scenario == "chat":
                    assert user is not None
                    wrote = True
                    self._chat(stack, client, load, user)
                elif scenario == "journey":
                    wrote = True
                    self._journey(stack, load)
                if running.proc is not None and running.proc.poll() is not None:
                    raise ServerError(f"{stack.id}: the server exited ({running.proc.returncode}) during {scenario}")
        return wrote

    def _wrk_scenario(self, stack: Stack, client: httpx.Client, load: measure.Load, scenario: str,
                      user: scenarios.BenchUser | None, floor_path: str | None) -> None:
        levels = self.plan.concurrency(scenario, stack)
        driver = self.closed_driver
        first = self.cell(stack, scenario, driver, levels[0])
        if first["status"] != "refused" and not first["samples"]:
            try:
                scenarios.verify(scenario, stack.api, client, user, floor_path)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError, ValueError) as exc:
                for c in levels:
                    self.refuse(self.cell(stack, scenario, driver, c), f"verification failed: {exc}")
        spec = scenarios.request_spec(scenario, stack.api, user, floor_path)
        count = self.db.count_reviews if scenario == "review" else None
        for conc in levels:
            cell = self.cell(stack, scenario, driver, conc)
            self.advance(cell["id"])
            self.record(cell, partial(self._closed_loop, load, spec, conc, count))
            if cell["samples"] and cell["samples"][-1]["extra"].get("client_bound") and "client-bound" not in cell["flags"]:
                cell["flags"].append("client-bound")

    def _closed_loop(self, load: measure.Load, spec: scenarios.RequestSpec, connections: int,
                     count: Callable[[], int] | None) -> dict[str, Any]:
        profile = self.plan.profile
        if self.closed_driver == "wrk":
            return measure.closed_loop(load, spec, connections, profile.warmup_s, profile.duration_s, count_rows=count)
        from loadtests.locust_closed import run_locust_closed

        return measure.with_server_usage(load, partial(
            run_locust_closed, load.url, spec, users=connections, duration_s=profile.duration_s,
            warmup_s=profile.warmup_s, cpus=load.client_cpus, count_rows=count))

    def _chat(self, stack: Stack, client: httpx.Client, load: measure.Load, user: scenarios.BenchUser) -> None:
        first = self.cell(stack, "chat", "chat", self.plan.profile.chat_levels[0])
        if first["status"] != "refused" and not first["samples"]:
            try:
                scenarios.verify("chat", stack.api, client, user)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError) as exc:
                for n in self.plan.profile.chat_levels:
                    self.refuse(self.cell(stack, "chat", "chat", n), f"verification failed: {exc}")
        done: list[dict[str, Any]] = []
        sustained = 0
        levels = self.plan.profile.chat_levels
        for i, clients in enumerate(levels):
            cell = self.cell(stack, "chat", "chat", clients)
            self.advance(cell["id"])
            sample = self.record(cell, partial(measure.chat, load, user.token, stack.api, clients,
                                               timeout_s=60.0, upstream=self.upstream))
            if sample is None:
                self._skip_rest(stack, "chat", "chat", levels[i + 1:], "a lower level failed")
                break
            done.append(sample)
            if not sample["extra"]["slo_met"]:
                # "until a stack fails or latency doubles": higher levels are not tried
                self._skip_rest(stack, "chat", "chat", levels[i + 1:], f"{clients} streams not sustained")
                break
            sustained = clients
        for sample in done:
            sample["extra"]["max_sustained"] = sustained
            sample["extra"]["max_tried"] = levels[len(done) - 1] if done else 0
        self.save()

    def _journey(self, stack: Stack, load: measure.Load) -> None:
        from loadtests.journey import run_journey

        profile = self.plan.profile
        cell = self.cell(stack, "journey", "locust", profile.journey_users)
        self.advance(cell["id"])
        sample = self.record(cell, partial(measure.with_server_usage, load, partial(
            run_journey, load.url, api=stack.api, users=profile.journey_users, duration_s=profile.duration_s * 2,
            warmup_s=max(profile.warmup_s, 3.0), seed_users=profile.seed.users,
            decks_per_user=profile.seed.decks_per_user, cpus=self.client_cpus)))
        if sample is not None and sample["extra"].get("client_bound") and "client-bound" not in cell["flags"]:
            cell["flags"].append("client-bound")
            self.save()

    def _open_loop(self, stack: Stack, running: RunningServer) -> None:
        """Latency without coordinated omission on `card`: fixed rates at fractions of the stack's
        own wrk peak, then the highest rate whose p99 meets the latency objective."""
        from loadtests.openloop import find_sustainable_rate, run_open_loop

        profile = self.plan.profile
        peak_cell = self.cell(stack, "card", self.closed_driver, profile.primary_concurrency)
        peak = (peak_cell["summary"].get("rps") or {}).get("median")
        if not peak:
            return
        load = measure.Load(running.url, running.pid, self.client_cpus)
        with httpx.Client(base_url=running.url, timeout=30) as client:
            user = self._user(stack, client)
        spec = scenarios.request_spec("card", stack.api, user)

        def at(rate: float) -> dict[str, Any]:
            sample = measure.with_server_usage(load, partial(
                run_open_loop, running.url, spec, rate, profile.duration_s, profile.warmup_s, cpus=self.client_cpus))
            sample["extra"]["fraction_of_peak"] = round(rate / peak, 3)
            return sample

        for fraction in profile.open_loop_fractions:
            rate = round(peak * fraction, 1)
            cell = self._open_cell(stack, rate)
            self.advance(cell["id"])
            self.record(cell, partial(at, rate))
            cell["flags"] += [f for f in cell["samples"][-1]["extra"].get("flags", []) if f not in cell["flags"]] if cell["samples"] else []
        if profile.sustainable_search:
            self.advance(f"{stack.id}/card/openloop sustainable rate")
            found = find_sustainable_rate(at, peak, LATENCY_OBJECTIVE_MS, probes=5)
            passing = [p for p in found["probes"] if p["ok"]]
            best = max(passing, key=lambda p: p["rate"]) if passing else None
            cell = self._open_cell(stack, None)
            cell["status"] = "ok" if best else "failed"
            if best:
                sample = best["sample"]
                sample["extra"].update({"sustainable_rate": found["rate"], "objective_p99_ms": LATENCY_OBJECTIVE_MS,
                                        "probes": [{k: p[k] for k in ("rate", "fraction", "ok", "reasons", "p99_ms", "rps")}
                                                   for p in found["probes"]]})
                cell["samples"].append(sample)
                cell["target_rate"] = found["rate"]
                cell["flags"].append("sustainable-rate")
            else:
                cell["error"] = f"no probed rate met p99 ≤ {LATENCY_OBJECTIVE_MS:g} ms: {found['probes']}"[:2000]
            results.finish_cell(cell, self.ceiling_rps)
            self.save()

    def _open_cell(self, stack: Stack, rate: float | None) -> dict[str, Any]:
        cid = results.cell_id(stack.id, "card", "openloop", None, rate)
        for existing in self.doc["cells"]:
            if existing["id"] == cid:
                return existing
        created = results.new_cell(stack.id, "card", "openloop", None, mode="open", target_rate=rate)
        self.doc["cells"].append(created)
        return created

    def _fanout(self, stack: Stack, running: RunningServer, scenario: str) -> None:
        profile = self.plan.profile
        transport = "sse" if scenario == "sse-fanout" and stack.api == "rest" else "ws"
        driver = "sse" if transport == "sse" else "ws"
        levels = profile.fanout_levels if scenario == "sse-fanout" else profile.ws_levels
        load = measure.Load(running.url, running.pid, self.client_cpus)
        with httpx.Client(base_url=running.url, timeout=30) as client:
            user = self._user(stack, client)
        assert user is not None
        for i, n in enumerate(levels):
            cell = self.cell(stack, scenario, driver, n)
            self.advance(cell["id"])
            sample = self.record(cell, partial(
                measure.fanout, load, user.token, stack.api, transport, n, profile.fanout_events,
                profile.fanout_rate, CONNECT_TIMEOUT_S.get(profile.name, 60.0)))
            if sample is None or sample["extra"]["connected"] < n:
                self._skip_rest(stack, scenario, driver, levels[i + 1:], f"{n} subscribers not all held")
                break

    def _skip_rest(self, stack: Stack, scenario: str, driver: str, levels: Any, why: str) -> None:
        for n in levels:
            cell = self.cell(stack, scenario, driver, n)
            self.advance(cell["id"])
            if not cell["samples"] and cell["status"] == "ok":
                cell["status"], cell["error"] = "skipped", why
        self.save()

    def _fail_all(self, stack: Stack, names: list[str], exc: Exception) -> None:
        self.console.print(f"[red]{stack.id}: {str(exc).splitlines()[0]}[/red]")
        for scenario in names:
            if scenario not in self.plan.scenarios[stack.id]:
                continue
            levels = self.plan.concurrency(scenario, stack) if scenario in scenarios.WRK_SCENARIOS else [None]
            for conc in levels:
                cell = self.cell(stack, scenario, _driver(scenario, stack, self.closed_driver), conc)
                if not cell["samples"]:
                    cell["status"], cell["error"] = "failed", str(exc)[:2000]
        self.save()

    # --- the driver's ceiling --------------------------------------------------------------
    def measure_ceiling(self) -> None:
        stack = STACKS[CEILING_FLOOR]
        profile = self.plan.profile
        with self.server(stack) as running:
            load = measure.Load(running.url, running.pid, self.client_cpus)
            spec = scenarios.request_spec("config", "floor", None, FLOORS[stack.impl].ready_path)
            sample = self._closed_loop(load, spec, profile.primary_concurrency, None)
        self.ceiling_rps = sample["rps"]
        self.doc["driver_ceilings"] = [{
            "driver": self.closed_driver, "floor": stack.id, "rps": sample["rps"], "client_cpu_pct": sample["client_cpu_pct"],
            "server_cpu_pct": sample["server_cpu_pct"], "concurrency": profile.primary_concurrency,
            "threads": 1, "note": f"{self.closed_driver} on the client CPUs against the fastest floor; a "
                                  "cell above a third of this rate is flagged client-bound"}]
        self.save()


def _driver(scenario: str, stack: Stack, closed: str = "wrk") -> str:
    if scenario in scenarios.WRK_SCENARIOS:
        return closed
    if scenario == "sse-fanout":
        return "sse" if stack.api == "rest" else "ws"
    return {"chat": "chat", "ws": "ws", "journey": "locust"}[scenario]


def _run_checks(console: Console) -> dict[str, str]:
    """The checks some claims rest on ("SM-2 results unchanged", "0 breaking changes"), run here so
    the report can cite them: the SM-2 vectors and properties, and the contract drift tests."""
    suites = {"sm2-parity": ["tests/test_sm2.py"], "contract-parity": ["tests/contract/test_drift.py"]}
    outcome: dict[str, str] = {}
    for key, paths in suites.items():
        if not all((REPO_ROOT / p).exists() for p in paths):
            outcome[key] = "skipped"
            continue
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        outcome[key] = "passed" if proc.returncode == 0 else "failed"
        console.print(f"check {key}: {outcome[key]}")
    return outcome


def _run_reliability(console: Console) -> dict[str, Any]:
    """Faults injected, bad inputs tried, parity: the suites behind the report's reliability
    section, run now so the section describes this commit."""
    from loadtests.reliability import run_reliability_checks

    with console.status("reliability suites (faults, bad input, parity)…"):
        summary = run_reliability_checks(REPO_ROOT)
    console.print(f"reliability: {summary.get('status')}")
    return summary


def _run_micro(out_dir: Path, cpus: tuple[int, ...], console: Console) -> dict[str, Any] | None:
    """pytest-benchmark over benchmarks/ (Pydantic v1 vs v2, json vs orjson, SM-2 step)."""
    target = out_dir / "micro.json"
    argv = [sys.executable, "-m", "pytest", "benchmarks/test_micro.py", "-q", "-p", "no:cacheprovider",
            "--benchmark-only", f"--benchmark-json={target}", "--benchmark-max-time=0.25",
            "--benchmark-min-rounds=50"]
    proc = subprocess.run(["taskset", "-c", ",".join(map(str, cpus)), *argv] if cpus else argv,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not target.exists():
        console.print(f"[red]micro-benchmarks failed:[/red] {proc.stdout[-500:]}{proc.stderr[-500:]}")
        return None
    import json

    return dict(json.loads(target.read_text()))


def main(*, profile: str, impls: list[str] | None, servers: list[str] | None, scenarios: list[str] | None,
         stacks: list[str] | None, dsn: str | None, out: Path, write_report: bool, console: Console,
         server_cpus: str | None = None, client_cpus: str | None = None, latest: bool | None = None) -> Path:
    from stackbench.database import resolve_dsn
    from upstream_sim.server import start_subprocess

    chosen = PROFILES.get(profile)
    if chosen is None:
        raise SystemExit(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    closed_driver = "wrk" if wrk_available() else "locust"
    if closed_driver == "locust":
        console.print("[yellow]wrk is not installed (apt-get install -y wrk): closed-loop cells run on "
                      "locust, which is slower than most stacks here — expect client-bound flags[/yellow]")
    if chosen.stacks and not (stacks or impls or servers):  # the profile's own matrix (`ci`)
        stacks = list(chosen.stacks)
    scenarios = scenarios or list(chosen.scenarios) or None
    plan = make_plan(chosen, stack_ids=stacks, impls=impls, servers=servers, only=scenarios)
    subset = bool(stacks or impls or servers or scenarios)
    srv_cpus, cli_cpus = split_cpus(server_cpus, client_cpus)
    base_dsn = resolve_dsn(dsn)
    env_doc = environment.capture(base_dsn)
    run_id = results.make_run_id((env_doc.get("git") or {}).get("commit"))
    run_dir = out / run_id
    db = BenchDatabase(base_dsn, chosen.seed)
    with console.status(f"seeding {chosen.seed}…"):
        seeded = db.prepare()
    console.print(f"seeded {seeded.cards} cards ({seeded.due_now} due) in {seeded.seconds:.1f} s")
    upstream: dict[str, Any] = {"ttft_ms": chosen.upstream_ttft_ms, "inter_token_ms": chosen.upstream_token_interval_ms,
                "tokens": chosen.upstream_tokens}
    sim = start_subprocess(port=0, cpus=cli_cpus, **upstream)
    app_settings = Settings()
    settings = {
        "server_cpus": list(srv_cpus), "client_cpus": list(cli_cpus), "latency_objective_ms": LATENCY_OBJECTIVE_MS,
        "warmup_s": chosen.warmup_s, "duration_s": chosen.duration_s, "repetitions": chosen.repetitions,
        "concurrency": list(chosen.concurrency), "primary_concurrency": chosen.primary_concurrency,
        "chat_levels": list(chosen.chat_levels), "fanout_levels": list(chosen.fanout_levels),
        "ws_levels": list(chosen.ws_levels), "fanout_events": chosen.fanout_events, "fanout_rate": chosen.fanout_rate,
        "upstream": {**upstream, "token_interval_ms": chosen.upstream_token_interval_ms, "url": sim.url},
        "database": db.describe(),
        "app": {"pool_size_per_worker": app_settings.pool_size, "pool_max_overflow": app_settings.pool_max_overflow,
                "password_hash": "argon2id t=3 m=64MiB p=4 (library defaults)", "environment": "production"},
        "subset": subset, "scenarios": plan.scenarios, "closed_loop_driver": closed_driver,
    }
    doc = results.new_document(run_id=run_id, profile=chosen.name, environment=env_doc, settings=settings)
    env = {"STACKBENCH_DSN": db.dsn, "STACKBENCH_UPSTREAM_URL": sim.url, "STACKBENCH_ENVIRONMENT": "production",
           "STACKBENCH_JWT_SECRET": secrets.token_urlsafe(32)}
    bench = Bench(plan, doc, run_dir / "results.json", db, env, srv_cpus, cli_cpus, upstream, console,
                  closed_driver=closed_driver)
    started = time.monotonic()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("left ~"), TimeRemainingColumn(), console=console, transient=False) as progress:
            task = progress.add_task("driver ceiling", total=plan.measurements() + 1)
            bench.advance = lambda what: progress.update(task, advance=1, description=what)
            bench.measure_ceiling()
            progress.update(task, advance=1)
            for rep in range(chosen.repetitions):
                order = plan.stacks[rep % len(plan.stacks):] + plan.stacks[: rep % len(plan.stacks)]
                for stack in order:
                    bench.run_stack(stack, rep)
        results.refresh_ceiling(doc)
        bench.save()
        if chosen.micro and not subset:
            doc["micro"] = _run_micro(run_dir, srv_cpus, console)
        doc["checks"] = _run_checks(console) if not subset else {}
        if not subset:
            doc["checks"]["reliability"] = _run_reliability(console)
    finally:
        sim.stop()
        doc["finished_at"] = results.now_iso()
        doc["environment"]["machine"]["bench_wall_s"] = time.monotonic() - started
        bench.save()
    console.print(f"results: {bench.path}")
    if write_report:
        from loadtests.report import verdict_table_text
        from loadtests.report import write_report as write

        report_dir = write(bench.path, run_dir)
        console.print(f"report: {report_dir / 'report.html'}")
        if latest if latest is not None else (chosen.name == "standard" and not subset):
            write(bench.path, REPO_ROOT / "reports" / "latest")
            console.print("report copied to reports/latest/")
        console.print(verdict_table_text(bench.path))
    return bench.path
