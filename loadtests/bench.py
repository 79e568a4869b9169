"""Measuring one run's cells: start a stack's server, verify it, drive each scenario and record
the samples (ledger.py keeps the document); the open-loop, equal-load and driver-ceiling cells.
The order of the work is runner.py's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx

from loadtests import capacity, floors, measure, results, scenarios, setups, verification
from loadtests.launcher import RunningServer, ServerError
from loadtests.ledger import Ledger, driver_for
from loadtests.plan import journey_duration
from loadtests.setups import VARIANTS
from loadtests.stacks import CEILING_FLOOR, FLOORS, STACKS, Stack

OPENLOOP_CEILING_DRIVER = "openloop"  # driver_ceilings rows that are the open loop's own, not the closed loop's

LATENCY_OBJECTIVE_MS = capacity.LATENCY_OBJECTIVE_MS
# How long subscribers may take to connect before the level counts as not held.
CONNECT_TIMEOUT_S = {"smoke": 10.0, "quick": 10.0, "standard": 20.0, "full": 60.0}


class Bench(Ledger):
    """One run, measured: its servers, and every cell they serve."""

    # --- servers -----------------------------------------------------------------------
    @contextlib.contextmanager
    def server(self, stack: Stack, workers: int | None = None) -> Iterator[RunningServer]:
        """Start `stack` (the main matrix: one worker per server core; a variant: its own rule;
        `workers` overrides both: fan-out runs on one worker) and read what it really runs."""
        cpus = setups.cpus_for(stack.id, self.server_cpus)
        spec = stack.spec(0, cpus, self.env, workers or setups.workers_for(stack, cpus))
        running = RunningServer(spec).start(timeout=60)
        self.setup = setups.read_setup(running.pid, spec.settings(), rule=setups.setup_rule(stack.id))
        info = self.doc["stacks"].setdefault(stack.id, {})
        described = spec.describe()
        described.pop("env", None)
        key = "fanout" if workers else "main"
        info.update({"impl": stack.impl, "kind": stack.kind, "api": stack.api, "setup_rule": setups.setup_rule(stack.id)})
        if stack.id in VARIANTS:
            info["variant_of"] = VARIANTS[stack.id].base
        if key == "main":
            info.update(described)
        else:
            info["fanout_server"] = described
        try:
            yield running
        finally:
            self.setup = None
            running.stop()

    # --- one stack, one repetition ---------------------------------------------------------
    def run_stack(self, stack: Stack, rep: int) -> None:
        self.rep = rep
        plan = self.plan
        if stack.id in plan.refused:
            if rep == 0:
                variant = VARIANTS[stack.id]
                described = stack.spec(0, self.server_cpus, {}, variant.workers).describe()  # not launched
                described.pop("env", None)
                self.doc["stacks"].setdefault(stack.id, {}).update({
                    **described, "impl": stack.impl, "kind": stack.kind, "api": stack.api,
                    "variant_of": variant.base, "setup_rule": variant.rule, "refused": plan.refused[stack.id]})
                for scenario in plan.scenarios[stack.id]:
                    for conc in plan.concurrency(scenario, stack):
                        self.refuse(self.cell(stack, scenario, driver_for(scenario, stack, self.closed_driver), conc),
                                    plan.refused[stack.id])
            return
        names = [s for s in plan.scenarios[stack.id]
                 if (s in scenarios.WRK_SCENARIOS and plan.levels_in(stack, s, rep))
                 or (s not in scenarios.WRK_SCENARIOS and rep < plan.repetitions(stack, s))]
        wrote = False
        for scenario in [s for s in names if s in plan.profile.capacity]:
            wrote = True
            self._capacity(stack, scenario)
        grid = [s for s in scenarios.names("streams", "session")
                if s in plan.scenarios[stack.id] and rep < plan.grid_repetitions(s)]
        names = [s for s in names if s not in plan.profile.capacity] + grid
        closed = [s for s in names if s in scenarios.WRK_SCENARIOS]
        shared = scenarios.names("streams", "session", "connect")  # measured on the closed-loop scenarios' server
        if closed or any(s in names for s in shared):
            try:
                with self.server(stack) as running:
                    wrote |= self._closed_and_chat(stack, running, [*closed, *(s for s in shared if s in names)])
                    if rep == 0 and self.plan.open_loop(stack):
                        self._open_loop(stack, running)
            except ServerError as exc:
                self._fail_all(stack, [*closed, *shared], exc)
        for scenario in scenarios.names("fanout"):
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
        if stack.kind == "floor":  # a database floor has no login: a token signed as the app signs it
            return floors.bench_user(self.plan.profile.seed, self.env) if stack.api != "floor" else None
        username = "user00001"
        token = scenarios.login(client, stack.api, username)
        decks, cards = scenarios.owned_ids(self.plan.profile.seed, 1)
        return scenarios.BenchUser(username, token, decks, cards)

    def _users(self, stack: Stack, client: httpx.Client, scenario: str) -> list[scenarios.BenchUser]:
        """Every seeded user (`verification.bench_users`) for a scenario that spreads its load over users (none else)."""
        if not scenarios.get(scenario).spread_users or stack.kind == "floor":
            return []
        return scenarios.bench_users(client, stack.api, self.plan.profile.seed, self.env)

    def _closed_and_chat(self, stack: Stack, running: RunningServer, names: list[str]) -> bool:
        load = measure.Load(running.url, running.pid, self.client_cpus)
        floor_path = FLOORS[stack.impl].ready_path if stack.kind == "floor" and stack.api == "floor" else None
        wrote = False
        with httpx.Client(base_url=running.url, timeout=30) as client:
            try:
                user = self._user(stack, client)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError) as exc:
                for scenario in names:
                    self.refuse(self.cell(stack, scenario, driver_for(scenario, stack, self.closed_driver), None), f"login failed: {exc}")
                return False
            for scenario in names:
                if scenario in scenarios.WRK_SCENARIOS:
                    wrote |= scenarios.get(scenario).writes
                    self._wrk_scenario(stack, client, load, scenario, user, floor_path)
                elif scenarios.get(scenario).family == "streams":
                    assert user is not None
                    wrote = True
                    self._chat(stack, client, load, user, scenario)
                elif scenarios.get(scenario).family == "session":
                    wrote = True
                    self._journey(stack, load, scenario)
                elif scenarios.get(scenario).family == "connect":
                    assert user is not None
                    self._ws_connect(stack, load, user, scenario)
                if running.proc is not None and running.proc.poll() is not None:
                    raise ServerError(f"{stack.id}: the server exited ({running.proc.returncode}) during {scenario}")
        return wrote

    def _wrk_scenario(self, stack: Stack, client: httpx.Client, load: measure.Load, scenario: str,
                      user: scenarios.BenchUser | None, floor_path: str | None) -> None:
        levels = self.plan.levels_in(stack, scenario, self.rep)
        driver = self.closed_driver
        first = self.cell(stack, scenario, driver, levels[0])
        if first["status"] != "refused" and not first["samples"]:
            try:
                scenarios.verify(scenario, stack.api, client, user, floor_path)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError, ValueError) as exc:
                for c in levels:
                    self.refuse(self.cell(stack, scenario, driver, c), f"verification failed: {exc}")
        spec = scenarios.request_spec(scenario, stack.api, user, floor_path, self._users(stack, client, scenario))
        count = self.db.count_reviews if scenarios.get(scenario).counts_writes else None
        for conc in levels:
            cell = self.cell(stack, scenario, driver, conc)
            if scenarios.get(scenario).spread_users:
                cell.setdefault("extra", {})["load_users"] = measure.load_users(spec)
            self.advance(cell["id"])
            self.record(cell, partial(self._closed_loop, load, spec, conc, count,
                                      self.plan.duration_s(stack, scenario, conc), _wrk_threads(stack)))
            if cell["samples"] and cell["samples"][-1]["extra"].get("client_bound") and "client-bound" not in cell["flags"]:
                cell["flags"].append("client-bound")

    def _closed_loop(self, load: measure.Load, spec: scenarios.RequestSpec, connections: int,
                     count: Callable[[], int] | None, duration_s: float | None = None,
                     threads: int = 1) -> dict[str, Any]:
        profile = self.plan.profile
        window = profile.duration_s if duration_s is None else duration_s
        if self.closed_driver == "wrk":
            return measure.closed_loop(load, spec, connections, profile.warmup_s, window, count_rows=count,
                                       threads=threads)
        from loadtests.locust_closed import run_locust_closed

        sample = measure.closed_fields(measure.with_server_usage(load, partial(
            run_locust_closed, load.url, spec, users=connections, duration_s=window,
            warmup_s=profile.warmup_s, cpus=load.client_cpus, count_rows=count)), connections)
        sample.setdefault("extra", {})["load_users"] = measure.load_users(spec)
        return sample

    def _chat(self, stack: Stack, client: httpx.Client, load: measure.Load, user: scenarios.BenchUser,
              scenario: str) -> None:
        levels = scenarios.get(scenario).levels(self.plan.profile)
        driver = driver_for(scenario, stack, self.closed_driver)
        first = self.cell(stack, scenario, driver, levels[0])
        if first["status"] != "refused" and not first["samples"]:
            try:
                scenarios.verify(scenario, stack.api, client, user)
            except (scenarios.VerificationFailed, httpx.HTTPError, KeyError) as exc:
                for n in levels:
                    self.refuse(self.cell(stack, scenario, driver, n), f"verification failed: {exc}")
        done: list[dict[str, Any]] = []
        sustained = 0
        for i, clients in enumerate(levels):
            cell = self.cell(stack, scenario, driver, clients)
            self.advance(cell["id"])
            sample = self.record(cell, partial(measure.chat, load, user.token, stack.api, clients,
                                               timeout_s=60.0, upstream=self.upstream))
            if sample is None:
                self._skip_rest(stack, scenario, driver, levels[i + 1:], "a lower level failed")
                break
            done.append(sample)
            if not sample["extra"]["slo_met"]:
                # "until a stack fails or latency doubles": higher levels are not tried
                self._skip_rest(stack, scenario, driver, levels[i + 1:], f"{clients} streams not sustained")
                break
            sustained = clients
        for sample in done:
            sample["extra"]["max_sustained"] = sustained
            sample["extra"]["max_tried"] = levels[len(done) - 1] if done else 0
        self.save()

    def _ws_connect(self, stack: Stack, load: measure.Load, user: scenarios.BenchUser, scenario: str) -> None:
        """WebSocket sessions in a closed loop at the profile's fixed client count, on the main
        matrix's server (its setup, like the closed cells'): one sample per repetition."""
        profile = self.plan.profile
        clients = profile.ws_connect_clients
        cell = self.cell(stack, scenario, driver_for(scenario, stack, self.closed_driver), clients)
        self.advance(cell["id"])
        self.record(cell, partial(measure.ws_connect, load, user.token, stack.api, clients, profile.warmup_s,
                                  self.plan.duration_s(stack, scenario, clients)))

    def _capacity(self, stack: Stack, scenario: str) -> None:
        """Streams/subscribers/connections/journey users held, by geometric bisection (capacity.py):
        every probe on a freshly started server (fan-out on one worker: the event bus lives in one
        process), the same objective for every stack; one cell (mode "capacity") with the interval."""
        profile = self.plan.profile
        search = profile.capacity[scenario]
        driver = driver_for(scenario, stack, self.closed_driver)
        cell = self.cell(stack, scenario, driver, None)
        cell["mode"] = "capacity"
        self.advance(cell["id"])
        family = scenarios.get(scenario).family
        streams = family == "streams"  # else fan-out (sse or ws, the driver) or the journey
        connect_timeout = CONNECT_TIMEOUT_S.get(profile.name, 60.0)

        def probe(level: int) -> dict[str, Any]:
            with self.server(stack, workers=1 if family == "fanout" else None) as running:
                load = measure.Load(running.url, running.pid, self.client_cpus)
                if family == "session":
                    sample = self._journey_sample(stack, load, level)
                    sample["extra"]["setup"] = dict(self.setup or {})
                    self._note_setup(cell)
                    return sample
                with httpx.Client(base_url=running.url, timeout=30) as client:
                    user = self._user(stack, client)
                    assert user is not None
                    if streams:  # checks the answer and warms the upstream client
                        scenarios.verify(scenario, stack.api, client, user)
                if streams:
                    sample = measure.chat(load, user.token, stack.api, level, timeout_s=min(60.0, search.budget_s / 2),
                                          upstream=self.upstream)
                else:
                    sample = measure.fanout(load, user.token, stack.api, driver, level, profile.fanout_events,
                                            profile.fanout_rate, connect_timeout)
                sample["extra"]["setup"] = dict(self.setup or {})
                self._note_setup(cell)
                return sample

        previous = [s["extra"]["capacity"] for s in cell["samples"] if (s.get("extra") or {}).get("capacity")]
        if previous:
            search = capacity.confirming(search, previous[-1])

        def run_search() -> dict[str, Any]:
            found = capacity.search_capacity(scenario, probe, search, upstream_ttft_ms=self.upstream["ttft_ms"],
                                             fatal=(scenarios.VerificationFailed,))
            if found is None:
                raise RuntimeError("no capacity probe ran (time budget or probe limit of 0)")
            self.console.print(f"{cell['id']}: {capacity.interval_text(found['extra']['capacity'])}")
            return found

        self.record(cell, run_search)

    def _journey(self, stack: Stack, load: measure.Load, scenario: str) -> None:
        profile = self.plan.profile
        cell = self.cell(stack, scenario, driver_for(scenario, stack, self.closed_driver), profile.journey_users)
        self.advance(cell["id"])
        sample = self.record(cell, partial(self._journey_sample, stack, load, profile.journey_users))
        if sample is not None and sample["extra"].get("client_bound") and "client-bound" not in cell["flags"]:
            cell["flags"].append("client-bound")
            self.save()

    def _journey_sample(self, stack: Stack, load: measure.Load, users: int) -> dict[str, Any]:
        """``users`` locust users play the journey, the server's CPU and memory measured beside.
        Seeded user 1 logs in through the API; the others start with tokens signed as the app
        signs them, because a hundred argon2 logins (≈ 0.1 s of server CPU each) outlast the warmup."""
        from loadtests.journey import run_journey

        profile = self.plan.profile
        seed = profile.seed
        tokens = {u.username: u.token for u in (verification.signed_user(seed, self.env, n)
                                                for n in range(2, seed.users + 1))}
        return measure.with_server_usage(load, partial(
            run_journey, load.url, api=stack.api, users=users, duration_s=journey_duration(profile),
            warmup_s=max(profile.warmup_s, 3.0), seed_users=seed.users, decks_per_user=seed.decks_per_user,
            think_s=profile.journey_think_s, cpus=self.client_cpus, tokens=tokens))

    def _open_loop(self, stack: Stack, running: RunningServer) -> None:
        """Latency without coordinated omission on `card`: fixed rates at fractions of the stack's
        own wrk peak, then the highest rate whose p99 meets the latency objective."""
        from loadtests.ratesearch import find_sustainable_rate

        profile = self.plan.profile
        scenario = scenarios.open_loop().name
        peak_cell = self.cell(stack, scenario, self.closed_driver, profile.primary_concurrency)
        peak = (peak_cell["summary"].get("rps") or {}).get("median")
        if not peak:
            return
        load = measure.Load(running.url, running.pid, self.client_cpus)
        with httpx.Client(base_url=running.url, timeout=30) as client:
            user = self._user(stack, client)
        spec = scenarios.request_spec(scenario, stack.api, user)

        def at(rate: float) -> dict[str, Any]:
            sample = measure.with_server_usage(load, partial(
                self.open_loop_driver(), running.url, spec, rate, profile.duration_s, profile.warmup_s, cpus=self.client_cpus))
            sample["extra"]["fraction_of_peak"] = round(rate / peak, 3)
            return sample

        for fraction in profile.open_loop_fractions:
            rate = round(peak * fraction, 1)
            cell = self._open_cell(stack, rate)
            self.advance(cell["id"])
            self.record(cell, partial(at, rate))
            cell["flags"] += [f for f in cell["samples"][-1]["extra"].get("flags", []) if f not in cell["flags"]] if cell["samples"] else []
        if profile.sustainable_search:
            self.advance(f"{stack.id}/{scenario}/openloop sustainable rate")
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

    # --- equal offered load (latency claims) -------------------------------------------------
    def equal_load_rates(self) -> dict[str, dict[str, Any]]:
        """Per scenario: the reference (the weakest equal-load stack's closed-loop peak at the
        primary level, median over its repetitions) and the rates every stack gets."""
        profile = self.plan.profile
        out: dict[str, dict[str, Any]] = {}
        for scenario in profile.equal_load_scenarios:
            peaks: dict[str, float] = {}
            for stack in self.plan.equal_load_stacks():
                if scenario not in self.plan.equal_load_scenarios(stack):
                    continue
                cell = self.cell(stack, scenario, self.closed_driver, profile.primary_concurrency)
                peak = (cell["summary"].get("rps") or {}).get("median") if cell["status"] == "ok" else None
                if peak:
                    peaks[stack.id] = float(peak)
            if peaks:
                weakest = min(peaks, key=lambda k: peaks[k])
                out[scenario] = {"reference_rps": peaks[weakest], "reference_stack": weakest, "peaks": peaks,
                                 "rates": {f: equal_rate(peaks[weakest], f) for f in profile.equal_load_fractions}}
        return out

    def equal_load(self) -> None:
        """Every equal-load stack at the SAME fixed arrival rates per scenario (fractions of the
        reference), open loop, each repetition × fraction on a freshly started server that then
        runs every scenario at its rate; interleaved: repetition r rotates the stacks by r."""
        profile = self.plan.profile
        rates = self.equal_load_rates()
        self.doc["settings"]["equal_load"] = {
            "fractions": list(profile.equal_load_fractions), "repetitions": list(profile.equal_load_repetitions),
            "warmup_s": profile.equal_load_warmup_s, "duration_s": profile.equal_load_duration_s,
            "stacks": [s.id for s in self.plan.equal_load_stacks()],
            "scenarios": {k: {**v, "rates": {str(f): r for f, r in v["rates"].items()}} for k, v in rates.items()},
            "note": "latency claims are judged here: the same offered rate for every stack, open loop (no "
                    "coordinated omission); closed-loop latency at saturation measures queueing",
        }
        stacks = self.plan.equal_load_stacks()
        reps = dict(zip(profile.equal_load_fractions, profile.equal_load_repetitions, strict=True))
        for rep in range(max(reps.values(), default=0)):
            order = stacks[rep % len(stacks):] + stacks[: rep % len(stacks)]
            for stack in order:
                for fraction in [f for f in profile.equal_load_fractions if rep < reps[f]]:
                    todo = [s for s in self.plan.equal_load_scenarios(stack) if s in rates]
                    if todo:
                        self._equal_load_once(stack, fraction, todo, rates)
                        if any(scenarios.get(s).writes for s in todo):
                            self.db.restore()

    def _equal_load_once(self, stack: Stack, fraction: float, names: list[str],
                         rates: dict[str, dict[str, Any]]) -> None:
        profile = self.plan.profile
        cells = {}
        for scenario in names:
            ref = rates[scenario]
            cell = self._open_cell(stack, ref["rates"][fraction], scenario)
            cell["extra"] = {"load_group": f"{scenario}-equal", "fraction_of_reference": fraction,
                             "reference_rps": ref["reference_rps"], "reference_stack": ref["reference_stack"]}
            cells[scenario] = cell
        try:
            with self.server(stack) as running:
                load = measure.Load(running.url, running.pid, self.client_cpus)
                with httpx.Client(base_url=running.url, timeout=30) as client:
                    user = self._user(stack, client)
                for scenario, cell in cells.items():
                    rate = float(cell["target_rate"])
                    spec = scenarios.request_spec(scenario, stack.api, user)
                    self.advance(cell["id"])

                    def once(spec: scenarios.RequestSpec = spec, rate: float = rate,
                             extra: dict[str, Any] = cell["extra"]) -> dict[str, Any]:
                        sample = measure.with_server_usage(load, partial(
                            self.open_loop_driver(), running.url, spec, rate, profile.equal_load_duration_s,
                            profile.equal_load_warmup_s, cpus=self.client_cpus))
                        sample["achieved_rps"] = sample["rps"]
                        sample["extra"].update(extra)
                        return sample

                    self.record(cell, once)
        except ServerError as exc:
            for cell in cells.values():
                if not cell["samples"]:
                    cell["status"], cell["error"] = "failed", str(exc)[:2000]
            self.save()

    def _fanout(self, stack: Stack, running: RunningServer, scenario: str) -> None:
        profile = self.plan.profile
        transport = driver = driver_for(scenario, stack, self.closed_driver)  # "sse" or "ws"
        levels = scenarios.get(scenario).levels(profile)
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

    # --- the driver's ceiling --------------------------------------------------------------
    def measure_ceiling(self) -> None:
        stack = STACKS[CEILING_FLOOR]
        profile = self.plan.profile
        with self.server(stack) as running:
            load = measure.Load(running.url, running.pid, self.client_cpus)
            spec = scenarios.floor_request(FLOORS[stack.impl].ready_path)
            sample = self._closed_loop(load, spec, profile.primary_concurrency, None)
            opened = [self._open_loop_ceiling(running, spec, n, sample["rps"]) for n in (1, 2)]
        self.ceiling_rps = sample["rps"]
        self.doc["driver_ceilings"] = [{
            "driver": self.closed_driver, "floor": stack.id, "rps": sample["rps"], "client_cpu_pct": sample["client_cpu_pct"],
            "server_cpu_pct": sample["server_cpu_pct"], "concurrency": profile.primary_concurrency,
            "threads": 1, "note": f"{self.closed_driver} on the client CPUs against the fastest floor; a "
                                  "cell above a third of this rate is flagged client-bound"}]
        self.doc["driver_ceilings"] += opened
        self.save()

    def open_loop_driver(self) -> Callable[..., dict[str, Any]]:
        """The open-loop driver over one process per client CPU (its ceiling grows with them);
        every sample says how many (`extra.processes`)."""
        from loadtests.openloop_split import run_open_loop_split

        def drive(url: str, spec: scenarios.RequestSpec, rate: float, duration_s: float, warmup_s: float,
                  **options: Any) -> dict[str, Any]:
            # A request answered within the window is a latency, not a timeout (as wrk_job's
            # timeout): only one outstanding for a whole window counts as timed out.
            options.setdefault("timeout_s", max(2.0, duration_s))
            return run_open_loop_split(url, spec, rate, duration_s, warmup_s,
                                       processes=max(1, len(self.client_cpus)), **options)

        return drive

    def _open_loop_ceiling(self, running: RunningServer, spec: scenarios.RequestSpec, processes: int,
                           offered: float) -> dict[str, Any]:
        """The open-loop driver split over `processes` (loadtests/openloop_split.py) offered the
        closed-loop ceiling against the same floor: what it achieves is its own ceiling."""
        from loadtests.openloop_split import run_open_loop_split

        profile = self.plan.profile
        sample = run_open_loop_split(running.url, spec, offered, min(profile.duration_s, 5.0),
                                     min(profile.warmup_s, 1.0), processes=processes, cpus=self.client_cpus)
        return {"driver": OPENLOOP_CEILING_DRIVER, "floor": CEILING_FLOOR, "rps": sample["rps"], "processes": processes,
                "client_cpu_pct": sample["client_cpu_pct"], "offered_rps": offered,
                "flags": sample["extra"]["flags"], "shared_cpus": sample["extra"].get("split", {}).get("shared_cpus"),
                "note": f"open loop over {processes} process(es) offered the closed-loop ceiling: the rate it "
                        "achieved is its ceiling on these client CPUs (not used for client-bound flags)"}


def equal_rate(reference_rps: float, fraction: float) -> float:
    """The offered rate at `fraction` of the reference, req/s to 0.1 (the same for every stack)."""
    return round(reference_rps * fraction, 1)


def _wrk_threads(stack: Stack) -> int:
    variant = VARIANTS.get(stack.id)
    return variant.wrk_threads if variant else 1
